"""Frozen attrs models: specifications, run state, events and statuses.

Models import only attrs, the standard library and :mod:`looprunner.errors`.
"""

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
from looprunner.models.state import Health, RunError, RunState, RunStatus, StageState
from looprunner.models.status import BranchProgress, LockInfo, Resources, SessionStatus
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
