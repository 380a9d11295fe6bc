"""Timestamps and durations as people read and type them: ``3m``, ``2h05m``, ``4d2h``.

Shared by the command line and the notebook table, so ``list`` and ``Session.list``
print the same ages, and ``list --since`` and ``prune --older-than`` read the same
durations.
"""

from __future__ import annotations

from datetime import UTC, datetime

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION_PART = r"([0-9]+(?:\.[0-9]+)?)([smhdw])"
_WHOLE_DURATION = r"(?:[0-9]+(?:\.[0-9]+)?[smhdw])+"


def duration_seconds(text: str) -> float | None:
    """Read ``90s``, ``30m``, ``1.5h``, ``7d``, ``2w`` or ``1h30m`` (any case); None if not one.

    One grammar for every option that takes a duration, so what ``list --since``
    accepts, ``prune --older-than`` accepts too.
    """
    import re  # here: ``list`` without ``--since`` has no use for the expression compiler

    compact = "".join(text.split()).lower()
    if not re.fullmatch(_WHOLE_DURATION, compact):
        return None
    return sum(float(n) * _UNIT_SECONDS[unit] for n, unit in re.findall(_DURATION_PART, compact))


def parse_ts(value: str | None) -> datetime | None:
    """Parse a timestamp written by looprunner (None for a missing or unreadable one)."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def age(value: str | None, *, until: str | None = None, now: datetime | None = None) -> str:
    """How long ago ``value`` was (or how long until ``until``), as ``3m``, ``2h05m``."""
    start = parse_ts(value)
    if start is None:
        return "-"
    end = parse_ts(until) or now or datetime.now(UTC)
    seconds = max(0, int((end - start).total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s" if minutes < 10 else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    return f"{hours // 24}d{hours % 24}h"
