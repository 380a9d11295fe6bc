"""What a parallel block's providers spend counts in the session's totals and budgets.

Each provider of the block runs ``tests/fakes/limited_agent.py`` under the ``command``
provider, reporting a cost and tokens in its ``status.json`` as an agent may.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_budgets_retries import CONTINUE, Cli, events, stage_with, state

PAID = {**CONTINUE, "cost_usd": 0.4, "usage": {"input_tokens": 100, "output_tokens": 20}}


def block_pipeline(project: Path, budget: str) -> None:
    pipelines = project / ".looprunner" / "pipelines"
    pipelines.mkdir(parents=True)
    (pipelines / "blk.yaml").write_text(
        f"{budget}nodes:\n"
        "  - id: blk\n"
        "    parallel:\n"
        "      providers: [{name: a, provider: command}, {name: b, provider: command}]\n"
        "      stages:\n"
        "        - {id: work, stage: work}\n"
        "  - id: after\n"
        "    stage: work\n"
    )


def branch(project: Path, name: str, provider: str) -> dict[str, Any]:
    path = (
        project / ".claude" / "pipeline-runs" / name / "parallel-00-blk" / provider / "state.json"
    )
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def test_what_the_providers_of_a_block_spent_is_in_the_sessions_totals(
    project: Path, cli: Cli
) -> None:
    stage_with(project, {"default": [{"status": PAID}]}, iterations=2, extra="")
    block_pipeline(project, "")
    done = cli("start", "sum", "--pipeline", "blk", "--foreground")
    assert done.returncode == 0, done.stderr
    final = state(project, "sum")
    assert final["status"] == "complete"
    a, b = branch(project, "sum", "a"), branch(project, "sum", "b")
    assert a["spent"]["cost_usd"] == pytest.approx(0.8)
    assert b["spent"]["tokens"] == 240
    block, after = final["stages"]
    # the block's node spent what its providers did; the session that and the next node
    assert block["spent"]["cost_usd"] == pytest.approx(1.6)
    assert block["spent"]["tokens"] == 480
    assert after["spent"]["cost_usd"] == pytest.approx(0.8)
    assert final["spent"]["cost_usd"] == pytest.approx(2.4)
    assert final["spent"]["tokens"] == 720
    assert "$2.4" in cli("status", "sum").stdout


def test_a_session_budget_reached_inside_a_block_ends_the_session(project: Path, cli: Cli) -> None:
    stage_with(project, {"default": [{"status": PAID}]}, iterations=3, extra="")
    block_pipeline(project, "budget:\n  max_cost_usd: 1.0\n")
    done = cli("start", "cap", "--pipeline", "blk", "--foreground")
    assert done.returncode == 0, done.stderr
    final = state(project, "cap")
    assert (final["status"], final["completion_reason"]) == ("complete", "budget_cost")
    log = events(project, "cap")
    ran = [e for e in log if e["type"] == "iteration_complete" and e["data"].get("provider")]
    # the providers stop at their next iteration once 1.0 is spent: 3 or 4 of their 6 ran
    # (both may be mid-iteration when it is crossed); the node after the block never runs
    assert 3 <= len(ran) <= 4
    assert not [e for e in log if e["type"] == "iteration_start" and e["stage"] == "after"]
    spent = final["spent"]["cost_usd"]
    assert spent == pytest.approx(0.4 * len(ran))
    assert spent == pytest.approx(
        branch(project, "cap", "a")["spent"]["cost_usd"]
        + branch(project, "cap", "b")["spent"]["cost_usd"]
    )
    reached = [e for e in log if e["type"] == "budget_reached"]
    assert len(reached) == 1
    assert reached[0]["data"] == {
        "reason": "budget_cost",
        "scope": "session",
        "key": "max_cost_usd",
        "limit": 1.0,
        "spent": pytest.approx(spent),
    }
