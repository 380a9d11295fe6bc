"""Run state: what ``state.json`` holds, and the statuses a session goes through."""

from __future__ import annotations

from typing import Literal

import attrs

from looprunner.models.budget import Spent
from looprunner.models.statuses import Health as Health
from looprunner.models.statuses import RunStatus as RunStatus
from looprunner.models.usage import TokenUsage
from looprunner.models.worktree import Worktree

ErrorType = Literal[
    "provider_exit",
    "provider_timeout",
    "provider_stalled",
    "provider_rate_limited",
    "provider_overloaded",
    "provider_auth",
    "too_many_errors",
    "status_missing",
    "status_invalid",
    "agent_error",
    "engine_error",
    "termination_error",
    "crashed",
    "config",
    "disk_full",
    "read_only",
    "run_folder_deleted",
]


@attrs.frozen
class RunError:
    """Why a session failed: a stable ``type``, a readable message, the iteration."""

    type: str
    message: str
    iteration: int | None = None


@attrs.frozen
class StageState:
    """Progress of one pipeline node."""

    id: str
    stage: str
    status: RunStatus = RunStatus.PENDING
    iterations_completed: int = 0
    max_iterations: int = 0
    termination_reason: str | None = None
    #: what this stage spent against its budget
    spent: Spent = attrs.field(factory=Spent)
    #: tokens the stage's agents reported, summed (None: none reported)
    usage: TokenUsage | None = None
    #: what the stage's agents said they cost, summed (None: unknown, never zero)
    cost_usd: float | None = None
    #: the conversation id the stage's agent last reported (``session_mode: continue``)
    agent_session_id: str | None = None


@attrs.frozen
class RunState:
    """The whole of ``state.json``: O(1) in size, the event log holds the history."""

    session: str
    type: Literal["loop", "pipeline"]
    pipeline: str
    status: RunStatus
    started_at: str
    updated_at: str
    backend: str
    stages: tuple[StageState, ...]
    current_stage: int = 0
    iteration: int = 0
    iteration_completed: int = 0
    iteration_started: str | None = None
    finished_at: str | None = None
    completion_reason: str | None = None
    error: RunError | None = None
    pid: int | None = None
    pid_start_time: int | None = None
    host: str | None = None
    boot_id: str | None = None
    agent_pid: int | None = None
    agent_start_time: int | None = None
    #: the ``LOOPRUNNER_AGENT_MARK`` of the running agent: finds what it started
    agent_mark: str | None = None
    version: str | None = None
    #: what the session spent against its budget
    spent: Spent = attrs.field(factory=Spent)
    #: tokens the session's agents reported, summed (None: none reported)
    usage: TokenUsage | None = None
    #: what the session's agents said they cost, summed (None: unknown, never zero)
    cost_usd: float | None = None
    #: the git worktree the agents work in (None: they work in the project itself)
    worktree: Worktree | None = None
    #: the last event of the log this state reflects; an event after it that changes the
    #: state means this file is behind the log (None: written by a version that did not
    #: keep the log as the record, never rebuilt)
    seq: int | None = None

    @property
    def current(self) -> StageState:
        """The state of the node the session is on."""
        return self.stages[min(self.current_stage, len(self.stages) - 1)]

    def with_stage(self, index: int, stage: StageState) -> RunState:
        """Return a copy with node ``index`` replaced."""
        stages = list(self.stages)
        stages[index] = stage
        return attrs.evolve(self, stages=tuple(stages))

    def ended(
        self,
        status: RunStatus,
        *,
        at: str,
        reason: str | None = None,
        error: RunError | None = None,
    ) -> RunState:
        """Return this state finished as ``status``: the one transition to an ending.

        The engine (complete, failed, killed), ``kill`` (an engine that is gone) and
        ``cleanup`` (an engine that died) all finish a session through this method, so a
        finished state always looks the same: no iteration or agent in flight, the
        current stage marked with the session's ending unless it completed.
        """
        if not status.finished:
            raise ValueError(f"{status.value} is not an ending")
        state = self
        if status is not RunStatus.COMPLETE and self.stages:
            index = min(self.current_stage, len(self.stages) - 1)
            state = state.with_stage(index, attrs.evolve(self.stages[index], status=status))
        return attrs.evolve(
            state,
            status=status,
            finished_at=at,
            updated_at=at,
            completion_reason=reason,
            error=error,
            iteration_started=None,
            agent_pid=None,
            agent_start_time=None,
            agent_mark=None,
        )
