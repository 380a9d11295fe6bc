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


Reader = typing.Callable[[Any, str], Any]
#: values ``unstructure`` returns as they are (checked by exact type: a bool is an int)
_PLAIN = frozenset({str, int, float, bool, type(None)})


@functools.cache
def _field_types(cls: type) -> tuple[tuple[str, Any, bool], ...]:
    """Each field's name, resolved type, and whether it has a default."""
    hints = typing.get_type_hints(cls)
    return tuple(
        (field.name, hints[field.name], field.default is not attrs.NOTHING)
        for field in attrs.fields(cls)
    )


@functools.cache
def _reader(kind: Any) -> Reader:
    """Return the function that reads a value of type ``kind`` (``(data, where)``).

    Worked out once per type: reading a ``list`` of two hundred states then costs the
    checks the values need, not a look at each field's type annotation every time.
    """
    origin = get_origin(kind)
    if kind is Any:
        return lambda data, where: data
    if origin in (typing.Union, types.UnionType):
        options = get_args(kind)
        others = [option for option in options if option is not type(None)]
        if len(others) != 1:
            return functools.partial(_value, kind=kind)
        inner = _reader(others[0])
        if type(None) not in options:
            return inner
        return lambda data, where: None if data is None else inner(data, where)
    if origin is Literal:
        allowed = get_args(kind)

        def literal(data: Any, where: str) -> Any:
            if data not in allowed:
                raise BadRecord(f"{where}: {data!r} is not one of {allowed}")
            return data

        return literal
    if origin is tuple:
        item = _reader(get_args(kind)[0])

        def items(data: Any, where: str) -> Any:
            if not isinstance(data, list):
                raise BadRecord(f"{where}: expected a list")
            return tuple(item(entry, f"{where}[{n}]") for n, entry in enumerate(data))

        return items
    if origin is dict:

        def mapping(data: Any, where: str) -> Any:
            if not isinstance(data, dict):
                raise BadRecord(f"{where}: expected an object")
            return dict(data)

        return mapping
    if isinstance(kind, type) and attrs.has(kind):
        return lambda data, where: structure(data, kind, where)
    return functools.partial(_value, kind=kind)


def _value(data: Any, where: str, *, kind: Any) -> Any:
    """Read a value of a scalar type (or one no plan covers), as the converter does."""
    if isinstance(kind, type):
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


@functools.cache
def _fields(cls: type) -> tuple[tuple[str, Reader, bool], ...]:
    """Return each field's name, its reader and whether it has a default.

    A field holding a model is read through :func:`structure` when a value comes, so a
    model that refers to itself needs no plan built in advance.
    """
    return tuple((name, _reader(kind), default) for name, kind, default in _field_types(cls))


def structure(data: Any, cls: type[T], where: str = "") -> T:
    """Build an attrs model ``cls`` from parsed JSON, or raise ValueError saying where."""
    if not isinstance(data, dict):
        raise BadRecord(f"{where or cls.__name__}: expected an object")
    values = {}
    for name, read, has_default in _fields(typing.cast(type, cls)):
        if name in data:
            values[name] = read(data[name], f"{where}.{name}" if where else name)
        elif not has_default:
            raise BadRecord(f"{f'{where}.{name}' if where else name}: missing")
    return cls(**values)


def state_from_json(text: str) -> RunState:
    """Parse ``state.json`` text (raises ValueError on a malformed file).

    Nesting too deep for the parser (a file written by hand, or by a hostile agent) is
    malformed too, not a crash of whoever reads it.
    """
    try:
        return structure(json.loads(text), RunState)
    except (ValueError, TypeError, RecursionError) as exc:
        raise BadRecord(f"malformed state: {exc}") from exc


def event_from_dict(data: dict[str, Any]) -> Event:
    """Build an event from a parsed line (raises ValueError if it is not one)."""
    return structure(data, Event)


@functools.cache
def _names(cls: Any) -> tuple[str, ...] | None:
    """Return the field names of an attrs class, in order (None: not an attrs class)."""
    return tuple(field.name for field in attrs.fields(cls)) if attrs.has(cls) else None


def unstructure(value: Any) -> Any:
    """Turn a model into plain data, as the converter's ``unstructure`` does (``--json``)."""
    kind: Any = type(value)
    if kind in _PLAIN:
        return value
    names = _names(kind)
    if names is not None:
        return {name: unstructure(getattr(value, name)) for name in names}
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
