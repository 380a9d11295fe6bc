"""The one writer of a session's ending: state first, then its event.

Whoever finishes a session — its engine (complete, failed, killed), ``kill`` after the
engine is gone, ``cleanup`` after it died — calls :func:`record_ending` while holding the
session's lock, so the state and the event log always agree on how a session ended and
no two writers race.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from looprunner.models import RunError, RunState, RunStatus, events
from looprunner.store.events import EventLog, utc_now
from looprunner.store.state import write_state

_EVENT = {
    RunStatus.COMPLETE: events.SESSION_COMPLETE,
    RunStatus.FAILED: events.SESSION_FAILED,
    RunStatus.KILLED: events.SESSION_KILLED,
}


def record_ending(
    state_file: Path,
    log: EventLog,
    state: RunState,
    status: RunStatus,
    *,
    reason: str | None = None,
    error: RunError | None = None,
    data: Mapping[str, Any] | None = None,
) -> RunState:
    """Write ``state`` finished as ``status`` and append the matching event; return it.

    The event says, per ending: ``session_complete`` its ``reason``;
    ``session_failed`` the error's ``type`` and ``message`` (at the error's iteration);
    ``session_killed`` the iteration it stopped in. ``data`` adds keys of the caller's.
    """
    ended = state.ended(status, at=utc_now(), reason=reason, error=error)
    write_state(state_file, ended)
    payload: dict[str, Any] = {}
    stage: str | None = ended.current.id
    iteration: int | None = state.iteration or None
    if status is RunStatus.COMPLETE:
        payload["reason"] = reason
        stage = iteration = None
    elif status is RunStatus.FAILED and error is not None:
        payload.update(type=error.type, message=error.message)
        iteration = error.iteration
    payload.update(data or {})
    log.append(_EVENT[status], stage=stage, iteration=iteration, data=payload)
    return ended
