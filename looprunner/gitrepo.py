"""Asking git about a repository and its worktrees, and making and removing worktrees.

Every call runs the ``git`` program with an argument list (never through a shell), with
``-C FOLDER`` rather than a working directory (so a missing ``git`` is told apart from a
missing folder), without a terminal to prompt on, and with a timeout: a git that hangs
(a lock, a slow network file system) fails the command instead of freezing it. Read-only
questions take no optional locks, so asking never competes with an agent's own git.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

import attrs

from looprunner.errors import GitMissingError, WorktreeError

#: seconds one git command may take
GIT_TIMEOUT = 60.0


def git(
    args: Sequence[str], *, repo: Path, check: bool = True, timeout: float = GIT_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """Run ``git -C repo ARGS...`` and return what it did.

    Raises
    ------
    GitMissingError
        When git is not installed.
    WorktreeError
        When git fails (with ``check``) or takes longer than ``timeout``; the message
        has git's own last line.
    """
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0"}
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    except FileNotFoundError:
        raise GitMissingError(
            "git is not installed (or not on PATH); a session in a worktree needs it"
        ) from None
    except subprocess.TimeoutExpired:
        raise WorktreeError(
            f"git {args[0]} in {repo} took longer than {timeout:.0f}s", path=repo
        ) from None
    if check and done.returncode != 0:
        said = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
        raise WorktreeError(f"git {args[0]} failed in {repo}: {said}", path=repo)
    return done


def toplevel(folder: Path) -> Path | None:
    """Return the root of the repository ``folder`` is in, or None if it is in none."""
    done = git(["rev-parse", "--show-toplevel"], repo=folder, check=False)
    if done.returncode != 0 or not done.stdout.strip():
        return None
    return Path(done.stdout.strip()).resolve()


def commit_of(repo: Path, rev: str) -> str | None:
    """Return the full commit id ``rev`` names, or None if it names none."""
    done = git(["rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], repo=repo, check=False)
    return (done.stdout.strip() or None) if done.returncode == 0 else None


def branch_commit(repo: Path, branch: str) -> str | None:
    """Return the commit at the tip of local ``branch``, or None if there is no such branch."""
    return commit_of(repo, f"refs/heads/{branch}")


@attrs.frozen
class Checkout:
    """One worktree of a repository, as ``git worktree list`` tells it."""

    path: Path
    branch: str | None  # None: a detached HEAD
    #: git knows of it but its folder is gone (``git worktree prune`` forgets it)
    prunable: bool = False


def checkouts(repo: Path) -> list[Checkout]:
    """Return every worktree of the repository (the main one first)."""
    done = git(["worktree", "list", "--porcelain"], repo=repo)
    found: list[Checkout] = []
    path: Path | None = None
    branch: str | None = None
    prunable = False
    for line in [*done.stdout.splitlines(), ""]:
        if line.startswith("worktree "):
            path = Path(line[len("worktree ") :])
        elif line.startswith("branch "):
            branch = line[len("branch ") :].removeprefix("refs/heads/")
        elif line.startswith("prunable"):
            prunable = True
        elif not line and path is not None:
            found.append(Checkout(path=path, branch=branch, prunable=prunable))
            path, branch, prunable = None, None, False
    return found


def add_worktree(repo: Path, path: Path, branch: str, *, new_from: str | None) -> None:
    """Check ``branch`` out at ``path``; create the branch at commit ``new_from`` if given."""
    args = ["worktree", "add"]
    if new_from is not None:
        args += ["-b", branch, "--", str(path), new_from]
    else:
        args += ["--", str(path), branch]
    git(args, repo=repo)


def forget_missing(repo: Path) -> None:
    """Forget worktrees whose folders are gone (``git worktree prune``: nothing on disk)."""
    git(["worktree", "prune"], repo=repo)


def changes(worktree: Path) -> list[str]:
    """Return ``git status --porcelain`` lines: files changed, staged or untracked.

    Ignored files are not changes: they are what ``.gitignore`` says may be lost.
    """
    done = git(["status", "--porcelain", "--untracked-files=all"], repo=worktree)
    return [line for line in done.stdout.splitlines() if line.strip()]


def count_ahead(repo: Path, base: str, tip: str) -> int:
    """Return how many commits ``tip`` has that ``base`` has not."""
    done = git(["rev-list", "--count", f"{base}..{tip}"], repo=repo)
    return int(done.stdout.strip() or 0)


def remove_worktree(repo: Path, path: Path) -> None:
    """Remove the worktree at ``path`` (git itself refuses one with changes: no force)."""
    git(["worktree", "remove", "--", str(path)], repo=repo)


def delete_branch(repo: Path, branch: str) -> None:
    """Delete local ``branch`` (the caller made sure it holds nothing to lose)."""
    git(["branch", "-D", "--", branch], repo=repo)
