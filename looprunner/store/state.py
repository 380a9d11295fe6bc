"""``state.json``: written atomically by the engine, read by anyone without locking.

Each write first keeps the current file as ``state.prev.json`` (a hard link, so it costs
no copy), then replaces ``state.json`` atomically. Atomic replacement already means a
reader never sees a torn file; the previous version is there for what atomicity cannot
prevent — a file damaged on disk, or edited by hand — so readers can fall back to the
last good state instead of failing.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from looprunner import convert
from looprunner.models import RunState
from looprunner.store.atomic import TEMP_PREFIX, write_atomic

PREVIOUS_NAME = "state.prev.json"


def previous_path(path: Path) -> Path:
    """Where the previous state is kept."""
    return path.with_name(PREVIOUS_NAME)


def write_state(path: Path, state: RunState, *, durable: bool = True) -> None:
    """Keep the current state as the previous one, then replace it atomically.

    A bookkeeping write (``durable=False``: an iteration or agent starting) keeps no new
    previous version: the one kept by the last durable write is as good a fallback, and
    the engine makes two such writes per iteration.
    """
    if durable and path.exists():
        keep = path.with_name(f"{TEMP_PREFIX}{PREVIOUS_NAME}.{os.getpid()}")
        try:
            with contextlib.suppress(FileNotFoundError):
                keep.unlink()
            os.link(path, keep)
            keep.replace(previous_path(path))
        except OSError:  # no hard links, or a disk that refuses: the write below says why
            with contextlib.suppress(OSError):
                keep.unlink()
    write_atomic(path, convert.state_to_json(state), durable=durable)


def read_state(path: Path) -> RunState | None:
    """Return the recorded state, or None if there is no state file.

    A state file that does not parse gives the previous state instead, if that one
    does.

    Raises
    ------
    ValueError
        If the state file exists but neither it nor the previous one parses.
    """
    try:
        text: str | None = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError):
        text = None
    error: ValueError = ValueError(f"{path} cannot be read")
    if text is not None:
        try:
            return convert.state_from_json(text)
        except ValueError as exc:
            error = exc
    try:
        return convert.state_from_json(previous_path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        raise error from None
