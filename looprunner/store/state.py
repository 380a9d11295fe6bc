"""``state.json``: written atomically by the engine, read by anyone without locking."""

from __future__ import annotations

from pathlib import Path

from looprunner import convert
from looprunner.models import RunState
from looprunner.store.atomic import write_atomic


def write_state(path: Path, state: RunState) -> None:
    """Replace the state file atomically (temp file, fsync, rename)."""
    write_atomic(path, convert.state_to_json(state))


def read_state(path: Path) -> RunState | None:
    """Return the recorded state, or None if there is no state file.

    Raises
    ------
    ValueError
        If the file exists but does not parse (never written by looprunner's atomic
        writer, so someone else changed it).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    return convert.state_from_json(text)
