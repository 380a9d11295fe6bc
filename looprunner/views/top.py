"""The facts ``looprunner top`` shows of each session, gathered without any terminal library.

One :class:`TopRow` per session: health, stage, iteration, cost, the last decision and
when it was made, and how many events the session logged in the last minute. Built from
statuses a listing already made (one question per backend) and the end of each event
log: the tail is read from the end of the file, so a session of ten thousand
iterations costs the same as one of ten.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs

from looprunner.models import Event, SessionStatus
from looprunner.names import ProjectPaths
from looprunner.store.events import last_events
from looprunner.store.logs import last_lines, rotated
from looprunner.views.clock import parse_ts

#: how many of the last events each refresh reads: a rate above this many a minute is
#: shown as this many (a lower bound), and a decision further back is not looked for
TAIL_EVENTS = 256
#: the window the event rate is counted over
RATE_WINDOW = timedelta(minutes=1)
#: the decision shown for an iteration that failed without one
FAILED = "failed"


@attrs.frozen
class TopRow:
    """What ``top`` shows of one session.

    ``cost_usd`` is None when the agents reported no cost (unknown, never zero);
    ``decision`` and ``decided_at`` are those of the last completed iteration found in
    the log's last :data:`TAIL_EVENTS` events (None before the first).
    """

    session: str
    health: str
    type: str | None
    stage: str | None
    iteration: int | None
    max_iterations: int | None
    cost_usd: float | None
    decision: str | None
    decided_at: str | None
    events_per_minute: int
    started_at: str | None
    detail: str | None

    def as_dict(self) -> dict[str, Any]:
        """Return the ``top --json`` shape of the row (its fields, by name)."""
        return attrs.asdict(self)


def last_decision(events: Iterable[Event]) -> tuple[str | None, str | None]:
    """Return the last iteration's decision among ``events``, and when it was recorded.

    ``continue``, ``stop`` or ``error`` as the agent decided; ``failed`` for an
    iteration that ended without a decision (its agent crashed, timed out, ...).
    """
    for event in reversed(list(events)):
        if event.type == "iteration_complete":
            decision = event.data.get("decision")
            return (str(decision) if decision is not None else None), event.ts
        if event.type == "iteration_failed":
            return FAILED, event.ts
    return None, None


def rate(events: Iterable[Event], now: datetime, window: timedelta = RATE_WINDOW) -> int:
    """Count the events logged within ``window`` before ``now``."""
    since = now - window
    return sum(1 for e in events if (ts := parse_ts(e.ts)) is not None and since <= ts <= now)


def top_row(status: SessionStatus, events: list[Event], now: datetime) -> TopRow:
    """Build one session's row from its status and the end of its event log."""
    state = status.state
    decision, decided_at = last_decision(events)
    current = state.current if state is not None and state.stages else None
    stage = None
    if state is not None and current is not None:
        stage = (
            current.id
            if state.type == "loop"
            else f"{current.id} ({state.current_stage + 1}/{len(state.stages)})"
        )
    return TopRow(
        session=status.session,
        health=status.health.value,
        type=state.type if state is not None else None,
        stage=stage,
        iteration=state.iteration if state is not None else None,
        max_iterations=current.max_iterations if current is not None else None,
        cost_usd=state.cost_usd if state is not None else None,
        decision=decision,
        decided_at=decided_at,
        events_per_minute=rate(events, now),
        started_at=state.started_at if state is not None else None,
        detail=status.detail,
    )


def top_rows(
    statuses: Iterable[SessionStatus], project: str | Path, *, now: datetime | None = None
) -> list[TopRow]:
    """Return one row per status, reading the last events of each session's log."""
    paths = ProjectPaths.of(project)
    moment = now or datetime.now(UTC)
    rows = []
    for status in statuses:
        try:
            events = last_events(paths.session(status.session).events_file, TAIL_EVENTS)
        except OSError:  # unreadable: the row still shows what the status knows
            events = []
        rows.append(top_row(status, events, moment))
    return rows


def recent_output(project: str | Path, session: str, lines: int) -> list[str]:
    """Return the last ``lines`` lines the session's engine printed (its ``engine.log``).

    Read from the run folder, not the backend, so looking at a session's output asks
    tmux nothing.
    """
    log = ProjectPaths.of(project).session(session).engine_log
    try:
        return last_lines(log, lines, previous=rotated(log))
    except OSError:
        return []
