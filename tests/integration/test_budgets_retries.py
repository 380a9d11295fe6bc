"""Budgets, breakers, timeouts and retries, with real agent processes that fail for real.

The fake agent (``tests/fakes/limited_agent.py``) prints the very lines Claude Code and
Codex print when rate-limited or refused, and reports its cost in ``status.json``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import write_stage

FAKES = Path(__file__).resolve().parent.parent / "fakes"
CLAUDE_429 = (
    'API Error: 429 {"type":"error","error":{"type":"rate_limit_error",'
    '"message":"Number of request tokens has exceeded your per-minute rate limit"}}'
)
CODEX_429 = "ERROR: exceeded retry limit, last status: 429 Too Many Requests"
CLAUDE_AUTH = "Invalid API key · Please run /login"

CONTINUE = {"decision": "continue", "reason": "more to do", "summary": "did some"}
STOP = {"decision": "stop", "reason": "all done", "summary": "finished"}


def stage_with(project: Path, script: dict[str, Any], *, iterations: int, extra: str) -> None:
    """A command stage running the limited agent with ``script``."""
    script_file = project / "agent-script.json"
    script_file.write_text(json.dumps(script))
    argv = [sys.executable, str(FAKES / "limited_agent.py"), str(script_file)]
    write_stage(
        project,
        provider="command",
        iterations=iterations,
        extra=f"command: {json.dumps(argv)}\n{extra}",
    )


def events(project: Path, name: str) -> list[dict[str, Any]]:
    log = project / ".claude" / "pipeline-runs" / name / "events.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()]


def state(project: Path, name: str) -> dict[str, Any]:
    path = project / ".claude" / "pipeline-runs" / name / "state.json"
    return json.loads(path.read_text())


def calls(project: Path) -> list[str]:
    path = project / "calls.log"
    return path.read_text().split() if path.exists() else []


FAST_RETRY = "retry:\n  attempts: 3\n  base_delay: 0.05\n  max_delay: 0.1\n"

Cli = Callable[..., Any]


@pytest.mark.parametrize("line", [CLAUDE_429, CODEX_429], ids=["claude", "codex"])
def test_persistent_rate_limit_is_retried_then_fails_classified_and_resumes(
    project: Path, cli: Cli, line: str
) -> None:
    stage_with(
        project,
        {"1": [{"print": line, "exit": 1}], "2": [{"status": STOP}]},
        iterations=2,
        extra=FAST_RETRY,
    )
    done = cli("start", "limited", "--stage", "work", "--foreground")
    assert done.returncode == 1, done.stderr
    final = state(project, "limited")
    assert final["status"] == "failed"
    assert final["error"]["type"] == "provider_rate_limited"
    assert "429" in final["error"]["message"]
    waits = [e for e in events(project, "limited") if e["type"] == "retry_wait"]
    assert [(w["data"]["attempt"], w["data"]["class"]) for w in waits] == [
        (1, "provider_rate_limited"),
        (2, "provider_rate_limited"),
    ]
    assert calls(project) == ["1", "1", "1"]  # three attempts in all
    tail = cli("tail", "limited")
    assert "retry_wait" in tail.stdout
    # the limit lifts: resume runs the iteration again, and it succeeds
    script = json.loads((project / "agent-script.json").read_text())
    script["1"] = [{"status": CONTINUE}]
    (project / "agent-script.json").write_text(json.dumps(script))
    resumed = cli("resume", "limited", "--foreground")
    assert resumed.returncode == 0, resumed.stderr
    assert state(project, "limited")["status"] == "complete"


def test_auth_failure_is_not_retried_and_says_what_to_set(project: Path, cli: Cli) -> None:
    stage_with(
        project,
        {"default": [{"print": CLAUDE_AUTH, "exit": 1}]},
        iterations=3,
        extra=FAST_RETRY + "budget:\n  max_consecutive_errors: 3\n",
    )
    done = cli("start", "auth", "--stage", "work", "--foreground")
    assert done.returncode == 1
    error = state(project, "auth")["error"]
    assert error["type"] == "provider_auth"
    assert "Please run /login" in error["message"]
    assert calls(project) == ["1"]  # neither retried nor tolerated
    assert not [e for e in events(project, "auth") if e["type"] == "retry_wait"]


def test_cost_budget_ends_the_loop_after_the_iteration_that_crossed_it(
    project: Path, cli: Cli
) -> None:
    paid = {**CONTINUE, "cost_usd": 0.4, "usage": {"input_tokens": 100, "output_tokens": 20}}
    stage_with(
        project,
        {"default": [{"status": paid}]},
        iterations=10,
        extra="budget:\n  max_cost_usd: 1.0\n",
    )
    done = cli("start", "spend", "--stage", "work", "--foreground")
    assert done.returncode == 0, done.stderr
    final = state(project, "spend")
    assert final["status"] == "complete"
    assert final["completion_reason"] == "budget_cost"
    assert final["iteration_completed"] == 3  # 0.4, 0.8, 1.2: the third crossed it
    assert final["spent"]["cost_usd"] == pytest.approx(1.2)
    assert final["spent"]["tokens"] == 360
    done_events = [e for e in events(project, "spend") if e["type"] == "iteration_complete"]
    assert done_events[0]["data"]["cost_usd"] == 0.4
    assert done_events[0]["data"]["usage"] == {"input_tokens": 100, "output_tokens": 20}
    shown = cli("status", "spend")
    assert "budget_cost" in shown.stdout
    assert "$1.2" in shown.stdout


def test_token_budget_of_the_pipeline(project: Path, cli: Cli) -> None:
    paid = {**CONTINUE, "usage": {"input_tokens": 600, "output_tokens": 100}}
    stage_with(project, {"default": [{"status": paid}]}, iterations=10, extra="")
    pipelines = project / ".looprunner" / "pipelines"
    pipelines.mkdir(parents=True)
    (pipelines / "p.yaml").write_text(
        "budget:\n  max_tokens: 2000\nnodes:\n  - id: a\n    stage: work\n"
    )
    done = cli("start", "tokens", "--pipeline", "p", "--foreground")
    assert done.returncode == 0, done.stderr
    final = state(project, "tokens")
    assert final["completion_reason"] == "budget_tokens"
    assert final["iteration_completed"] == 3


def test_a_stop_decision_beats_the_budget(project: Path, cli: Cli) -> None:
    stage_with(
        project,
        {
            "default": [{"status": {**CONTINUE, "cost_usd": 0.6}}],
            "2": [{"status": {**STOP, "cost_usd": 0.6}}],
        },
        iterations=10,
        extra="budget:\n  max_cost_usd: 1.0\n",
    )
    done = cli("start", "stops", "--stage", "work", "--foreground")
    assert done.returncode == 0, done.stderr
    final = state(project, "stops")
    assert final["completion_reason"] == "agent_stop"
    assert final["iteration_completed"] == 2


def test_consecutive_errors_are_tolerated_up_to_the_limit(project: Path, cli: Cli) -> None:
    crash = [{"print": "Segmentation fault", "exit": 3}]
    stage_with(
        project,
        {"1": crash, "2": [{"status": CONTINUE}], "default": crash},
        iterations=10,
        extra="budget:\n  max_consecutive_errors: 3\n",
    )
    done = cli("start", "flaky", "--stage", "work", "--foreground")
    assert done.returncode == 1
    final = state(project, "flaky")
    assert final["status"] == "failed"
    assert final["error"]["type"] == "too_many_errors"
    assert "provider_exit" in final["error"]["message"]
    # 1 failed (tolerated), 2 succeeded (the count starts again), 3 4 5 failed: the end
    assert calls(project) == ["1", "2", "3", "4", "5"]
    failed = [e["iteration"] for e in events(project, "flaky") if e["type"] == "iteration_failed"]
    assert failed == [1, 3, 4, 5]


def test_idle_agent_is_stopped_as_stalled(project: Path, cli: Cli) -> None:
    stage_with(
        project,
        {"default": [{"hang": True}]},
        iterations=1,
        extra="idle_timeout: 1\n",
    )
    done = cli("start", "idle", "--stage", "work", "--foreground", timeout=120)
    assert done.returncode == 1
    error = state(project, "idle")["error"]
    assert error["type"] == "provider_stalled"


def test_a_reached_budget_is_announced_once_with_what_was_spent(project: Path, cli: Cli) -> None:
    paid = {**CONTINUE, "cost_usd": 0.4}
    stage_with(
        project,
        {"default": [{"status": paid}]},
        iterations=10,
        extra="budget:\n  max_cost_usd: 1.0\n",
    )
    done = cli("start", "told", "--stage", "work", "--foreground")
    assert done.returncode == 0, done.stderr
    log = events(project, "told")
    reached = [e for e in log if e["type"] == "budget_reached"]
    assert len(reached) == 1
    assert reached[0]["stage"] == "work"
    assert reached[0]["iteration"] == 3
    data = reached[0]["data"]
    assert data == {
        "reason": "budget_cost",
        "scope": "stage",
        "key": "max_cost_usd",
        "limit": 1.0,
        "spent": pytest.approx(1.2),
    }
    # announced before the stage and the session end with its reason
    kinds = [e["type"] for e in log]
    assert kinds[-3:] == ["budget_reached", "stage_complete", "session_complete"]
    assert log[-1]["data"]["reason"] == "budget_cost"
    assert "budget_reached" in cli("tail", "told").stdout


def test_a_pipelines_token_budget_is_announced_as_the_sessions(project: Path, cli: Cli) -> None:
    paid = {**CONTINUE, "usage": {"input_tokens": 600, "output_tokens": 100}}
    stage_with(project, {"default": [{"status": paid}]}, iterations=10, extra="")
    pipelines = project / ".looprunner" / "pipelines"
    pipelines.mkdir(parents=True)
    (pipelines / "p.yaml").write_text(
        "budget:\n  max_tokens: 2000\nnodes:\n  - id: a\n    stage: work\n"
    )
    assert cli("start", "tok", "--pipeline", "p", "--foreground").returncode == 0
    reached = [e for e in events(project, "tok") if e["type"] == "budget_reached"]
    assert [e["data"] for e in reached] == [
        {
            "reason": "budget_tokens",
            "scope": "session",
            "key": "max_tokens",
            "limit": 2000,
            "spent": 2100,
        }
    ]
