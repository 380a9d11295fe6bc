"""Events: one line of ``events.jsonl`` to and from :class:`Event`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from looprunner.convert.converter import converter
from looprunner.models import Event


def event_to_json(event: Event) -> str:
    """Serialise one event as a single JSON line (no newline).

    ``state`` is left out when the event changed nothing in state.json, so most lines
    read as before.
    """
    raw = converter.unstructure(event)
    if raw.get("state") is None:
        raw.pop("state", None)
    return json.dumps(raw, separators=(",", ":"))


def event_from_dict(data: Mapping[str, Any]) -> Event:
    """Build an event from a parsed line."""
    return converter.structure(data, Event)
