"""The library side of ``top`` and ``list`` filters: rows, rates, durations, bounded reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import pytest

from looprunner import convert
from looprunner.errors import UsageError
from looprunner.models import Event, Health, Resources, SessionStatus
from looprunner.names import ProjectPaths
from looprunner.session import removal
from looprunner.session.selection import parse_duration, parse_health, parse_since
from looprunner.views.top import last_decision, rate, top_rows

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def event(seq: int, at: datetime, type: str = "iteration_start", **data: object) -> Event:
    ts = at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return Event(ts=ts, seq=seq, type=type, session="s", stage="work", iteration=1, data=data)


class Duration(NamedTuple):
    test_id: str
    text: str
    seconds: int | None


DURATIONS = [
    Duration("seconds", "90s", 90),
    Duration("minutes", "30m", 1800),
    Duration("hours", "2h", 7200),
    Duration("days", "1d", 86400),
    Duration("weeks", "1w", 604800),
    Duration("combined", "1h30m", 5400),
    Duration("fraction", "1.5h", 5400),
    Duration("spaced", "1h 30m", 5400),
    Duration("upper case", "2H", 7200),
    Duration("no unit", "2", None),
    Duration("trailing number", "2h30", None),
    Duration("bare fraction", ".5h", None),
    Duration("word", "yesterday", None),
]


@pytest.mark.parametrize("case", DURATIONS, ids=[c.test_id for c in DURATIONS])
def test_durations(case: Duration) -> None:
    found = parse_duration(case.text)
    assert (found.total_seconds() if found else None) == case.seconds


def test_since_reads_durations_dates_and_times() -> None:
    assert parse_since("2h", now=NOW) == NOW - timedelta(hours=2)
    assert parse_since(timedelta(days=1), now=NOW) == NOW - timedelta(days=1)
    assert parse_since("2026-11-30T10:00:00Z", now=NOW) == datetime(2026, 11, 30, 10, tzinfo=UTC)
    local = parse_since("2026-11-29", now=NOW)  # a date without an offset: local midnight
    assert local == datetime(2026, 11, 29).astimezone()
    with pytest.raises(UsageError, match="'soon'"):
        parse_since("soon", now=NOW)


def test_health_filters_name_the_bad_value() -> None:
    assert parse_health("running, failed") == {Health.RUNNING, Health.FAILED}
    assert parse_health([Health.KILLED, "crashed"]) == {Health.KILLED, Health.CRASHED}
    with pytest.raises(UsageError, match=r"'bogus'.*running, crashed"):
        parse_health("running,bogus")
    with pytest.raises(UsageError, match="'not_found'"):
        parse_health("not_found")  # never listed, so never a filter


def test_rate_counts_the_last_minute_and_decision_is_the_last_iterations() -> None:
    events = [
        event(1, NOW - timedelta(minutes=5), "iteration_complete", decision="continue"),
        event(2, NOW - timedelta(seconds=50), "iteration_complete", decision="stop"),
        event(3, NOW - timedelta(seconds=20)),
        event(4, NOW - timedelta(seconds=1), "iteration_failed", message="exit 1"),
    ]
    assert rate(events, NOW) == 3
    assert last_decision(events) == ("failed", events[3].ts)
    assert last_decision(events[:3]) == ("stop", events[1].ts)
    assert last_decision([]) == (None, None)


def _rchar() -> int:
    """Bytes this process has read with read(2) so far (Linux's /proc/self/io)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs Linux's /proc/self/io")
def test_a_row_reads_the_end_of_a_long_event_log_not_all_of_it(tmp_path: Path) -> None:
    """A session of 10,000 iterations: the row costs the end of its log, not the whole."""
    log = ProjectPaths.of(tmp_path).session("big").events_file
    log.parent.mkdir(parents=True)
    start = NOW - timedelta(hours=10)
    with log.open("w", encoding="utf-8") as out:
        for i in range(1, 10_001):
            at = start + timedelta(seconds=3.6 * i)
            for seq, kind in ((2 * i - 1, "iteration_start"), (2 * i, "iteration_complete")):
                data = {"decision": "stop" if i == 10_000 else "continue", "summary": "x" * 200}
                item = event(seq, at, kind, **(data if kind == "iteration_complete" else {}))
                out.write(convert.event_to_json(item) + "\n")
    size = log.stat().st_size
    status = SessionStatus(
        session="big",
        health=Health.COMPLETE,
        resources=Resources(lock=False, state=False, tmux=False),
    )
    top_rows([status], tmp_path, now=NOW)  # imports and caches warmed
    before = _rchar()
    [row] = top_rows([status], tmp_path, now=NOW)
    read = _rchar() - before
    assert row.decision == "stop" and row.events_per_minute == 34  # 17 iterations a minute
    assert read < size / 20, f"read {read} bytes of a {size}-byte log"


@pytest.mark.parametrize("case", DURATIONS, ids=[c.test_id for c in DURATIONS])
def test_prune_reads_the_durations_list_reads(case: Duration) -> None:
    """``prune --older-than`` takes every duration ``list --since`` takes, and no other."""
    if case.seconds is None:
        with pytest.raises(UsageError, match="invalid duration"):
            removal.parse_duration(case.text)
    else:
        assert removal.parse_duration(case.text) == case.seconds
