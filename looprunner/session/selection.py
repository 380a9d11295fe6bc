"""Which sessions a listing shows, and in what order: ``list --health/--stage/--since/--sort``.

In the library rather than the command line, so ``Session.list(health=..., since=...)``
accepts and refuses exactly what ``looprunner list`` does, with the same messages.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from looprunner.errors import UsageError
from looprunner.models import Health, SessionStatus
from looprunner.views.clock import duration_seconds, parse_ts

#: how ``sort=`` may order a listing; ``name`` is the default
SORTS = ("age", "cost", "name")
#: the healths a filter may name (``not_found`` is never listed)
LISTED = tuple(h.value for h in Health if h is not Health.NOT_FOUND)

HealthFilter = str | Iterable[str | Health] | None
Since = str | datetime | timedelta | None


def parse_health(value: HealthFilter) -> frozenset[Health] | None:
    """Read ``"running,failed"`` (or a list of names or :class:`Health`) as a set of healths.

    Raises
    ------
    UsageError
        Naming the first value that is no health, and the ones there are.
    """
    if value is None:
        return None
    words = value.split(",") if isinstance(value, str) else list(value)
    chosen: set[Health] = set()
    for word in words:
        text = word.value if isinstance(word, Health) else str(word).strip().lower()
        if not text:
            continue
        if text not in LISTED:
            raise UsageError(f"--health: unknown health {text!r} (choose from {', '.join(LISTED)})")
        chosen.add(Health(text))
    if not chosen:
        raise UsageError(f"--health: no health given (choose from {', '.join(LISTED)})")
    return frozenset(chosen)


def parse_duration(text: str) -> timedelta | None:
    """Read ``90s``, ``30m``, ``1.5h``, ``1d``, ``1w`` or ``1h30m``; None if it is not one."""
    seconds = duration_seconds(text)
    return None if seconds is None else timedelta(seconds=seconds)


def parse_since(value: Since, *, now: datetime | None = None) -> datetime | None:
    """Return the moment ``since=`` names: a duration back from now, or a date or time.

    A date or time without an offset is local time, as people type it.

    Raises
    ------
    UsageError
        When the text is neither a duration nor an ISO-8601 date or time.
    """
    if value is None:
        return None
    now = now or datetime.now(UTC)
    if isinstance(value, timedelta):
        return now - value
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.astimezone()
    span = parse_duration(value)
    if span is not None:
        return now - span
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"--since: cannot read {value!r}: give a duration (30m, 2h, 1d, 1w) "
            "or an ISO-8601 date or time (2026-01-31, 2026-01-31T09:00)"
        ) from None
    return moment if moment.tzinfo is not None else moment.astimezone()


def parse_sort(value: str | None) -> str:
    """Check a ``sort=`` value; None means by name.

    Raises
    ------
    UsageError
        Naming the value and the orders there are.
    """
    if value is None:
        return "name"
    if value not in SORTS:
        raise UsageError(f"--sort: unknown order {value!r} (choose from {', '.join(SORTS)})")
    return value


def _on_stage(status: SessionStatus, stage: str) -> bool:
    """Whether the session is on ``stage`` (its current node's id or stage name)."""
    state = status.state
    if state is None or not state.stages:
        return False
    return stage in (state.current.id, state.current.stage)


def _started(status: SessionStatus) -> datetime | None:
    return parse_ts(status.state.started_at) if status.state is not None else None


def select(
    statuses: Iterable[SessionStatus],
    *,
    health: HealthFilter = None,
    stage: str | None = None,
    since: Since = None,
    sort: str | None = None,
    now: datetime | None = None,
) -> list[SessionStatus]:
    """Keep the sessions that match every filter given, in the order asked for.

    ``sort="name"`` (the default) orders by name; ``"age"`` puts the most recently
    started first; ``"cost"`` the most expensive first, sessions of unknown cost last.
    Every value is checked before anything is filtered, so a bad one fails the same way
    whatever the project holds.
    """
    healths = parse_health(health)
    moment = parse_since(since, now=now)
    order = parse_sort(sort)
    kept = [
        s
        for s in statuses
        if (healths is None or s.health in healths)
        and (stage is None or _on_stage(s, stage))
        and (moment is None or ((started := _started(s)) is not None and started >= moment))
    ]
    kept.sort(key=lambda s: s.session)
    if order == "age":
        oldest = datetime.min.replace(tzinfo=UTC)
        kept.sort(key=lambda s: _started(s) or oldest, reverse=True)
    elif order == "cost":
        costs = {s.session: s.state.cost_usd for s in kept if s.state is not None}
        known = sorted(
            (s for s in kept if costs.get(s.session) is not None),
            key=lambda s: costs[s.session] or 0.0,
            reverse=True,
        )
        kept = known + [s for s in kept if costs.get(s.session) is None]
    return kept
