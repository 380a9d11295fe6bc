"""Run state: ``state.json`` text to and from :class:`RunState`."""

from __future__ import annotations

import json

from looprunner import jsontext
from looprunner.convert.converter import converter
from looprunner.models import RunState


def state_to_json(state: RunState) -> str:
    """Serialise run state as ``state.json`` text (indented: people read it)."""
    return jsontext.dumps(converter.unstructure(state)) + "\n"


def state_from_json(text: str) -> RunState:
    """Parse ``state.json`` text (raises ValueError on a malformed file)."""
    try:
        return converter.structure(json.loads(text), RunState)
    except Exception as exc:
        raise ValueError(f"malformed state: {exc}") from exc
