"""JSON text exactly as the standard library writes and reads it, at less cost.

:func:`dumps` is ``json.dumps(value, indent=2, default=str)``, byte for byte, in two
thirds of the time. Every ``--json`` answer is printed indented, and the engine writes
``state.json`` and each iteration's ``context.json`` indented, for people who read them.
The standard library writes indented JSON with its pure-Python encoder (its C encoder
has no indentation), which for ``list --json`` of a few hundred sessions costs more than
reading them. This writer walks the value itself and leaves each string to the C
function the standard encoder uses (``encode_basestring_ascii``), so the text is the
same.

:func:`loads` is ``json.loads(text)`` for a string, through the same C scanner. Both
call the standard library's C accelerator (``_json``) directly: the :mod:`json` package
imports :mod:`re` and the regular expression compiler, which cost a command that reads
a few files more than its reading does. Where the accelerator is missing (another
interpreter), both fall back to :mod:`json`. ``tests/unit/test_jsontext.py`` compares
each with the standard library on generated values and texts.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing itself is not imported: a quick look needs nothing of it
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

_INFINITY = float("inf")
#: the characters ``json.loads`` skips around a value
_WHITESPACE = " \t\n\r"
_CONSTANTS = {"NaN": float("nan"), "Infinity": _INFINITY, "-Infinity": -_INFINITY}


class _Reading:
    """What the C scanner asks of a decoder: ``json.loads``'s defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__


_string: Callable[[str], str]
_scan: Callable[[str, int], tuple[Any, int]] | None
try:
    import _json
except ImportError:  # pragma: no cover - CPython always has its accelerator
    from json.encoder import encode_basestring_ascii as _string

    _scan = None
else:
    _string = _json.encode_basestring_ascii
    _scan = _json.make_scanner(_Reading())  # type: ignore[arg-type]  # any object's attributes


def loads(text: str) -> Any:
    """Return ``json.loads(text)``, or raise what it raises.

    The C scanner reads the value and whitespace is skipped around it as the standard
    decoder skips it. A text it does not read whole goes to ``json.loads`` itself, for
    its error: the scanner raises the standard ``JSONDecodeError`` only where the
    :mod:`json` package is already loaded, and a text this module refuses costs the
    import no more than a text the standard decoder refuses.
    """
    if _scan is not None:
        start = len(text) - len(text.lstrip(_WHITESPACE))
        try:
            value, end = _scan(text, start)
        except Exception:  # the standard decoder says what is wrong
            pass
        else:
            if not text[end:].strip(_WHITESPACE):
                return value
    import json

    return json.loads(text)


def dumps(value: Any) -> str:
    """Return ``json.dumps(value, indent=2, default=str)``."""
    parts: list[str] = []
    try:
        _write(value, parts, "\n")
    except _Unusual:  # keys or values the standard encoder treats in its own ways
        import json

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


#: each key's text and colon, made once a process: answers repeat the same few dozen keys
#: (``list --json`` of 200 sessions writes 30,000 keys; about a tenth of its writing)
_NAMED: dict[str, str] = {}
#: keys kept at most: a value with thousands of distinct keys does not grow it further
_NAMED_MOST = 2048


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
            named = _NAMED.get(key)
            if named is None:
                if type(key) is not str:  # numbers, booleans, None as keys: the encoder's way
                    raise _Unusual
                named = _string(key) + ": "
                if len(_NAMED) < _NAMED_MOST:
                    _NAMED[key] = named
            scalar = _SCALARS.get(type(item))
            if scalar is not None:
                parts.append(separator + named + scalar(item))
            else:
                parts.append(separator + named)
                _write(item, parts, inner)
            separator = "," + inner
        parts.append(newline + "}")
    else:
        _write(str(value), parts, newline)
