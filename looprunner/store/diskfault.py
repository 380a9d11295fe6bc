"""Disk faults: a full disk, a read-only file system, a run folder deleted under an engine.

On a full or read-only disk the engine cannot write ``state.json`` (an atomic write needs
a new file), nor append to the event log. What it can still write is the session's lock
file, rewritten in place: the engine holds it open for its whole life, and keeps one
block of it allocated from the start (:data:`looprunner.store.lock.RESERVED_BYTES`), so
overwriting those bytes needs no new space. The ending that could not reach the state is
written there as a *fault marker*, the ``fault`` key of the lock's JSON metadata, and
``status``, ``list`` and ``cleanup`` read it. The lock file also lives outside the run
folder (``locks/NAME.lock``), so a deleted run folder leaves it to say what happened.

This module names the faults and reads the marker; :class:`~looprunner.store.lock.
SessionLock` writes it.
"""

from __future__ import annotations

import errno
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from looprunner.models import RunError, RunState, RunStatus

#: the error types of disk faults (``state.json`` ``error.type``)
DISK_FULL = "disk_full"
READ_ONLY = "read_only"
RUN_FOLDER_DELETED = "run_folder_deleted"
#: the key of the lock metadata that holds the marker
FAULT_KEY = "fault"

_KINDS = {
    errno.ENOSPC: DISK_FULL,
    errno.EDQUOT: DISK_FULL,  # a quota is a full disk for this user
    errno.EROFS: READ_ONLY,
}


def fault_type(exc: BaseException | None) -> str | None:
    """Return ``disk_full`` or ``read_only`` for an error caused by one, else None.

    Follows the chain of causes, so a disk error wrapped by other code is still known.
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in _KINDS:
            return _KINDS[exc.errno]
        exc = exc.__cause__ or exc.__context__
    return None


def describe(kind: str, exc: BaseException | None, session: str) -> str:
    """Say in a sentence what the disk refused, and what to do about it."""
    found: OSError | None = None
    while exc is not None and found is None:
        if isinstance(exc, OSError) and exc.errno in _KINDS:
            found = exc
        exc = exc.__cause__ or exc.__context__
    what = "no space left on the device" if kind == DISK_FULL else "the file system is read-only"
    if found is not None and found.filename:
        what += f": cannot write {found.filename}"
    remedy = "free some space" if kind == DISK_FULL else "make it writable again"
    return f"{what} ({remedy}, then 'looprunner resume {session}')"


@attrs.frozen
class Marker:
    """A fault marker as read from a lock file: the error, when, and the engine's pid."""

    error: RunError
    at: str | None
    pid: int | None


def read_marker(metadata: Mapping[str, Any]) -> Marker | None:
    """Return the fault marker in a lock file's metadata, or None."""
    raw = metadata.get(FAULT_KEY)
    if not isinstance(raw, Mapping):
        return None
    kind, message = raw.get("type"), raw.get("message")
    if not isinstance(kind, str) or not isinstance(message, str):
        return None
    iteration, at, pid = raw.get("iteration"), raw.get("at"), metadata.get("pid")
    return Marker(
        RunError(kind, message, iteration if isinstance(iteration, int) else None),
        at if isinstance(at, str) else None,
        pid if isinstance(pid, int) else None,
    )


def marker_fields(error: RunError, at: str) -> dict[str, Any]:
    """Return the marker's JSON for ``error``, recorded at ``at``."""
    return {"type": error.type, "message": error.message, "iteration": error.iteration, "at": at}


def recorded_fault(metadata: Mapping[str, Any], state: RunState | None) -> Marker | None:
    """Return the fault marker that speaks for this run, or None.

    The marker counts only while the state does not already say how the run ended, and
    only if no state was written after it (every engine rewrites the metadata when it
    takes the lock, so a marker is the last engine's; a resumed engine that could not
    write its first state leaves the previous engine's state, older than its marker).
    """
    marker = read_marker(metadata)
    if marker is None or state is None:
        return marker
    if state.status.finished or (marker.at is not None and state.updated_at > marker.at):
        return None
    return marker


def ended_by_fault(
    metadata: Mapping[str, Any], state: RunState | None
) -> tuple[RunState | None, RunError | None]:
    """Return the state as the fault ended it (in memory only) and the fault, if any.

    ``status`` shows a session whose ending reached only the lock file as what it is:
    ``failed``, with the fault as its error.
    """
    marker = recorded_fault(metadata, state)
    if marker is None:
        return state, None
    if state is None:
        return None, marker.error
    at = marker.at or state.updated_at
    return state.ended(RunStatus.FAILED, at=at, error=marker.error), marker.error


def run_folder_deleted(run_dir: Path, pid: int) -> RunError:
    """Return the error of a run whose folder was deleted under its engine."""
    return RunError(
        RUN_FOLDER_DELETED,
        f"the run folder {run_dir} was deleted while its engine (pid {pid}) ran; its state "
        "and history went with it (start the session again, or 'looprunner cleanup --fix' "
        "to forget it)",
    )
