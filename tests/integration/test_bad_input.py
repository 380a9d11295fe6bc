"""Bad input through the real command line: exit 2 (or 4), one clear line, nothing written.

Every case runs ``python -m looprunner`` as a user would, once for people (one line on
stderr starting ``looprunner: error:``) and once with ``--json`` (``{"error": {"type",
"message"}}`` on stdout, the same message and exit code), and checks that the refusal
came before anything touched the project's ``.claude/`` folder or started a tmux server.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from looprunner.testing import tmux_socket_path
from tests.conftest import tree
from tests.integration.conftest import FAKES_BIN

GOOD_STAGE = "name: work\nprovider: mock\ntermination:\n  type: fixed\n  iterations: 1\n"
STAGE_YAML = ".looprunner/stages/work/stage.yaml"
PROMPT_MD = ".looprunner/stages/work/prompt.md"
START = ("start", "ok", "--stage", "work")


def path_without_agents() -> str:
    """PATH with neither the fakes nor any real ``claude``/``codex`` on it."""
    keep = []
    for entry in os.environ.get("PATH", "").split(os.pathsep):
        folder = Path(entry)
        if not entry or folder == FAKES_BIN:
            continue
        if any(os.access(folder / program, os.X_OK) for program in ("claude", "codex")):
            continue
        keep.append(entry)
    return os.pathsep.join(keep)


class BadInput(NamedTuple):
    test_id: str
    args: tuple[str, ...]
    #: substrings of the error message; ``{project}`` and ``{stage_yaml}`` are filled in
    needles: tuple[str, ...]
    #: files to write (relative to the project) over the good ``work`` stage; None deletes
    files: dict[str, str | None] = {}  # noqa: RUF012 - a NamedTuple default, never mutated
    code: int = 2
    no_agents_on_path: bool = False
    xfail: str | None = None


INVALID_NAME = "use lower-case letters, digits and single hyphens"

CASES = [
    # ------------------------------------------------------------- session names
    BadInput("name-upper-case", ("start", "Bad", "--stage", "work"), ("'Bad'", INVALID_NAME)),
    BadInput("name-dot", ("start", "a.b", "--stage", "work"), ("'a.b'", INVALID_NAME)),
    BadInput("name-colon", ("start", "x:y", "--stage", "work"), ("'x:y'", INVALID_NAME)),
    BadInput("name-parent-path", ("start", "../etc", "--stage", "work"), ("'../etc'",)),
    BadInput("name-slash", ("start", "a/b", "--stage", "work"), ("'a/b'", INVALID_NAME)),
    BadInput(
        "name-leading-dash-after-double-dash",
        ("start", "--stage", "work", "--", "-x"),
        ("invalid session name '-x'", INVALID_NAME),
    ),
    BadInput(
        "name-leading-dash-read-as-an-option",
        ("start", "-x", "--stage", "work"),
        ("No such option", "-x"),
    ),
    BadInput("name-trailing-hyphen", ("start", "a-", "--stage", "work"), ("'a-'", INVALID_NAME)),
    BadInput("name-double-hyphen", ("start", "a--b", "--stage", "work"), ("'a--b'",)),
    BadInput("name-space", ("start", "a b", "--stage", "work"), ("'a b'", INVALID_NAME)),
    BadInput("name-non-ascii", ("start", "café", "--stage", "work"), ("'café'", INVALID_NAME)),
    BadInput(
        "name-49-characters",
        ("start", "a" * 49, "--stage", "work"),
        ("a" * 49, "longer than 48 characters"),
    ),
    BadInput("name-empty", ("start", "", "--stage", "work"), ("session name is empty",)),
    BadInput("status-invalid-name", ("status", "Bad"), ("invalid session name 'Bad'",)),
    BadInput("kill-invalid-name", ("kill", "--yes", "a.b"), ("invalid session name 'a.b'",)),
    BadInput("wait-invalid-name", ("wait", "--", "-x"), ("invalid session name '-x'",)),
    # ------------------------------------------------------------- stage definitions
    BadInput(
        "unknown-stage-lists-the-available-ones",
        ("start", "ok", "--stage", "nope"),
        ("unknown stage 'nope'", "available: work"),
    ),
    BadInput(
        "invalid-yaml-syntax",
        START,
        ("{stage_yaml}:4:", "invalid YAML"),
        files={STAGE_YAML: "name: work\nprovider: mock\ntermination: [fixed\ncolour: red\n"},
    ),
    BadInput(
        "duplicate-key",
        START,
        ("{stage_yaml}:3:", "duplicate key", "provider"),
        files={STAGE_YAML: "name: work\nprovider: mock\nprovider: claude\n"},
    ),
    BadInput(
        "iterations-not-an-integer",
        START,
        ("{stage_yaml}:5:15: termination.iterations: expected an integer, got 'five'",),
        files={STAGE_YAML: GOOD_STAGE.replace("iterations: 1", "iterations: five")},
    ),
    BadInput(
        "iterations-zero",
        START,
        ("{stage_yaml}:5:15: termination.iterations: must be at least 1, got 0",),
        files={STAGE_YAML: GOOD_STAGE.replace("iterations: 1", "iterations: 0")},
    ),
    BadInput(
        "unknown-key",
        START,
        ("{stage_yaml}:6:1: unknown key 'colour'",),
        files={STAGE_YAML: GOOD_STAGE + "colour: red\n"},
    ),
    BadInput(
        "unknown-termination-key",
        START,
        ("{stage_yaml}:5:3: termination.iteratons: unknown key 'iteratons'",),
        files={STAGE_YAML: GOOD_STAGE.replace("iterations: 1", "iteratons: 1")},
    ),
    BadInput(
        "stage-file-not-a-mapping",
        START,
        ("{stage_yaml}:1:", "must be a mapping"),
        files={STAGE_YAML: "- name\n- work\n"},
    ),
    BadInput(
        "missing-prompt-md",
        START,
        ("{stage_yaml}", "prompt.md not found"),
        files={PROMPT_MD: None},
    ),
    BadInput(
        "named-prompt-file-missing",
        START,
        ("{stage_yaml}:6:9:", "missing.md not found"),
        files={STAGE_YAML: GOOD_STAGE + "prompt: missing.md\n"},
    ),
    BadInput(
        "command-string-that-cannot-be-split",
        START,
        ("{stage_yaml}:3:10: command: cannot split command",),
        files={STAGE_YAML: 'name: work\nprovider: command\ncommand: "run \'unclosed"\n'},
    ),
    # ------------------------------------------------------------- providers
    BadInput(
        "unknown-provider-in-stage",
        START,
        ("unknown provider 'gpt'", "available: claude, codex, command, mock"),
        files={STAGE_YAML: GOOD_STAGE.replace("provider: mock", "provider: gpt")},
    ),
    BadInput(
        "unknown-provider-in-stage-says-where",
        START,
        ("{stage_yaml}:2:11:", "unknown provider 'gpt'"),
        files={STAGE_YAML: GOOD_STAGE.replace("provider: mock", "provider: gpt")},
    ),
    BadInput(
        "unknown-provider-on-the-command-line",
        (*START, "--provider", "nope"),
        ("unknown provider 'nope'",),
        files={STAGE_YAML: GOOD_STAGE.replace("provider: mock\n", "")},
    ),
    BadInput(
        "claude-not-on-path",
        START,
        ("provider 'claude' needs the 'claude' program, which is not on PATH",),
        files={STAGE_YAML: GOOD_STAGE.replace("provider: mock", "provider: claude")},
        no_agents_on_path=True,
    ),
    BadInput(
        "codex-not-on-path",
        START,
        ("provider 'codex' needs the 'codex' program, which is not on PATH",),
        files={STAGE_YAML: GOOD_STAGE.replace("provider: mock", "provider: codex")},
        no_agents_on_path=True,
    ),
    BadInput(
        "command-program-not-on-path",
        START,
        ("command 'no-such-program-xyz' is not on PATH",),
        files={
            STAGE_YAML: GOOD_STAGE.replace("provider: mock", "provider: command")
            + 'command: ["no-such-program-xyz", "--flag"]\n'
        },
    ),
    BadInput(
        "command-provider-without-command",
        START,
        ("provider 'command' needs a 'command:'",),
        files={STAGE_YAML: GOOD_STAGE.replace("provider: mock", "provider: command")},
    ),
    BadInput(
        "unknown-termination-type",
        START,
        ("unknown termination 'forever'",),
        files={STAGE_YAML: GOOD_STAGE.replace("type: fixed", "type: forever")},
    ),
    # ------------------------------------------------------------- options
    BadInput(
        "missing-input-file",
        (*START, "--input", "{project}/missing.txt"),
        ("--input {project}/missing.txt: no such file",),
    ),
    BadInput(
        "stage-and-pipeline",
        (*START, "--pipeline", "p"),
        ("give exactly one of --stage TYPE or --pipeline NAME_OR_FILE",),
    ),
    BadInput(
        "neither-stage-nor-pipeline",
        ("start", "ok"),
        ("give exactly one of --stage TYPE or --pipeline NAME_OR_FILE",),
    ),
    BadInput("n-zero", (*START, "-n", "0"), ("-n must be at least 1, got 0",)),
    BadInput("n-negative", (*START, "-n", "-3"), ("-n must be at least 1, got -3",)),
    BadInput("n-not-an-integer", (*START, "-n", "five"), ("Invalid value for '-n'", "five")),
    BadInput(
        "n-with-a-pipeline",
        ("start", "ok", "--pipeline", "p", "-n", "3"),
        ("-n applies to --stage",),
    ),
    BadInput("unknown-pipeline", ("start", "ok", "--pipeline", "nope"), ("unknown pipeline",)),
    BadInput(
        "foreground-with-a-backend",
        (*START, "--foreground", "--backend", "tmux"),
        ("--foreground",),
    ),
    BadInput(
        "unknown-backend",
        (*START, "--backend", "nope"),
        ("unknown backend 'nope'",),
    ),
    BadInput("unknown-option", (*START, "--bogus"), ("No such option", "--bogus")),
]


def _params(cases: list[BadInput]) -> list[Any]:
    return [
        pytest.param(
            case,
            id=case.test_id,
            marks=[pytest.mark.xfail(reason=case.xfail, strict=True)] if case.xfail else [],
        )
        for case in cases
    ]


def _fill(text: str, project: Path) -> str:
    return text.format(project=project, stage_yaml=project / STAGE_YAML)


def _prepare(project: Path, case: BadInput) -> None:
    files: dict[str, str | None] = {STAGE_YAML: GOOD_STAGE, PROMPT_MD: "Do one thing.\n"}
    files.update(case.files)
    for relative, text in files.items():
        path = project / relative
        if text is None:
            path.unlink(missing_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def error_line(result: Any, *, as_json: bool) -> tuple[str, str]:
    """Check the shape of a refusal and return its (type, message)."""
    assert "Traceback" not in result.stderr + result.stdout
    if as_json:
        assert result.stderr == ""
        answer = json.loads(result.stdout)
        assert set(answer) <= {"error", "next"}  # next: the way out, where there is one
        assert set(answer["error"]) == {"type", "message"}
        assert isinstance(answer["error"]["type"], str) and answer["error"]["type"]
        return answer["error"]["type"], answer["error"]["message"]
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    prefix = "looprunner: error: "
    assert lines[0].startswith(prefix), lines[0]
    return "", lines[0][len(prefix) :]


def refusal(cli: Any, args: tuple[str, ...], env: dict[str, str] | None) -> tuple[int, str, str]:
    """Run ``args`` for people and with ``--json``; return (exit code, type, message).

    Both must agree: the same exit code and the same message.
    """
    text = cli(*args, env=env)
    as_json = cli("--json", *args, env=env)
    assert text.returncode == as_json.returncode, (text.stderr, as_json.stdout)
    _, message = error_line(text, as_json=False)
    error_type, json_message = error_line(as_json, as_json=True)
    assert json_message == message
    return text.returncode, error_type, message


@pytest.mark.parametrize("case", _params(CASES))
def test_bad_input_is_refused_before_anything_is_written(project, cli, tmux_socket, case):
    project = project.resolve()
    _prepare(project, case)
    env = {"PATH": path_without_agents()} if case.no_agents_on_path else None
    code, _, message = refusal(cli, tuple(_fill(a, project) for a in case.args), env)
    assert code == case.code, message
    for needle in case.needles:
        assert _fill(needle, project) in message
    assert not (project / ".claude").exists(), "a refused command wrote state"
    assert not tmux_socket_path(tmux_socket).exists(), "a refused command started tmux"


# --------------------------------------------------------------------------- not found


class NotFound(NamedTuple):
    test_id: str
    args: tuple[str, ...]
    existing: tuple[str, ...]


NOT_FOUND_CASES = [
    NotFound(f"{command}-{'with' if existing else 'without'}-sessions", args, existing)
    for command, args in (
        ("status", ("status", "ghost")),
        ("kill", ("kill", "ghost", "--yes")),
        ("wait", ("wait", "ghost", "--timeout", "5")),
    )
    for existing in ((), ("one", "two"))
]


@pytest.mark.parametrize("case", NOT_FOUND_CASES, ids=[c.test_id for c in NOT_FOUND_CASES])
def test_unknown_session_exits_4_and_names_the_existing_ones(project, cli, make_stage, case):
    make_stage("work", termination={"type": "fixed", "iterations": 1})
    for name in case.existing:
        started = cli("start", name, "--stage", "work", "--foreground")
        assert started.returncode == 0, started.stderr
    before = tree(project / ".claude")
    code, error_type, message = refusal(cli, case.args, None)
    assert code == 4, message
    assert error_type == "not_found"
    assert "no session named 'ghost'" in message
    if case.existing:
        assert all(name in message for name in case.existing), message
    else:
        assert "no sessions" in message
    assert tree(project / ".claude") == before, "looking for a missing session changed state"
