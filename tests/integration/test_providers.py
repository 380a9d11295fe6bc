"""The claude, codex and command providers, run for real in tmux with fake agent programs.

The fakes (``tests/fakes``) record the argv, stdin and environment each iteration's agent
got, so these tests check what looprunner actually executes, not what it means to.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from looprunner.names import ProjectPaths
from tests.integration.conftest import COMMAND_AGENT, FAKES_BIN, write_stage

pytestmark = pytest.mark.tmux

CLAUDE_BASE = [
    "-p",
    "--dangerously-skip-permissions",
    "--output-format",
    "stream-json",
    "--verbose",
]
CODEX_BASE = [
    "exec",
    "--json",
    "--dangerously-bypass-approvals-and-sandbox",
    "--skip-git-repo-check",
]


def run_to_end(cli: Any, *args: str, expect: int = 0) -> dict[str, Any]:
    """Start a session in tmux, wait for it, and return ``status --json``."""
    name = args[0]
    started = cli("start", *args)
    assert started.returncode == 0, started.stderr
    waited = cli("wait", name, "--timeout", "60")
    status: dict[str, Any] = json.loads(cli("--json", "status", name).stdout)
    assert waited.returncode == expect, (waited.stdout, waited.stderr, status)
    return status


def events_of(project: Path, name: str) -> list[dict[str, Any]]:
    run = ProjectPaths.of(project).session(name)
    return [json.loads(line) for line in run.events_file.read_text().splitlines()]


def pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


# --------------------------------------------------------------------------- the fakes


class FakeUsage(NamedTuple):
    test_id: str
    argv: list[str]
    code: int
    message: str


FAKE_USAGE = [
    FakeUsage("claude-unknown-option", ["claude", "-p", "--bogus"], 1, "unknown option '--bogus'"),
    FakeUsage("claude-interactive", ["claude", "--model", "opus"], 1, "print mode"),
    FakeUsage("claude-no-prompt", ["claude", "-p"], 1, "Input must be provided"),
    FakeUsage("codex-unknown-argument", ["codex", "exec", "--bogus", "-"], 2, "'--bogus'"),
    FakeUsage("codex-no-exec", ["codex", "--model", "o3", "-"], 2, "'exec'"),
    FakeUsage("codex-bad-override", ["codex", "exec", "-c", "effort", "-"], 2, "key=value"),
]


@pytest.mark.parametrize("case", FAKE_USAGE, ids=[c.test_id for c in FAKE_USAGE])
def test_fakes_refuse_what_the_real_programs_refuse(fake_agents, case):
    # so a wrong flag from looprunner fails the iteration, as it would for real
    result = subprocess.run(
        [str(FAKES_BIN / case.argv[0]), *case.argv[1:]],
        input="",
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == case.code
    assert case.message in result.stderr
    assert fake_agents.names() == []


# --------------------------------------------------------------------------- argv


class ArgvCase(NamedTuple):
    test_id: str
    provider: str
    model: str | None
    argv: list[str]


ARGV_CASES = [
    ArgvCase("claude-no-model", "claude", None, CLAUDE_BASE),
    ArgvCase("claude-model", "claude", "opus", [*CLAUDE_BASE, "--model", "opus"]),
    ArgvCase(
        "codex-no-model", "codex", None, [*CODEX_BASE, "-c", "model_reasoning_effort=high", "-"]
    ),
    ArgvCase(
        "codex-model",
        "codex",
        "gpt-5.2-codex",
        [*CODEX_BASE, "--model", "gpt-5.2-codex", "-c", "model_reasoning_effort=high", "-"],
    ),
    ArgvCase("claude-loop-agents-model", "claude", "opus-4.5", [*CLAUDE_BASE, "--model", "opus"]),
    ArgvCase(
        "codex-model-and-effort",
        "codex",
        "gpt-5.2-codex:xhigh",
        [*CODEX_BASE, "--model", "gpt-5.2-codex", "-c", "model_reasoning_effort=xhigh", "-"],
    ),
]


@pytest.mark.parametrize("case", ARGV_CASES, ids=[c.test_id for c in ARGV_CASES])
def test_provider_runs_the_exact_argv(project, cli, fake_agents, case):
    write_stage(project, "work", provider=case.provider, model=case.model)
    status = run_to_end(cli, "argv", "--stage", "work")
    assert status["health"] == "complete"
    call = fake_agents.call(case.provider, 1)
    assert call["argv"] == case.argv
    assert call["argv0"] == str(FAKES_BIN / case.provider), "the program found on PATH"
    assert call["cwd"] == str(ProjectPaths.of(project).project), "agents run in the project"
    start = next(e for e in events_of(project, "argv") if e["type"] == "iteration_start")
    assert start["data"] == {"provider": case.provider, "model": case.model, "type": "agent"}


# --------------------------------------------------------------------------- prompt and env

PROMPT = (
    "Session ${SESSION_NAME} (legacy ${SESSION}), iteration ${ITERATION} (index ${INDEX}).\n"
    "Read ${CTX}; write ${STATUS}; output ${OUTPUT}.\n"
    "Progress: ${PROGRESS} (legacy ${PROGRESS_FILE}).\n"
    "Context: ${CONTEXT}\n"
    "Left alone: ${CURRENT_BRANCH} $HOME $(touch pwned) `touch pwned-tick` ; rm -rf x | tee y\n"
)
CONTEXT = "focus on $(touch pwned-ctx) and ${ITERATION}"


def expected_prompt(project: Path, session: str, stage: str, iteration: int) -> str:
    run = ProjectPaths.of(project).session(session)
    folder = run.iteration_dir(0, stage, iteration)
    return (
        f"Session {session} (legacy {session}), iteration {iteration} (index {iteration - 1}).\n"
        f"Read {folder / 'context.json'}; write {folder / 'status.json'}; "
        f"output {folder / 'output.md'}.\n"
        f"Progress: {run.progress_file} (legacy {run.progress_file}).\n"
        # the context is inserted as it is: its ${ITERATION} is not expanded a second time
        f"Context: {CONTEXT}\n"
        "Left alone: ${CURRENT_BRANCH} $HOME $(touch pwned) `touch pwned-tick` ; rm -rf x | tee y\n"
    )


@pytest.mark.parametrize("provider", ["claude", "codex"])
def test_prompt_arrives_rendered_on_stdin_and_env_points_at_the_iteration(
    project, cli, fake_agents, tmp_path, monkeypatch, provider
):
    monkeypatch.setenv("CLAUDECODE", "1")  # as when started from inside Claude Code
    (project / "x").mkdir()
    write_stage(project, "work", provider=provider, iterations=2, prompt=PROMPT)
    fake_agents.script({2: {"decision": "stop", "reason": "done", "summary": "second"}})
    status = run_to_end(cli, "render", "--stage", "work", "--context", CONTEXT)
    assert status["health"] == "complete"
    assert status["completion_reason"] == "agent_stop"

    run = ProjectPaths.of(project).session("render")
    for n in (1, 2):
        call = fake_agents.call(provider, n)
        assert call["prompt"] == expected_prompt(project, "render", "work", n)
        folder = run.iteration_dir(0, "work", n)
        expected_env = {
            "LOOPRUNNER_CTX": str(folder / "context.json"),
            "LOOPRUNNER_STATUS": str(folder / "status.json"),
            "LOOPRUNNER_OUTPUT": str(folder / "output.md"),
            "LOOPRUNNER_PROGRESS": str(run.progress_file),
            "LOOPRUNNER_ITERATION": str(n),
            "LOOPRUNNER_SESSION": "render",
            "LOOPRUNNER_STAGE": "work",
        }
        assert {k: call["env"].get(k) for k in expected_env} == expected_env
        context = json.loads((folder / "context.json").read_text())
        assert context["iteration"] == n
        assert context["paths"]["status"] == expected_env["LOOPRUNNER_STATUS"]
        assert f"{provider} (fake): iteration {n}" in (folder / "output.md").read_text()
    if provider == "claude":
        assert fake_agents.call("claude", 1)["claudecode"] is False, "CLAUDECODE is removed"
    completed = [e for e in events_of(project, "render") if e["type"] == "iteration_complete"]
    assert [e["data"]["summary"] for e in completed] == [f"{provider} iteration 1", "second"]
    assert not list(tmp_path.rglob("pwned*")), "text in the prompt or context was executed"
    assert (project / "x").is_dir()
    assert not (project / "y").exists()


# --------------------------------------------------------------------------- failures


class FailureCase(NamedTuple):
    test_id: str
    provider: str
    action: dict[str, Any]
    error_type: str
    message: str


FAILURE_CASES = [
    FailureCase("claude-exit", "claude", {"exit": 3}, "provider_exit", "exited with status 3"),
    FailureCase("codex-exit", "codex", {"exit": 1}, "provider_exit", "exited with status 1"),
    FailureCase("claude-no-status", "claude", {"no_status": True}, "status_missing", "no status"),
    FailureCase(
        "codex-error-decision",
        "codex",
        {"decision": "error", "reason": "tests are red"},
        "agent_error",
        "tests are red",
    ),
]


@pytest.mark.parametrize("case", FAILURE_CASES, ids=[c.test_id for c in FAILURE_CASES])
def test_failing_agent_fails_the_session_with_a_typed_error(project, cli, fake_agents, case):
    write_stage(project, "work", provider=case.provider, iterations=3)
    fake_agents.script({2: case.action})
    status = run_to_end(cli, "failing", "--stage", "work", expect=1)
    assert status["health"] == "failed"
    assert status["status"] == "failed"
    assert status["error"]["type"] == case.error_type
    assert status["error"]["iteration"] == 2
    assert case.message in status["error"]["message"]
    assert status["iteration_completed"] == 1
    assert not fake_agents.has_call(case.provider, 3), "no iteration after a failed one"
    types = [e["type"] for e in events_of(project, "failing")]
    assert types[-2:] == ["iteration_failed", "session_failed"]


@pytest.mark.parametrize("provider", ["claude", "codex"])
def test_stage_timeout_stops_the_agent_with_provider_timeout(project, cli, fake_agents, provider):
    # long enough for the fake agent to start and record itself even on a loaded machine
    write_stage(project, "work", provider=provider, iterations=2, extra="timeout: 5\n")
    fake_agents.script({1: {"sleep": 120}})
    status = run_to_end(cli, "slow", "--stage", "work", expect=1)
    assert status["error"]["type"] == "provider_timeout"
    assert status["error"]["iteration"] == 1
    assert status["iteration_completed"] == 0
    assert pid_gone(fake_agents.call(provider, 1)["pid"]), "the timed-out agent was stopped"


# --------------------------------------------------------------------------- command provider

HOSTILE_ARGS = [
    "; rm -rf x",
    "$(touch pwned)",
    "`touch pwned-tick`",
    "&& touch pwned-and",
    "| tee pwned-pipe",
    "> pwned-redirect",
    "*",
    "$HOME",
    'it\'s "quoted"',
    "two words",
    "",
]


class CommandCase(NamedTuple):
    test_id: str
    command_yaml: str
    argv: list[str]


def _quoted(arg: str) -> str:
    return "'" + arg.replace("'", "'\"'\"'") + "'"


COMMAND_CASES = [
    CommandCase(
        "argv-list",
        "command: " + json.dumps([*COMMAND_AGENT, *HOSTILE_ARGS]) + "\n",
        HOSTILE_ARGS,
    ),
    CommandCase(
        "string-split-like-a-shell-but-never-run-by-one",
        "command: " + json.dumps(" ".join(_quoted(a) for a in [*COMMAND_AGENT, *HOSTILE_ARGS])),
        HOSTILE_ARGS,
    ),
]


@pytest.mark.parametrize("case", COMMAND_CASES, ids=[c.test_id for c in COMMAND_CASES])
def test_command_provider_passes_shell_metacharacters_literally(
    project, cli, fake_agents, tmp_path, case
):
    (project / "x").mkdir()
    (project / "x" / "keep").write_text("still here")
    write_stage(
        project,
        "work",
        provider="command",
        prompt="Do it: $(touch pwned-prompt) `touch pwned-prompt-tick`\n",
        extra=case.command_yaml + "\n",
    )
    status = run_to_end(cli, "hostile", "--stage", "work")
    assert status["health"] == "complete"
    call = fake_agents.call("command", 1)
    assert call["argv"] == case.argv
    assert call["prompt"] == "Do it: $(touch pwned-prompt) `touch pwned-prompt-tick`\n"
    assert not list(tmp_path.rglob("pwned*")), "an argument or the prompt went through a shell"
    assert (project / "x" / "keep").read_text() == "still here"


# --------------------------------------------------------------------------- CLI overrides


class OverrideCase(NamedTuple):
    test_id: str
    stage_provider: str | None
    stage_model: str | None
    cli_args: list[str]
    program: str
    argv: list[str]


OVERRIDE_CASES = [
    OverrideCase(
        "cli-provider-and-model-fill-an-unset-stage",
        None,
        None,
        ["--provider", "codex", "--model", "gpt-5.2-codex:high"],
        "codex",
        [*CODEX_BASE, "--model", "gpt-5.2-codex", "-c", "model_reasoning_effort=high", "-"],
    ),
    OverrideCase(
        "cli-model-alone-goes-to-the-default-claude",
        None,
        None,
        ["--model", "sonnet"],
        "claude",
        [*CLAUDE_BASE, "--model", "sonnet"],
    ),
    OverrideCase(
        "stage-provider-and-model-beat-the-cli",
        "claude",
        "opus",
        ["--provider", "codex", "--model", "gpt-5.2-codex"],
        "claude",
        [*CLAUDE_BASE, "--model", "opus"],
    ),
    OverrideCase(
        "stage-provider-beats-the-cli-provider",
        "codex",
        "o3:low",
        ["--provider", "claude"],
        "codex",
        [*CODEX_BASE, "--model", "o3", "-c", "model_reasoning_effort=low", "-"],
    ),
]


@pytest.mark.parametrize("case", OVERRIDE_CASES, ids=[c.test_id for c in OVERRIDE_CASES])
def test_cli_provider_and_model_apply_only_where_the_stage_sets_none(
    project, cli, fake_agents, case
):
    write_stage(project, "work", provider=case.stage_provider, model=case.stage_model)
    status = run_to_end(cli, "over", "--stage", "work", *case.cli_args)
    assert status["health"] == "complete"
    assert fake_agents.names() == [f"{case.program}-1"]
    assert fake_agents.call(case.program, 1)["argv"] == case.argv


def test_node_beats_stage_beats_cli_in_a_pipeline(project, cli, fake_agents):
    write_stage(project, "plain")
    write_stage(project, "own", provider="codex", model="gpt-5.2-codex")
    pipelines = project / ".looprunner" / "pipelines"
    pipelines.mkdir(parents=True)
    (pipelines / "mixed.yaml").write_text(
        "name: mixed\n"
        "nodes:\n"
        "  - id: by-node\n"
        "    stage: own\n"
        "    provider: claude\n"
        "    model: haiku\n"
        "  - id: by-stage\n"
        "    stage: own\n"
        "  - id: by-cli\n"
        "    stage: plain\n"
    )
    status = run_to_end(
        cli, "prec", "--pipeline", "mixed", "--provider", "claude", "--model", "sonnet"
    )
    assert status["health"] == "complete"
    starts = [e for e in events_of(project, "prec") if e["type"] == "iteration_start"]
    assert [(e["stage"], e["data"]["provider"], e["data"]["model"]) for e in starts] == [
        ("by-node", "claude", "haiku"),
        ("by-stage", "codex", "gpt-5.2-codex"),
        ("by-cli", "claude", "sonnet"),
    ]
    assert fake_agents.call("codex", 1)["argv"] == [
        *CODEX_BASE,
        "--model",
        "gpt-5.2-codex",
        "-c",
        "model_reasoning_effort=high",
        "-",
    ]
