"""Frozen attrs models: specifications, run state, events and statuses.

Models import only attrs, the standard library and :mod:`looprunner.errors`.
Each name is loaded from its own module on first use: a command that reads one state
file builds the state's classes, not every model's (an attrs class costs its
construction at import time).
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing itself is not imported: a quick look needs nothing of it
if TYPE_CHECKING:
    from typing import Any

    from looprunner.models.agent import (
        AgentCommand,
        AgentPaths,
        AgentStatus,
        Decision,
        Invocation,
        WorkDone,
    )
    from looprunner.models.budget import DEFAULT_TIMEOUT, Budget, Retry, Spent
    from looprunner.models.cleanup import KINDS, CleanupReport, Problem, ProblemKind
    from looprunner.models.doctor import Check
    from looprunner.models.events import Event
    from looprunner.models.iteration import (
        AgentRun,
        AgentRunning,
        Branch,
        BranchResult,
        IterationContext,
        IterationPaths,
    )
    from looprunner.models.pipeline import Node, NodeInputs, ParallelInput, Pipeline, Stage
    from looprunner.models.results import IterationResult, StageResult
    from looprunner.models.runs import RemovalReport, RunInfo
    from looprunner.models.state import RunError, RunState, StageState
    from looprunner.models.status import BranchProgress, LockInfo, Resources, SessionStatus
    from looprunner.models.statuses import Health, RunStatus
    from looprunner.models.termination import JudgeSpec, Termination
    from looprunner.models.usage import AgentReport, TokenUsage
    from looprunner.models.worktree import Worktree, WorktreeStatus

__all__ = [
    "DEFAULT_TIMEOUT",
    "KINDS",
    "AgentCommand",
    "AgentPaths",
    "AgentReport",
    "AgentRun",
    "AgentRunning",
    "AgentStatus",
    "Branch",
    "BranchProgress",
    "BranchResult",
    "Budget",
    "Check",
    "CleanupReport",
    "Decision",
    "Event",
    "Health",
    "Invocation",
    "IterationContext",
    "IterationPaths",
    "IterationResult",
    "JudgeSpec",
    "LockInfo",
    "Node",
    "NodeInputs",
    "ParallelInput",
    "Pipeline",
    "Problem",
    "ProblemKind",
    "RemovalReport",
    "Resources",
    "Retry",
    "RunError",
    "RunInfo",
    "RunState",
    "RunStatus",
    "SessionStatus",
    "Spent",
    "Stage",
    "StageResult",
    "StageState",
    "Termination",
    "TokenUsage",
    "WorkDone",
    "Worktree",
    "WorktreeStatus",
]

#: each public name -> the module (in this package) that defines it
_HOMES: dict[str, str] = {
    **dict.fromkeys(
        ("AgentCommand", "AgentPaths", "AgentStatus", "Decision", "Invocation", "WorkDone"), "agent"
    ),
    **dict.fromkeys(("Budget", "DEFAULT_TIMEOUT", "Retry", "Spent"), "budget"),
    **dict.fromkeys(("CleanupReport", "KINDS", "Problem", "ProblemKind"), "cleanup"),
    **dict.fromkeys(("Check",), "doctor"),
    **dict.fromkeys(("Event",), "events"),
    **dict.fromkeys(
        (
            "AgentRun",
            "AgentRunning",
            "Branch",
            "BranchResult",
            "IterationContext",
            "IterationPaths",
        ),
        "iteration",
    ),
    **dict.fromkeys(("Node", "NodeInputs", "ParallelInput", "Pipeline", "Stage"), "pipeline"),
    **dict.fromkeys(("IterationResult", "StageResult"), "results"),
    **dict.fromkeys(("RemovalReport", "RunInfo"), "runs"),
    **dict.fromkeys(("RunError", "RunState", "StageState"), "state"),
    **dict.fromkeys(("Health", "RunStatus"), "statuses"),
    **dict.fromkeys(("BranchProgress", "LockInfo", "Resources", "SessionStatus"), "status"),
    **dict.fromkeys(("JudgeSpec", "Termination"), "termination"),
    **dict.fromkeys(("AgentReport", "TokenUsage"), "usage"),
    **dict.fromkeys(("Worktree", "WorktreeStatus"), "worktree"),
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'looprunner.models' has no attribute {name!r}")
    # __import__, not importlib.import_module: ``python -X importtime`` lists only the former
    value = getattr(__import__(f"{__name__}.{home}", fromlist=[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
