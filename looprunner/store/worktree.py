"""``worktree.json``: which git worktree a session's agents work in.

``start`` (or ``resume``) makes or checks the worktree, then writes this file into the
run folder before the engine is launched; the engine reads it first thing, runs every
agent there and records it in ``state.json``. Only the launcher writes it, atomically,
while it holds the session's lock. It moves aside with the run (``start --force``), so a
kept run still names the worktree it used.
"""

from __future__ import annotations

import json
from pathlib import Path

from looprunner import convert
from looprunner.models import Worktree
from looprunner.store.atomic import write_atomic

WORKTREE_FILE = "worktree.json"


def worktree_file(run_dir: Path) -> Path:
    """Where a run folder keeps its worktree record."""
    return run_dir / WORKTREE_FILE


def write_worktree(run_dir: Path, worktree: Worktree) -> None:
    """Record the session's worktree in its run folder (atomically)."""
    text = json.dumps(convert.unstructure(worktree), indent=2) + "\n"
    write_atomic(worktree_file(run_dir), text)


def read_worktree(run_dir: Path) -> Worktree | None:
    """Return the worktree a run folder records, or None when its agents use the project.

    Raises
    ------
    ValueError
        If the file exists but is not a worktree record.
    """
    path = worktree_file(run_dir)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"{path} cannot be read: {exc}") from exc
    try:
        return convert.structure(data, Worktree)
    except Exception as exc:
        raise ValueError(f"{path} is not a worktree record: {exc}") from exc
