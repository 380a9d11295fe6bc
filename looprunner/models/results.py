"""What lifecycle hooks receive about a finished iteration or stage."""

from __future__ import annotations

import attrs

from looprunner.models.agent import AgentStatus, Decision


@attrs.frozen
class IterationResult:
    """The outcome of one completed iteration.

    Attributes
    ----------
    decision, reason, summary:
        What the agent wrote in status.json.
    exit_code:
        The agent process's exit status.
    duration:
        Seconds the agent ran.
    status:
        The whole parsed status.json.
    """

    decision: Decision
    reason: str
    summary: str
    exit_code: int | None
    duration: float
    status: AgentStatus


@attrs.frozen
class StageResult:
    """The outcome of a completed stage (pipeline node)."""

    id: str
    stage: str
    iterations: int
    reason: str
