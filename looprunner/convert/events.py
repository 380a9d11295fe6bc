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
    read as before. The fields are laid out here rather than by the converter (the
    engine writes two events an iteration); a value JSON cannot write as it is, in
    ``data`` or ``state``, is handed to the converter, as before.
    """
    raw: dict[str, Any] = {
        "ts": event.ts,
        "seq": event.seq,
        "type": event.type,
        "session": event.session,
        "stage": event.stage,
        "iteration": event.iteration,
        "data": event.data,
    }
    if event.state is not None:
        raw["state"] = event.state
    return json.dumps(raw, separators=(",", ":"), default=_plain)


def _plain(value: Any) -> Any:
    plain = converter.unstructure(value)
    if plain is value:
        raise TypeError(f"{type(value).__name__} cannot be written as JSON")
    return plain


def event_from_dict(data: Mapping[str, Any]) -> Event:
    """Build an event from a parsed line."""
    return converter.structure(data, Event)
