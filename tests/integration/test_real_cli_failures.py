"""The real ``claude`` and ``codex`` failing for real: rate limits, overloads, hangs, timeouts.

The fake model server answers 429 or 529, or accepts requests and never answers. The
CLIs' own retries are kept to one (``fake_model_env(..., retries=1)``) and the engine's
waits to a fraction of a second (stage ``retry:``), so each test takes seconds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from looprunner.engine import proctree
from looprunner.engine.contain import MARK_ENV
from looprunner.names import ProjectPaths
from looprunner.testing.fake_model_server import FakeModelServer, status_command
from looprunner.testing.real_clis import CODEX_FAKE_MODEL, RealCLIs, fake_model_env
from tests.conftest import wait_until
from tests.integration.conftest import write_stage
from tests.integration.test_real_clis import pid_alive

pytestmark = [pytest.mark.tmux, pytest.mark.slow]

FAST_RETRY = "retry:\n  attempts: 3\n  base_delay: 0.05\n  max_delay: 0.1\n"
PROVIDERS = ["claude", "codex"]


def agent_home(tmp_path: Path) -> Path:
    return tmp_path / "agent-home"


def stage(project: Path, provider: str, extra: str, iterations: int = 1) -> None:
    write_stage(
        project,
        "work",
        provider=provider,
        model=CODEX_FAKE_MODEL if provider == "codex" else None,
        iterations=iterations,
        extra=extra,
    )


def run_to_end(cli: Any, env: dict[str, str], name: str, *command: str) -> dict[str, Any]:
    """Start (or resume) a session in tmux, wait for its end, return ``status --json``."""
    assert cli(*command, env=env).returncode == 0
    cli("wait", name, "--timeout", "300", env=env, timeout=330)
    status: dict[str, Any] = json.loads(cli("--json", "status", name, env=env).stdout)
    return status


def events(project: Path, name: str) -> list[dict[str, Any]]:
    log = ProjectPaths.of(project).session(name).events_file
    return [json.loads(line) for line in log.read_text().splitlines()]


def model_requests(server: FakeModelServer) -> int:
    return sum(
        1
        for method, path, _ in server.requests
        if method == "POST" and path.split("?")[0].endswith(("/messages", "/responses"))
    )


def marked(mark: str) -> list[int]:
    """Every live process started with the agent's mark (an agent, or what it started)."""
    return [pid for pid in proctree.snapshot() if proctree.environ_has(pid, MARK_ENV, mark)]


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    ("code", "kind"), [(429, "provider_rate_limited"), (529, "provider_overloaded")]
)
def test_a_persistent_refusal_is_retried_with_backoff_then_fails_classified(
    cli: Any,
    lr_project: Path,
    lr_real_clis: RealCLIs,
    lr_fake_model_server: FakeModelServer,
    tmp_path: Path,
    provider: str,
    code: int,
    kind: str,
) -> None:
    server = lr_fake_model_server
    env = fake_model_env(server, lr_real_clis, agent_home(tmp_path), retries=1)
    server.fail(code)
    stage(lr_project, provider, FAST_RETRY)
    status = run_to_end(cli, env, "lim", "start", "lim", "--stage", "work")
    assert status["health"] == "failed"
    assert status["error"]["type"] == kind
    # each of the engine's 3 attempts ran the CLI, which tried again on its own first
    assert model_requests(server) >= 2 * 3
    log = events(lr_project, "lim")
    waits = [e["data"] for e in log if e["type"] == "retry_wait"]
    assert [(w["attempt"], w["class"]) for w in waits] == [(1, kind), (2, kind)]
    assert "retry_wait" in cli("tail", "lim", env=env).stdout
    # the provider comes back: the session resumes and completes
    server.heal()
    status = run_to_end(cli, env, "lim", "resume", "lim")
    assert (status["health"], status["completion_reason"]) == ("complete", "agent_stop")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_rate_limit_that_lifts_costs_one_retry_not_the_session(
    cli: Any,
    lr_project: Path,
    lr_real_clis: RealCLIs,
    lr_fake_model_server: FakeModelServer,
    tmp_path: Path,
    provider: str,
) -> None:
    server = lr_fake_model_server
    # without retries of its own, the CLI gives up on the first 429: the engine's turn
    env = fake_model_env(server, lr_real_clis, agent_home(tmp_path), retries=0)
    server.fail(429, times=1)
    stage(lr_project, provider, FAST_RETRY)
    status = run_to_end(cli, env, "lift", "start", "lift", "--stage", "work")
    assert (status["health"], status["completion_reason"]) == ("complete", "agent_stop")
    log = events(lr_project, "lift")
    waits = [e["data"] for e in log if e["type"] == "retry_wait"]
    assert [(w["attempt"], w["class"]) for w in waits] == [(1, "provider_rate_limited")]
    assert not [e for e in log if e["type"] == "iteration_failed"]
    assert [e["iteration"] for e in log if e["type"] == "iteration_complete"] == [1]


def wait_for_agent(project: Path, name: str) -> str:
    """Wait until the session's agent runs; return its mark."""
    state_file = ProjectPaths.of(project).session(name).state_file

    def mark() -> str | None:
        try:
            value = json.loads(state_file.read_text()).get("agent_mark")
        except (OSError, ValueError):
            return None
        return value if isinstance(value, str) else None

    found = wait_until(mark, timeout=120, what="the agent to start")
    assert isinstance(found, str)
    return found


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_provider_that_never_answers_is_cut_by_idle_timeout(
    cli: Any,
    lr_project: Path,
    lr_real_clis: RealCLIs,
    lr_fake_model_server: FakeModelServer,
    tmp_path: Path,
    provider: str,
) -> None:
    server = lr_fake_model_server
    env = fake_model_env(server, lr_real_clis, agent_home(tmp_path), retries=0)
    server.hang()
    stage(lr_project, provider, "idle_timeout: 8\n")
    assert cli("start", "hung", "--stage", "work", env=env).returncode == 0
    mark = wait_for_agent(lr_project, "hung")
    ended = ProjectPaths.of(lr_project).session("hung").events_file
    wait_until(
        lambda: model_requests(server) > 0 or "session_failed" in ended.read_text(),
        timeout=120,
        what="a model request",
    )
    assert model_requests(server) > 0, "the agent was stopped before it asked the model"
    assert marked(mark), "the agent waits for its answer"
    cli("wait", "hung", "--timeout", "300", env=env, timeout=330)
    status = json.loads(cli("--json", "status", "hung", env=env).stdout)
    assert status["health"] == "failed"
    assert status["error"]["type"] == "provider_stalled"
    assert marked(mark) == []  # the CLI and everything it started are gone


def test_a_background_task_of_claude_does_not_hold_the_iteration_past_its_timeout(
    cli: Any,
    lr_project: Path,
    lr_real_clis: RealCLIs,
    lr_fake_model_server: FakeModelServer,
    tmp_path: Path,
) -> None:
    # Claude's Bash tool starts the command in the background (a dev server, say); claude
    # answers, but `claude -p` does not exit while the task runs: only the timeout ends it
    server = lr_fake_model_server
    pid_file = tmp_path / "task.pid"
    server.tool_options = {"run_in_background": True}
    server.command_for = lambda turn: (
        f"{status_command('stop')}; echo $$ > {pid_file}; exec sleep 300"
    )
    env = fake_model_env(server, lr_real_clis, agent_home(tmp_path), retries=0)
    stage(lr_project, "claude", "timeout: 30\n")
    assert cli("start", "bg", "--stage", "work", env=env).returncode == 0
    mark = wait_for_agent(lr_project, "bg")
    wait_until(
        lambda: pid_file.is_file() and pid_file.read_text().strip(),
        timeout=120,
        what="the background task to start",
    )
    task = int(pid_file.read_text())
    assert task in marked(mark)
    cli("wait", "bg", "--timeout", "300", env=env, timeout=330)
    status = json.loads(cli("--json", "status", "bg", env=env).stdout)
    assert status["health"] == "failed"
    assert status["error"]["type"] == "provider_timeout"
    # claude had given its answer: what kept it running was the task alone
    folder = ProjectPaths.of(lr_project).session("bg").iteration_dir(0, "work", 1)
    transcript = (folder / "transcript.jsonl").read_text().splitlines()
    assert any(json.loads(line).get("type") == "result" for line in transcript)
    assert not pid_alive(task)
    assert marked(mark) == []
