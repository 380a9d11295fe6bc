"""What ``cleanup`` finds and does: problems of a session's resources, and the report."""

from __future__ import annotations

from typing import Literal

import attrs

ProblemKind = Literal[
    "unsafe_file",
    "orphaned_tmux",
    "zombie_state",
    "unlogged_ending",
    "stale_handoff",
    "stale_lock",
]
#: repair order: a symlink or special file in our place first (every other repair opens
#: the lock file), then the backend's session, then the state, then the log, then the
#: environment a dead launch left, then the lock file
KINDS: tuple[ProblemKind, ...] = (
    "unsafe_file",
    "orphaned_tmux",
    "zombie_state",
    "unlogged_ending",
    "stale_handoff",
    "stale_lock",
)


@attrs.frozen
class Problem:
    """One thing cleanup found; ``action`` says what was done about it (or why not).

    ``orphaned_tmux`` is the historical name of "the backend holds a session that no
    engine runs" (a tmux session for the tmux backend); ``backend`` says whose it is.
    """

    kind: ProblemKind
    session: str
    detail: str
    fixed: bool = False
    action: str | None = None
    backend: str | None = None
    path: str | None = None


@attrs.frozen
class CleanupReport:
    """What a cleanup found and, with ``fix``, what it repaired."""

    problems: tuple[Problem, ...]
    tmux_reachable: bool
    fix: bool = False

    @property
    def clean(self) -> bool:
        """True when nothing was found."""
        return not self.problems
