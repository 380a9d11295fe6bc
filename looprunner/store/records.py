"""Reading ``state.json`` and event lines into models without the cattrs converter.

Commands that only look (``status``, ``list``, ``tail``, ``wait``) read these two records
and nothing else; importing and building the converter costs them more than the rest of
their work. The records hold only plain types (strings, numbers, enums, literals,
optional values, tuples and nested attrs classes), which this module structures with
the same rules as the converter (:mod:`looprunner.convert.converter`): an integer is
never a bool, a number may be an integer, a string may be given as a number (never a
bool), an enum or literal must be one of its values, and keys the model does not know
are ignored.
``tests/unit/test_records.py`` checks that both read every record alike.
"""

from __future__ import annotations

import enum
import functools
import json
import types
import typing
from pathlib import PurePath
from typing import Any, Literal, TypeVar, get_args, get_origin

import attrs

from looprunner.models.events import Event
from looprunner.models.state import RunState

T = TypeVar("T")


class BadRecord(ValueError):
    """A record that is not what its model says (a damaged or foreign file)."""


@functools.cache
def _field_types(cls: type) -> tuple[tuple[str, Any, bool], ...]:
    """Each field's name, resolved type, and whether it has a default."""
    hints = typing.get_type_hints(cls)
    return tuple(
        (field.name, hints[field.name], field.default is not attrs.NOTHING)
        for field in attrs.fields(cls)
    )


def _value(data: Any, kind: Any, where: str) -> Any:
    origin = get_origin(kind)
    if kind is Any:
        return data
    if origin in (typing.Union, types.UnionType):
        options = get_args(kind)
        if data is None and type(None) in options:
            return None
        (inner,) = [option for option in options if option is not type(None)]
        return _value(data, inner, where)
    if origin is Literal:
        if data not in get_args(kind):
            raise BadRecord(f"{where}: {data!r} is not one of {get_args(kind)}")
        return data
    if origin is tuple:
        item = get_args(kind)[0]
        if not isinstance(data, list):
            raise BadRecord(f"{where}: expected a list")
        return tuple(_value(entry, item, f"{where}[{n}]") for n, entry in enumerate(data))
    if origin is dict:
        if not isinstance(data, dict):
            raise BadRecord(f"{where}: expected an object")
        return dict(data)
    if isinstance(kind, type):
        if attrs.has(kind):
            return structure(data, kind, where)
        if issubclass(kind, enum.Enum):
            try:
                return kind(data)
            except ValueError:
                raise BadRecord(f"{where}: {data!r} is not a {kind.__name__}") from None
        if kind is int and isinstance(data, int) and not isinstance(data, bool):
            return data
        if kind is float and isinstance(data, int | float) and not isinstance(data, bool):
            return float(data)
        if kind is str and isinstance(data, str | int | float) and not isinstance(data, bool):
            return str(data)
        if kind is bool and isinstance(data, bool):
            return data
    raise BadRecord(f"{where}: unexpected {type(data).__name__} {data!r}")


def structure(data: Any, cls: type[T], where: str = "") -> T:
    """Build an attrs model ``cls`` from parsed JSON, or raise ValueError saying where."""
    if not isinstance(data, dict):
        raise BadRecord(f"{where or cls.__name__}: expected an object")
    values = {}
    for name, kind, has_default in _field_types(typing.cast(type, cls)):
        at = f"{where}.{name}" if where else name
        if name in data:
            values[name] = _value(data[name], kind, at)
        elif not has_default:
            raise BadRecord(f"{at}: missing")
    return cls(**values)


def state_from_json(text: str) -> RunState:
    """Parse ``state.json`` text (raises ValueError on a malformed file)."""
    try:
        return structure(json.loads(text), RunState)
    except (ValueError, TypeError) as exc:
        raise BadRecord(f"malformed state: {exc}") from exc


def event_from_dict(data: dict[str, Any]) -> Event:
    """Build an event from a parsed line (raises ValueError if it is not one)."""
    return structure(data, Event)


def unstructure(value: Any) -> Any:
    """Turn a model into plain data, as the converter's ``unstructure`` does (``--json``)."""
    if attrs.has(type(value)):
        return {
            field.name: unstructure(getattr(value, field.name))
            for field in attrs.fields(type(value))
        }
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [unstructure(item) for item in value]
    if isinstance(value, dict):
        return {key: unstructure(item) for key, item in value.items()}
    if isinstance(value, PurePath):
        return str(value)
    return value


def event_to_dict(event: Event) -> dict[str, Any]:
    """Return an event as its line in ``events.jsonl`` says it (no ``state`` if none)."""
    data: dict[str, Any] = unstructure(event)
    if data.get("state") is None:
        data.pop("state", None)
    return data
