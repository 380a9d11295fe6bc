"""Ending a run the disk refused: full, read-only, or its run folder deleted.

The engine ends such a run ``failed`` with ``error.type`` ``disk_full``, ``read_only`` or
``run_folder_deleted``, and writes that ending wherever the disk still takes it: in
``state.json`` and the event log when it can, else as a fault marker in the session's
lock file, rewritten in place (:mod:`looprunner.store.diskfault`), with a line on the
engine's stderr (the tmux pane, or the terminal of a ``--foreground`` run). A deleted run
folder is never made again: the engine writes nothing under it, and its lock file,
which the engine would otherwise delete at a clean ending, is kept to say what happened.
"""

from __future__ import annotations

import contextlib
import os
from typing import TextIO

import attrs

from looprunner.engine.recorder import Recorder
from looprunner.models import RunError, RunState, RunStatus
from looprunner.names import SessionPaths
from looprunner.store.diskfault import (
    RUN_FOLDER_DELETED,
    describe,
    fault_type,
    marker_fields,
    run_folder_deleted,
)
from looprunner.store.events import utc_now
from looprunner.store.lock import SessionLock
from looprunner.store.projection import read_projected


class DiskFault(Exception):
    """The run must end: the disk refused a write, or the run folder is gone."""

    def __init__(self, error: RunError) -> None:
        super().__init__(error.message)
        self.error = error


def fault_of(
    exc: BaseException | None, paths: SessionPaths, iteration: int | None
) -> RunError | None:
    """Return the disk fault behind ``exc`` (or the run folder's absence), else None."""
    if isinstance(exc, DiskFault):
        return exc.error
    if not paths.run_dir.is_dir():
        return attrs.evolve(run_folder_deleted(paths.run_dir, os.getpid()), iteration=iteration)
    kind = fault_type(exc)
    if kind is None:
        return None
    return RunError(kind, describe(kind, exc, paths.name), iteration)


def check_run_folder(paths: SessionPaths, iteration: int | None) -> None:
    """Raise :class:`DiskFault` if the run folder was deleted (before it could be made anew)."""
    if not paths.run_dir.is_dir():
        error = run_folder_deleted(paths.run_dir, os.getpid())
        raise DiskFault(attrs.evolve(error, iteration=iteration))


def after_failure(exc: OSError, paths: SessionPaths, failed: RunError) -> DiskFault | None:
    """Return the fault that kept an iteration's failure from being recorded, naming it."""
    fault = fault_of(exc, paths, failed.iteration)
    if fault is None:
        return None
    message = f"{fault.message}; the iteration had failed: {failed.type}: {failed.message}"
    return DiskFault(attrs.evolve(fault, message=message))


def end_by_fault(
    rec: Recorder, lock: SessionLock, error: RunError, *, err: TextIO
) -> tuple[RunState, bool]:
    """Record the run ``failed`` with ``error`` where the disk allows.

    Returns the final state and whether ``state.json`` holds it (if not, the lock file
    does, and must be kept).
    """
    error = RunError(error.type, rec.redactor.text(error.message), error.iteration)
    rec.log(f"session failed: {error.type}: {error.message}")
    if error.type != RUN_FOLDER_DELETED:  # never write into a folder made anew
        try:
            return rec.end(RunStatus.FAILED, error=error), True
        except OSError:
            pass
        with contextlib.suppress(ValueError, OSError):
            written = read_projected(
                rec.paths.state_file, rec.paths.events_file
            )  # the state, and only its event, failed
            if written is not None and written.error == error:
                rec.state = written
                return written, True
    at = utc_now()
    ended = rec.current.ended(RunStatus.FAILED, at=at, error=error)
    rec.state = ended
    try:
        # the lock file deleted too: make it again, to say this (unless another engine did)
        if lock.still_ours() or lock.reassert():
            lock.record_fault(marker_fields(error, at))
            where = f"recorded in {lock.path} instead of state.json"
        else:
            where = f"not recorded: another engine holds {lock.path} now"
    except OSError as exc:
        where = f"neither state.json nor {lock.path} could be written ({exc.strerror or exc})"
    with contextlib.suppress(OSError, ValueError):
        print(
            f"looprunner engine: session {rec.paths.name} failed: {error.type}: "
            f"{error.message} [{where}]",
            file=err,
            flush=True,
        )
    return ended, False
