"""``state.json``: written atomically by the engine, read by anyone without locking.

The event log is the durable record and ``state.json`` its projection
(:mod:`looprunner.store.projection`): written atomically — a reader never sees a torn
file — but not fsynced, since a state the disk lost is rebuilt from the log.

A run's first write (and a resumed run's) keeps the current file as ``state.prev.json``
(a hard link, so it costs no copy). Atomicity cannot prevent a file damaged on disk or
edited by hand; readers then fall back to that earlier state, which the log brings up to
date.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from looprunner import jsontext
from looprunner.models import RunState
from looprunner.store.atomic import TEMP_PREFIX, write_atomic
from looprunner.store.records import state_from_json

PREVIOUS_NAME = "state.prev.json"


def previous_path(path: Path) -> Path:
    """Where the previous state is kept."""
    return path.with_name(PREVIOUS_NAME)


def write_state(
    path: Path, state: RunState, *, durable: bool = False, keep_previous: bool = False
) -> None:
    """Replace the state atomically; fsynced only if ``durable``.

    ``keep_previous`` first keeps the current file as ``state.prev.json``. Only a change
    no event records (a branch of a parallel block starting or ending) is ``durable``.
    """
    from looprunner import convert  # the engine's: commands that only read never load it

    write_state_data(path, convert.unstructure(state), durable=durable, keep_previous=keep_previous)


def write_state_data(
    path: Path, data: Mapping[str, Any], *, durable: bool = False, keep_previous: bool = False
) -> None:
    """:func:`write_state` for a state already unstructured (the engine keeps it so)."""
    if keep_previous:
        keep_as_previous(path)
    write_atomic(path, jsontext.dumps(data) + "\n", durable=durable)


def keep_as_previous(path: Path) -> None:
    """Keep the current state file as ``state.prev.json`` (a hard link: no copy)."""
    if not path.exists():
        return
    keep = path.with_name(f"{TEMP_PREFIX}{PREVIOUS_NAME}.{os.getpid()}")
    try:
        with contextlib.suppress(FileNotFoundError):
            keep.unlink()
        os.link(path, keep)
        keep.replace(previous_path(path))
    except OSError:  # no hard links, or a disk that refuses: the state stands alone
        with contextlib.suppress(OSError):
            keep.unlink()


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
            return state_from_json(text)
        except ValueError as exc:
            error = exc
    try:
        return state_from_json(previous_path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        raise error from None
