"""The one writer of a session's ending: state first, then its event.

Whoever finishes a session — its engine (complete, failed, killed), ``kill`` after the
engine is gone, ``cleanup`` after it died — calls :func:`record_ending` while holding the
session's lock, so the state and the event log always agree on how a session ended and
no two writers race.

The ending's event carries what it changed in the state (the log is the durable record,
:mod:`looprunner.store.projection`): against what the log recorded before it, so that
the whole log rebuilds the finished state exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from looprunner import convert
from looprunner.models import RunError, RunState, RunStatus, events
from looprunner.store.events import EventLog, utc_now
from looprunner.store.projection import logged_state, state_patch
from looprunner.store.state import write_state

#: the event that records each ending
ENDING_EVENTS = {
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
    logged: Mapping[str, Any] | None = None,
    between: Callable[[], None] | None = None,
) -> RunState:
    """Write ``state`` finished as ``status`` and append the matching event; return it.

    The event says, per ending: ``session_complete`` its ``reason``;
    ``session_failed`` the error's ``type`` and ``message`` (at the error's iteration);
    ``session_killed`` the iteration it stopped in. ``data`` adds keys of the caller's.

    ``logged`` is the state the log records so far (the engine keeps it); without it,
    it is read from the log. A state an older version wrote (no ``seq``) gets an event
    without a state change, as that version's events had. ``between`` is called after
    the state is written and before its event (the fault tests crash there).
    """
    ended = attrs.evolve(
        state.ended(status, at=utc_now(), reason=reason, error=error), seq=log.last_seq + 1
    )
    change: dict[str, Any] | None = None
    if state.seq is not None:
        if logged is None:
            recorded = logged_state(log.path)
            logged = convert.unstructure(recorded) if recorded is not None else {}
        change = state_patch(logged, convert.unstructure(ended))
    write_state(state_file, ended)
    if between is not None:
        between()
    _append_ending(log, ended, status, error=error, change=change, data=data)
    return ended


def _append_ending(
    log: EventLog,
    ended: RunState,
    status: RunStatus,
    *,
    error: RunError | None,
    change: dict[str, Any] | None,
    data: Mapping[str, Any] | None,
) -> None:
    payload: dict[str, Any] = {}
    stage: str | None = ended.current.id
    iteration: int | None = ended.iteration or None
    if status is RunStatus.COMPLETE:
        payload["reason"] = ended.completion_reason
        stage = iteration = None
    elif status is RunStatus.FAILED and error is not None:
        payload.update(type=error.type, message=error.message)
        iteration = error.iteration
    payload.update(data or {})
    log.append(ENDING_EVENTS[status], stage=stage, iteration=iteration, data=payload, state=change)


def unlogged_ending(state: RunState | None, log: EventLog) -> bool:
    """Whether ``state`` records an ending its event log never received.

    An ending's state is written first and names the event that records it (``seq``);
    a crash between the two leaves the state ahead of the log. Only a state this version
    wrote can tell (an older one has no ``seq``).
    """
    return (
        state is not None
        and state.status.finished
        and state.seq is not None
        and state.seq > log.last_seq
    )


def log_missing_ending(log: EventLog, state: RunState) -> None:
    """Append the ending ``state`` records and its log lacks (``"recovered": true``).

    For whoever holds the session's lock after the engine that wrote it is gone
    (``cleanup --fix``): afterwards the log ends the run as its state does.
    """
    recorded = logged_state(log.path)
    before = convert.unstructure(recorded) if recorded is not None else {}
    change = state_patch(before, convert.unstructure(state))
    _append_ending(
        log, state, state.status, error=state.error, change=change, data={"recovered": True}
    )
