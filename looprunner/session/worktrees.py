"""A session's git worktree: planned, made or reused, looked at, and removed.

``start --worktree`` (or ``worktree: true`` in a stage or pipeline) runs the session's
agents in ``PROJECT/.looprunner/worktrees/NAME`` on branch ``looprunner/NAME``, so
several loops can work on one repository without touching each other's files or the
user's own checkout. The session's state, lock, event log and context files stay in the
project's state folder, where every command finds them.

- The branch is made from the project's ``HEAD``; an existing ``looprunner/NAME`` that
  is checked out nowhere is checked out again (its commits are the session's earlier
  work), and a worktree already at the path is reused, unless it has uncommitted
  changes: a new run never starts on work nobody committed.
- Where no worktree can be made the start is refused before anything is written: the
  project is in no repository, the branch is checked out elsewhere, a folder that is no
  worktree of the repository is in the way.
- A worktree is never removed while it has uncommitted changes (untracked files
  included); removing one keeps its branch, and so every commit.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Literal

import attrs

from looprunner import gitrepo
from looprunner.errors import WorktreeDirtyError, WorktreeError, WorktreeRefusedError
from looprunner.models import Pipeline, Worktree, WorktreeStatus
from looprunner.names import ProjectPaths
from looprunner.store.worktree import read_worktree

#: where the worktrees go, relative to the project
WORKTREES = Path(".looprunner") / "worktrees"
#: every session's branch is this prefix and its name
BRANCH_PREFIX = "looprunner/"


def branch_name(session: str) -> str:
    """Return the branch a session's worktree has checked out."""
    return BRANCH_PREFIX + session


def _same(a: Path, b: Path) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


@attrs.frozen
class WorktreePlan:
    """What a start will do for its worktree (``dry-run`` shows it, ``start`` does it).

    ``action`` is ``create`` (a new branch at ``base``, the project's ``HEAD``),
    ``checkout`` (the existing branch, whose tip is ``base``, checked out anew) or
    ``reuse`` (the worktree is there already).
    """

    repo: Path
    path: Path
    branch: str
    base: str
    workdir: Path
    action: Literal["create", "checkout", "reuse"]
    #: git still lists a worktree at ``path`` whose folder is gone: forgotten first
    stale: bool = False

    def record(self) -> Worktree:
        """Return the record the session keeps of its worktree."""
        return Worktree(
            path=str(self.path), branch=self.branch, base=self.base, workdir=str(self.workdir)
        )

    def sentence(self) -> str:
        """Say what the start will do, in a line."""
        short = self.base[:12]
        if self.action == "create":
            return f"{self.path}: new branch {self.branch} from HEAD ({short})"
        if self.action == "checkout":
            return f"{self.path}: existing branch {self.branch} ({short}) checked out"
        return f"{self.path}: reused, on branch {self.branch} ({short})"


def asking(pipeline: Pipeline, wanted: bool) -> Pipeline:
    """Return ``pipeline`` asking for a worktree or not, whatever its stages said."""
    nodes = tuple(
        attrs.evolve(node, stage=attrs.evolve(node.stage, worktree=False))
        for node in pipeline.nodes
    )
    return attrs.evolve(pipeline, nodes=nodes, worktree=wanted)


def plan(project: Path, session: str) -> WorktreePlan:
    """Decide how session ``session`` of ``project`` gets its worktree; change nothing.

    Raises
    ------
    WorktreeRefusedError
        No worktree can be made (exit 2): see the module docstring.
    GitMissingError
        git is not installed.
    """
    project = project.resolve()
    repo = gitrepo.toplevel(project)
    if repo is None:
        raise WorktreeRefusedError(
            f"project {project} is not in a git repository; a session in a worktree needs one "
            "('git init', or start without --worktree)",
            path=project,
        )
    path = project / WORKTREES / session
    branch = branch_name(session)
    workdir = path / project.relative_to(repo)
    listed = gitrepo.checkouts(repo)
    here = next((c for c in listed if _same(c.path, path)), None)
    for other in listed:
        if other.branch == branch and not _same(other.path, path) and not other.prunable:
            raise WorktreeRefusedError(
                f"project {project}: branch {branch} is checked out in {other.path}; "
                f"a session's branch must be free for its worktree (check out another "
                f"branch there, or 'git worktree remove {other.path}')",
                path=project,
            )
    if here is not None and not here.prunable:
        if here.branch != branch:
            raise WorktreeRefusedError(
                f"project {project}: {path} is a worktree on "
                f"{here.branch or 'a detached HEAD'}, not on {branch}; move it away",
                path=project,
            )
        base = gitrepo.branch_commit(repo, branch)
        assert base is not None  # checked out there, so it exists
        return WorktreePlan(repo, path, branch, base, workdir, "reuse")
    if path.exists() or path.is_symlink():
        raise WorktreeRefusedError(
            f"project {project}: {path} is in the way: it is not a worktree of {repo}; "
            "move it away",
            path=project,
        )
    stale = here is not None
    tip = gitrepo.branch_commit(repo, branch)
    if tip is not None:
        return WorktreePlan(repo, path, branch, tip, workdir, "checkout", stale)
    head = gitrepo.commit_of(repo, "HEAD")
    if head is None:
        raise WorktreeRefusedError(
            f"project {project}: the repository {repo} has no commit yet; commit once first, "
            "so the session's branch has somewhere to start",
            path=project,
        )
    return WorktreePlan(repo, path, branch, head, workdir, "create", stale)


def refuse_dirty(planned: WorktreePlan) -> None:
    """Refuse (exit 3) to start a run in a worktree that has uncommitted changes."""
    if planned.action != "reuse":
        return
    pending = gitrepo.changes(planned.path)
    if pending:
        raise WorktreeDirtyError(
            f"the worktree {planned.path} has {len(pending)} uncommitted change(s); commit "
            f"or discard them (git -C {planned.path} status), then start again",
            path=planned.path,
            changes=len(pending),
        )


def make(planned: WorktreePlan) -> Worktree:
    """Create the planned worktree (nothing to do when it is reused); return its record."""
    if planned.action == "reuse":
        return planned.record()
    folder = planned.path.parent
    folder.mkdir(parents=True, exist_ok=True)
    ignore = folder / ".gitignore"
    if not ignore.exists():  # the project's own checkout does not see its worktrees
        ignore.write_text("# looprunner's session worktrees\n*\n", encoding="utf-8")
    if planned.stale:
        gitrepo.forget_missing(planned.repo)
    new_from = planned.base if planned.action == "create" else None
    gitrepo.add_worktree(planned.repo, planned.path, planned.branch, new_from=new_from)
    return planned.record()


def undo(planned: WorktreePlan) -> None:
    """Take back what :func:`make` did for a start that did not happen (when nothing is lost).

    The worktree goes if it is clean; a branch this start created goes if it has no
    commit of its own. A reused worktree is left as it was.
    """
    if planned.action == "reuse" or not planned.path.is_dir():
        return
    with contextlib.suppress(WorktreeError):
        if gitrepo.changes(planned.path):
            return
        gitrepo.remove_worktree(planned.repo, planned.path)
        if planned.action == "create" and (
            gitrepo.branch_commit(planned.repo, planned.branch) == planned.base
        ):
            gitrepo.delete_branch(planned.repo, planned.branch)


def recorded(run_dir: Path) -> Worktree | None:
    """Return the worktree a run worked in (None: the project itself).

    Raises
    ------
    WorktreeError
        If the run's ``worktree.json`` cannot be read.
    """
    try:
        return read_worktree(run_dir)
    except ValueError as exc:
        raise WorktreeError(str(exc), path=run_dir) from exc


def reattach(project: Path, session: str, recorded: Worktree) -> Worktree:
    """Make sure a resumed session's worktree is there; check its branch out again if not.

    The record (and its base commit) stays the one the session started with.

    Raises
    ------
    WorktreeRefusedError
        The folder is gone and its branch too (or is checked out elsewhere).
    """
    if Path(recorded.path).is_dir():
        return recorded
    planned = plan(project, session)
    if planned.action != "checkout" or not _same(planned.path, Path(recorded.path)):
        raise WorktreeRefusedError(
            f"project {project}: the worktree {recorded.path} of session {session!r} is gone "
            f"and so is its branch {recorded.branch}; start it again with --force",
            path=project,
        )
    make(planned)
    return recorded


def look(project: Path, recorded: Worktree) -> WorktreeStatus:
    """Return the worktree as it is now: there or not, commits ahead, changes pending."""
    path = Path(recorded.path)
    present = path.is_dir()
    ahead = changes = None
    with contextlib.suppress(WorktreeError):
        ahead = gitrepo.count_ahead(path if present else project, recorded.base, recorded.branch)
    if present:
        with contextlib.suppress(WorktreeError):
            changes = len(gitrepo.changes(path))
    return WorktreeStatus(
        path=recorded.path,
        branch=recorded.branch,
        base=recorded.base,
        present=present,
        ahead=ahead,
        changes=changes,
    )


@attrs.frozen
class WorktreeRemoval:
    """What became of a run's worktree: removed, or kept and why (its branch always stays)."""

    path: str
    branch: str
    removed: bool
    #: why it was kept (None when removed)
    kept_because: str | None = None

    def sentence(self) -> str:
        """Say it in a line, for ``rm`` and ``prune`` to print."""
        if self.removed:
            return f"removed worktree {self.path} (branch {self.branch} kept)"
        return f"kept worktree {self.path}: {self.kept_because}"


def remove(project: Path, run_dir: Path) -> WorktreeRemoval | None:
    """Remove the worktree the run in ``run_dir`` worked in, unless that would lose work.

    For ``rm`` and ``prune``, which remove finished runs (never a live one). Returns
    None when the run used no worktree. The worktree is kept, and the reason said,
    when it has uncommitted changes (untracked files included), when another run of
    the project works in it (``start --force`` reused it for the session's new run), or
    when git fails. The branch and its commits always stay: ``git branch -D`` is the
    user's call.
    """
    try:
        recorded = read_worktree(run_dir)
    except ValueError as exc:
        return WorktreeRemoval(str(run_dir), "?", removed=False, kept_because=str(exc))
    if recorded is None:
        return None
    path = Path(recorded.path)

    def kept(why: str) -> WorktreeRemoval:
        return WorktreeRemoval(recorded.path, recorded.branch, removed=False, kept_because=why)

    if not path.is_dir():
        return kept("it is gone already")
    if not _same(path.parent, project / WORKTREES):
        # a record edited to point elsewhere: looprunner removes only worktrees it made
        return kept(f"it is not in {project / WORKTREES}, where looprunner makes worktrees")
    runs = ProjectPaths.of(project).runs
    for other in sorted(runs.iterdir()) if runs.is_dir() else ():
        if _same(other, run_dir) or not other.is_dir():
            continue
        with contextlib.suppress(ValueError):
            theirs = read_worktree(other)
            if theirs is not None and _same(Path(theirs.path), path):
                return kept(f"the run {other.name} works in it")
    try:
        pending = gitrepo.changes(path)
        if pending:
            return kept(
                f"it has {len(pending)} uncommitted change(s) "
                f"(git -C {path} status); commit or discard them, then remove it again"
            )
        repo = gitrepo.toplevel(path.parent) or project
        gitrepo.remove_worktree(repo, path)
    except WorktreeError as exc:
        return kept(exc.message)
    return WorktreeRemoval(recorded.path, recorded.branch, removed=True)
