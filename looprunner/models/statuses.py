"""The statuses a session goes through and the healths it is reported in.

Plain enums, apart from the attrs models: the command line's quick look at a session
(:mod:`looprunner.glance`) names healths without building any model class.
"""

from __future__ import annotations

import enum


class RunStatus(enum.StrEnum):
    """What the engine last recorded: ``pending`` → ``running`` → a finished status."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"
    KILLED = "killed"

    @property
    def finished(self) -> bool:
        """True once the engine will not run this session again by itself."""
        return self in (RunStatus.COMPLETE, RunStatus.FAILED, RunStatus.KILLED)


class Health(enum.StrEnum):
    """What ``status`` and ``list`` report, derived from lock, state and tmux together."""

    RUNNING = "running"
    CRASHED = "crashed"
    COMPLETE = "complete"
    FAILED = "failed"
    KILLED = "killed"
    ORPHANED = "orphaned"
    UNKNOWN = "unknown"
    NOT_FOUND = "not_found"
