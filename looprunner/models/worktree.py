"""A session's git worktree: where its agents work when it runs in one.

``start --worktree`` (or ``worktree: true`` in a stage or pipeline) gives a session a
checkout of its own, ``.looprunner/worktrees/NAME`` on branch ``looprunner/NAME``, so
several loops can change one repository at once without touching each other's files.
The record says where it is and which commit it started from; ``state.json`` keeps it.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class Worktree:
    """Where a session's agents work, and what ``status`` compares the branch with.

    Attributes
    ----------
    path:
        The worktree folder (absolute): ``PROJECT/.looprunner/worktrees/NAME``.
    branch:
        The branch checked out there (``looprunner/NAME``).
    base:
        The commit the session started from: the project's ``HEAD`` for a new branch,
        the branch's own tip when an existing branch was reused. ``status`` counts the
        commits the branch has made since.
    workdir:
        The agents' working directory: ``path``, or the project's folder inside it when
        the project is a subfolder of its repository.
    """

    path: str
    branch: str
    base: str
    workdir: str


@attrs.frozen
class WorktreeStatus:
    """A session's worktree as ``status`` shows it, looked at now.

    ``present`` is False when the folder is gone (removed by hand); ``ahead`` is how many
    commits ``branch`` has that ``base`` has not, and ``changes`` how many files have
    uncommitted changes (untracked ones included); each None when git could not say.
    """

    path: str
    branch: str
    base: str
    present: bool
    ahead: int | None = None
    changes: int | None = None
