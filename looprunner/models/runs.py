"""Run folders as ``runs``, ``rm`` and ``prune`` see them, and what a removal did."""

from __future__ import annotations

from pathlib import Path

import attrs

from looprunner.models.state import Health, RunState


@attrs.frozen
class RunInfo:
    """One run folder: a session's current run, or an earlier run kept aside.

    ``name`` is what to type to reach it: the session's name for its current run, the
    full name (``auth.20261129T163736``) for an earlier one, which ``start --force``
    moved aside at ``kept_at`` (ISO-8601 UTC; None for a current run).
    """

    name: str
    session: str
    health: Health
    run_dir: Path
    state: RunState | None = None
    kept_at: str | None = None
    detail: str | None = None

    @property
    def kept(self) -> bool:
        """True for an earlier run kept aside, False for a session's current run."""
        return self.kept_at is not None

    @property
    def ended_at(self) -> str | None:
        """When the run last did something: its end, else its last update, else its start."""
        state = self.state
        if state is None:
            return self.kept_at
        return state.finished_at or state.updated_at or state.started_at or self.kept_at


@attrs.frozen
class RemovalReport:
    """What ``rm`` or ``prune`` removed (with ``dry_run``: would remove), and what not.

    ``left`` pairs each run that matched but was left in place with the reason.
    """

    removed: tuple[RunInfo, ...]
    left: tuple[tuple[RunInfo, str], ...] = ()
    dry_run: bool = False
    #: what became of the removed runs' git worktrees, a line each (removed, or kept
    #: and why: a worktree with uncommitted changes is never deleted)
    worktrees: tuple[str, ...] = ()
