"""JSON text written and read exactly as the standard library writes and reads it.

``--json`` answers are printed as ``json.dumps(value, indent=2, default=str)`` prints
them, and a quick look reads files as ``json.loads`` reads them.
"""

from __future__ import annotations

import enum
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from looprunner import jsontext
from looprunner.jsontext import dumps, loads

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(), inner, max_size=5)
    ),
    max_leaves=40,
)


@given(VALUES)
def test_any_json_value_is_written_as_the_standard_encoder_writes_it(value):
    assert dumps(value) == json.dumps(value, indent=2, default=str)


class Colour(enum.StrEnum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


def test_what_the_standard_encoder_treats_its_own_way_is_written_its_way():
    odd = {
        "path": Path("/tmp/x"),  # default=str
        "enum": Colour.RED,
        "level": Level.HIGH,
        "nan": math.nan,
        "keys": {7: "a", 2.5: "b", True: "c", None: "d"},
        "empty": [{}, [], ()],
    }
    assert dumps(odd) == json.dumps(odd, indent=2, default=str)


def standard_reading(text: str) -> object:
    """``json.loads(text)``, or the ValueError class when it refuses the text."""
    try:
        return json.loads(text)
    except ValueError:
        return ValueError


def our_reading(text: str) -> object:
    try:
        return loads(text)
    except ValueError:
        return ValueError


def same(a: object, b: object) -> bool:
    """Both refused, or equal values (NaN included: ``nan != nan``) compared as text."""
    if a is ValueError or b is ValueError:
        return a is b
    return type(a) is type(b) and json.dumps(a) == json.dumps(b)


@given(
    VALUES.filter(lambda value: not isinstance(value, tuple)),
    st.sampled_from(["", " ", "\n", "\t\r\n "]),
)
def test_any_json_text_is_read_as_the_standard_decoder_reads_it(value, space):
    for text in (
        json.dumps(value),
        json.dumps(value, indent=2),
        json.dumps(value, ensure_ascii=False),
        space + json.dumps(value) + space,
    ):
        assert same(loads(text), json.loads(text)), text


#: texts the standard decoder refuses, and some it accepts that look wrong
ODD_TEXTS = [
    "",
    "   ",
    "{",
    "[1,]",
    "[1 2]",
    '{"a" 1}',
    '{"a": 1,}',
    "{} x",
    "{}{}",
    "1 2",
    "\ufeff{}",
    "nan",
    "NaN",
    "-Infinity",
    "[Infinity, -Infinity]",
    '"\\ud800"',
    '"a\nb"',
    '"\\x41"',
    "01",
    "1.",
    "-",
    "1e5",
    "tru",
    "\x0c{}",
    "{}\x0c",
    '{"a": 1, "a": 2}',
    " \t\r\n[]\n\r\t ",
]


@pytest.mark.parametrize("text", ODD_TEXTS)
def test_what_the_standard_decoder_refuses_is_refused(text):
    assert same(our_reading(text), standard_reading(text)), text


@given(st.text(alphabet='{}[]",:0123456789.-+eE \ntruefalsnNaIiy\\u', max_size=12))
def test_any_short_text_is_accepted_or_refused_as_the_standard_decoder_does(text):
    assert same(our_reading(text), standard_reading(text)), text


def test_a_fresh_interpreter_reads_without_the_json_package_and_refuses_as_it_does():
    """Where :mod:`json` is not loaded (a command that only looks), errors are its own."""
    program = (
        "import sys\n"
        "from looprunner.jsontext import loads\n"
        "assert loads(' {\"a\": [1, 2.5, null]} ') == {'a': [1, 2.5, None]}\n"
        "assert 'json' not in sys.modules and 're' not in sys.modules\n"
        "for text in ('{', '{\"a\": }', '[1,]', '{} x', ''):\n"
        "    try:\n"
        "        loads(text)\n"
        "    except ValueError as error:\n"
        "        print(type(error).__name__, error)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "JSONDecodeError Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1)",
        "JSONDecodeError Expecting value: line 1 column 7 (char 6)",
        "JSONDecodeError Expecting value: line 1 column 4 (char 3)",
        "JSONDecodeError Extra data: line 1 column 4 (char 3)",
        "JSONDecodeError Expecting value: line 1 column 1 (char 0)",
    ]


def test_keys_written_once_a_process_are_written_as_the_encoder_writes_them():
    """Key texts are kept between calls, up to a bound; the text never changes."""
    many = {f"key-{n}": n for n in range(3000)}
    assert dumps(many) == json.dumps(many, indent=2)
    assert dumps(many) == json.dumps(many, indent=2)  # the kept keys, and the rest
    assert len(jsontext._NAMED) <= jsontext._NAMED_MOST
    kept = {"red": 1}
    assert dumps(kept) == json.dumps(kept, indent=2)
    equal_keys = {Colour.RED: 1, 1: 2, 2.5: 3}  # a str subclass equal to a kept key; numbers
    assert dumps(equal_keys) == json.dumps(equal_keys, indent=2, default=str)
