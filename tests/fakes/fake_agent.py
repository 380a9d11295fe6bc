"""Stand-ins for the ``claude`` and ``codex`` programs, driven by a JSON script.

The executables in ``bin/`` call :func:`main` with their name. Each run

* parses its arguments the way looprunner invokes the real program, and fails like the
  real one on anything else (an unknown option, a missing prompt);
* records its argv, the prompt it read on stdin, the ``LOOPRUNNER_*`` and
  ``CLAUDE_PIPELINE_*`` variables, whether ``CLAUDECODE`` was set, its cwd and pid as
  JSON in ``$FAKE_AGENT_LOG_DIR/<name>-<iteration>.json`` (written before anything else happens,
  so a test can wait for it while the agent is still running);
* then does what ``$FAKE_AGENT_SCRIPT`` says for its iteration (``$LOOPRUNNER_ITERATION``):
  a JSON object mapping the iteration number (or ``"default"``) to an action, which may
  combine ``{"sleep": S}`` with ``{"exit": N}`` (exit N, no status), ``{"no_status":
  true}`` (exit 0, no status) or the status fields ``decision``, ``reason``, ``summary``
  written to ``$LOOPRUNNER_STATUS``. Without a script (or an entry) it writes a
  ``continue`` status.

``command_agent.py`` uses the same machinery for the ``command`` provider, recording any
argv it is given.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

STATUS_FIELDS = ("decision", "reason", "summary", "work", "errors")
#: the variables recorded: looprunner's own, and the ones loop-agents' hooks read
RECORDED_ENV = ("LOOPRUNNER_", "CLAUDE_PIPELINE_")

CLAUDE_USAGE = "Usage: claude [options] [command] [prompt]"
CODEX_USAGE = "Usage: codex exec [OPTIONS] [PROMPT] [COMMAND]"


class BadUsage(Exception):
    """The arguments are not ones the real program accepts."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def parse_claude(args: list[str]) -> dict[str, object]:
    """Parse ``claude`` arguments like its commander.js front end (unknown option: exit 1)."""
    seen: dict[str, object] = {
        "print": False,
        "skip_permissions": False,
        "model": None,
        "output_format": "text",
        "verbose": False,
    }
    prompt_args: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("-p", "--print"):
            seen["print"] = True
        elif arg == "--dangerously-skip-permissions":
            seen["skip_permissions"] = True
        elif arg == "--verbose":
            seen["verbose"] = True
        elif arg == "--output-format":
            i += 1
            if i >= len(args) or args[i] not in ("text", "json", "stream-json"):
                raise BadUsage("error: option '--output-format <format>' argument invalid", 1)
            seen["output_format"] = args[i]
        elif arg == "--model" or arg.startswith("--model="):
            if "=" in arg:
                seen["model"] = arg.split("=", 1)[1]
            else:
                i += 1
                if i >= len(args):
                    raise BadUsage("error: option '--model <model>' argument missing", 1)
                seen["model"] = args[i]
        elif arg.startswith("-") and arg != "-":
            raise BadUsage(f"error: unknown option '{arg}'", 1)
        else:
            prompt_args.append(arg)
        i += 1
    if not seen["print"]:
        raise BadUsage("error: fake claude only supports print mode (-p)", 1)
    if seen["output_format"] == "stream-json" and not seen["verbose"]:
        raise BadUsage(
            "Error: When using --print, --output-format=stream-json requires --verbose", 1
        )
    seen["prompt_args"] = prompt_args
    return seen


def parse_codex(args: list[str]) -> dict[str, object]:
    """Parse ``codex exec`` arguments like its clap front end (unknown argument: exit 2)."""
    if not args or args[0] != "exec":
        raise BadUsage("error: fake codex only supports the 'exec' subcommand", 2)
    seen: dict[str, object] = {
        "model": None,
        "config": [],
        "bypass": False,
        "skip_git": False,
        "json": False,
    }
    positional: list[str] = []
    rest = args[1:]
    i = 0
    while i < len(rest):
        arg = rest[i]
        if arg in ("-m", "--model", "-c", "--config"):
            i += 1
            if i >= len(rest):
                raise BadUsage(
                    f"error: a value is required for '{arg} <VALUE>' but none was supplied", 2
                )
            if arg in ("-m", "--model"):
                seen["model"] = rest[i]
            else:
                if "=" not in rest[i]:
                    raise BadUsage(f"error: invalid override {rest[i]!r}: expected key=value", 2)
                seen["config"].append(rest[i])  # type: ignore[attr-defined]
        elif arg == "--dangerously-bypass-approvals-and-sandbox":
            seen["bypass"] = True
        elif arg == "--skip-git-repo-check":
            seen["skip_git"] = True
        elif arg == "--json":
            seen["json"] = True
        elif arg.startswith("-") and arg != "-":
            raise BadUsage(f"error: unexpected argument '{arg}' found", 2)
        else:
            positional.append(arg)
        i += 1
    if len(positional) > 1:
        raise BadUsage(f"error: unexpected argument '{positional[1]}' found", 2)
    seen["prompt_arg"] = positional[0] if positional else None
    return seen


def _load_script(iteration: str) -> dict[str, object]:
    path = os.environ.get("FAKE_AGENT_SCRIPT")
    if not path or not Path(path).is_file():
        return {}
    script = json.loads(Path(path).read_text(encoding="utf-8"))
    action = script.get(iteration, script.get("default", {}))
    return dict(action)


def _record(name: str, iteration: str, record: dict[str, object]) -> None:
    log_dir = os.environ.get("FAKE_AGENT_LOG_DIR")
    if not log_dir:
        return
    target = Path(log_dir) / f"{name}-{iteration}.json"
    temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    temp.write_text(json.dumps(record, indent=2), encoding="utf-8")
    temp.replace(target)


def act(name: str, iteration: str, record: dict[str, object]) -> int:
    """Record the call, then do what the script says for this iteration."""
    _record(name, iteration, record)
    action = _load_script(iteration)
    print(f"{name} (fake): iteration {iteration}, prompt of {len(str(record['prompt']))} chars")
    sys.stdout.flush()
    if "sleep" in action:
        time.sleep(float(action["sleep"]))  # type: ignore[arg-type]
    if "exit" in action:
        print(f"{name} (fake): failing with exit status {action['exit']}", file=sys.stderr)
        return int(action["exit"])  # type: ignore[call-overload]
    if action.get("no_status"):
        print(f"{name} (fake): done, writing no status")
        return 0
    status = {k: action[k] for k in STATUS_FIELDS if k in action}
    status.setdefault("decision", "continue")
    status.setdefault("reason", "fake agent")
    status.setdefault("summary", f"{name} iteration {iteration}")
    status_path = os.environ.get("LOOPRUNNER_STATUS")
    if status_path:
        Path(status_path).write_text(json.dumps(status), encoding="utf-8")
    print(f"{name} (fake): {status['decision']}: {status['summary']}")
    return 0


def base_record(name: str, prompt: str) -> dict[str, object]:
    """What every fake records about how it was called."""
    return {
        "name": name,
        "argv0": sys.argv[0],
        "argv": sys.argv[1:],
        "prompt": prompt,
        "env": {k: v for k, v in os.environ.items() if k.startswith(RECORDED_ENV)},
        "claudecode": "CLAUDECODE" in os.environ,
        "cwd": str(Path.cwd()),
        "pid": os.getpid(),
    }


def read_prompt(name: str, args: list[str]) -> str:
    """Check the arguments and read the prompt, as the real program would."""
    if name == "claude":
        prompt_args = parse_claude(args)["prompt_args"]
        prompt = " ".join(prompt_args) if prompt_args else sys.stdin.read()  # type: ignore[arg-type]
        if not prompt.strip():
            raise BadUsage(
                "Error: Input must be provided either through stdin or as a prompt "
                "argument when using --print",
                1,
            )
        return prompt
    if name == "codex":
        prompt_arg = parse_codex(args)["prompt_arg"]
        prompt = sys.stdin.read() if prompt_arg in (None, "-") else str(prompt_arg)
        if not prompt.strip():
            raise BadUsage("No prompt provided via stdin.", 1)
        return prompt
    raise BadUsage(f"unknown fake {name!r}", 2)


def main(name: str) -> int:
    """Run the fake ``claude`` or ``codex``."""
    if sys.argv[1:] == ["--version"]:  # as the real programs print theirs
        print("2.1.0 (Claude Code)" if name == "claude" else "codex-cli 0.1.0")
        return 0
    try:
        prompt = read_prompt(name, sys.argv[1:])
    except BadUsage as exc:
        usage = CLAUDE_USAGE if name == "claude" else CODEX_USAGE
        print(f"{exc.message}\n\n{usage}\n\nFor more information, try '--help'.", file=sys.stderr)
        return exc.code
    iteration = os.environ.get("LOOPRUNNER_ITERATION", "0")
    return act(name, iteration, base_record(name, prompt))
