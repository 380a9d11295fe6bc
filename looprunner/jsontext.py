"""``json.dumps(value, indent=2, default=str)``, byte for byte, in two thirds of the time.

Every ``--json`` answer is printed indented, and the engine writes ``state.json`` and
each iteration's ``context.json`` indented, for people who read them. The standard
library writes indented JSON with its pure-Python encoder (its C encoder has no
indentation), which for ``list --json`` of a few hundred sessions costs more than
reading them. This writer walks the value itself and leaves each string to the C
function the standard encoder uses (``encode_basestring_ascii``), so the text is the
same; ``tests/unit/test_jsontext.py`` compares the two on generated values.
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring_ascii as _string

TYPE_CHECKING = False  # typing itself is not imported: a quick look needs nothing of it
if TYPE_CHECKING:
    from typing import Any

_INFINITY = float("inf")


def dumps(value: Any) -> str:
    """Return ``json.dumps(value, indent=2, default=str)``."""
    parts: list[str] = []
    try:
        _write(value, parts, "\n")
    except _Unusual:  # keys or values the standard encoder treats in its own ways
        return json.dumps(value, indent=2, default=str)
    return "".join(parts)


class _Unusual(Exception):
    """A value this writer leaves to the standard encoder."""


def _float(value: float) -> str:
    """Write a float as the standard encoder does (``NaN``, ``Infinity`` included)."""
    if value != value:
        return "NaN"
    if value == _INFINITY:
        return "Infinity"
    if value == -_INFINITY:
        return "-Infinity"
    return float.__repr__(value)


#: the text of the scalars written most, by exact type (subclasses take the long way)
_SCALARS: dict[type, Any] = {
    str: _string,
    int: int.__repr__,
    float: _float,
    bool: lambda value: "true" if value else "false",
    type(None): lambda value: "null",
}


def _write(value: Any, parts: list[str], newline: str) -> None:
    """Append ``value``'s text to ``parts``; ``newline`` is a newline and the indentation.

    A container's scalars are written in its own loop, without a call of this function
    each: most values of an answer are scalars.
    """
    scalar = _SCALARS.get(type(value))
    if scalar is not None:
        parts.append(scalar(value))
    elif isinstance(value, str):
        parts.append(_string(value))
    elif value is None:
        parts.append("null")
    elif value is True:
        parts.append("true")
    elif value is False:
        parts.append("false")
    elif isinstance(value, int):
        parts.append(int.__repr__(value))
    elif isinstance(value, float):
        parts.append(_float(value))
    elif isinstance(value, list | tuple):
        if not value:
            parts.append("[]")
            return
        inner = newline + "  "
        separator = "[" + inner
        for item in value:
            scalar = _SCALARS.get(type(item))
            if scalar is not None:
                parts.append(separator + scalar(item))
            else:
                parts.append(separator)
                _write(item, parts, inner)
            separator = "," + inner
        parts.append(newline + "]")
    elif isinstance(value, dict):
        if not value:
            parts.append("{}")
            return
        inner = newline + "  "
        separator = "{" + inner
        for key, item in value.items():
            if type(key) is not str:  # numbers, booleans, None as keys: the encoder's way
                raise _Unusual
            scalar = _SCALARS.get(type(item))
            if scalar is not None:
                parts.append(separator + _string(key) + ": " + scalar(item))
            else:
                parts.append(separator + _string(key) + ": ")
                _write(item, parts, inner)
            separator = "," + inner
        parts.append(newline + "}")
    else:
        _write(str(value), parts, newline)
