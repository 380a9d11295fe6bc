"""What agents said an iteration cost, recorded: event data, run totals, transcripts.

A structured-output agent's report (see :class:`~looprunner.protocols.Reporting`)
becomes the ``iteration_complete`` event's ``usage``, ``cost_usd``, ``num_turns``,
``agent_session_id`` and ``agent_version``, and is added to its stage's and the
session's totals in ``state.json``. What no agent reported stays absent: unknown, not 0.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from looprunner.models import AgentReport, RunState, TokenUsage
from looprunner.models.usage import add_optional, sum_usage

#: the raw event stream of an iteration's agent, beside its output.md
TRANSCRIPT_FILE = "transcript.jsonl"


def transcript_file(folder: Path, output_file: Path, main_output: Path) -> Path:
    """Where an agent's transcript goes: the iteration folder's, or beside its own output."""
    if output_file == main_output:
        return folder / TRANSCRIPT_FILE
    return output_file.with_name(f"{output_file.stem}.{TRANSCRIPT_FILE}")


def usage_dict(usage: TokenUsage) -> dict[str, int]:
    """Return tokens as JSON data."""
    return attrs.asdict(usage)


def report_data(report: AgentReport) -> dict[str, Any]:
    """Return what an ``iteration_complete`` event says of the cost: only what is known."""
    data: dict[str, Any] = {}
    if report.usage is not None:
        data["usage"] = usage_dict(report.usage)
    if report.cost_usd is not None:
        data["cost_usd"] = report.cost_usd
    if report.num_turns is not None:
        data["num_turns"] = report.num_turns
    if report.agent_session_id:
        data["agent_session_id"] = report.agent_session_id
    if report.agent_version:
        data["agent_version"] = report.agent_version
    return data


def add_report(state: RunState, index: int, report: AgentReport) -> RunState:
    """Return ``state`` with ``report`` added to node ``index``'s and the session's totals."""
    stage = state.stages[index]
    stage = attrs.evolve(
        stage,
        usage=sum_usage((stage.usage, report.usage)),
        cost_usd=add_optional(stage.cost_usd, report.cost_usd),
    )
    return attrs.evolve(
        state.with_stage(index, stage),
        usage=sum_usage((state.usage, report.usage)),
        cost_usd=add_optional(state.cost_usd, report.cost_usd),
    )
