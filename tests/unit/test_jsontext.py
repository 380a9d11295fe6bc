"""``--json`` answers are printed exactly as ``json.dumps(value, indent=2, default=str)``."""

from __future__ import annotations

import enum
import json
import math
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from looprunner.jsontext import dumps

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
