"""A session's health as observed from outside: what ``status`` and ``list`` show."""

from __future__ import annotations

from typing import Any

import attrs

from looprunner.models.state import Health, RunError, RunState


@attrs.frozen
class LockInfo:
    """The lock file and, when readable, who holds it."""

    present: bool
    held: bool
    pid: int | None = None
    pid_alive: bool | None = None
    host: str | None = None
    started_at: str | None = None
    #: something that is no looprunner process of this session holds the lock file
    foreign: bool = False
    foreign_pid: int | None = None
    foreign_user: str | None = None


@attrs.frozen
class Resources:
    """Which of the three resources of a session exist."""

    lock: bool
    state: bool
    tmux: bool | None  # None: the tmux server could not be asked


@attrs.frozen
class BranchProgress:
    """Where one provider of the running (or last) parallel block stands.

    ``status`` is the provider's own: ``running``, ``complete``, ``failed``, ``killed``,
    or ``crashed`` when it was running and its engine is gone.

    ``stage`` is the provider's current stage (``stage_index`` of ``stages``),
    ``iteration`` its completed iterations of it out of ``max_iterations``, and
    ``decision`` the last completed iteration's decision (None before the first).
    """

    name: str
    status: str
    stage: str
    stage_index: int
    stages: int
    iteration: int
    max_iterations: int
    decision: str | None = None


@attrs.frozen
class SessionStatus:
    """A session's health and, when there is one, its recorded state.

    ``detail`` explains the health in a sentence where it needs one (why a session is
    ``crashed``, why ``unknown``). ``fault`` is the error of a run whose engine could
    record its ending only in the lock file (a full or read-only disk, a deleted run
    folder); ``state`` then shows that ending, in memory only, when there is a state.
    """

    session: str
    health: Health
    resources: Resources
    state: RunState | None = None
    lock: LockInfo | None = None
    detail: str | None = None
    #: each provider's progress when the current node is a parallel block
    branches: tuple[BranchProgress, ...] = ()
    fault: RunError | None = None

    @property
    def finished(self) -> bool:
        """True when the session completed, failed or was killed."""
        return self.health in (Health.COMPLETE, Health.FAILED, Health.KILLED)

    def summary(self) -> dict[str, Any]:
        """Return stage, iteration and cap for display."""
        if self.state is None:
            return {"stage": None, "iteration": None, "max": None}
        current = self.state.current
        return {
            "stage": current.id,
            "iteration": self.state.iteration,
            "max": current.max_iterations,
        }
