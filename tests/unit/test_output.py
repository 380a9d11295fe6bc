"""How the command line's text is rendered: colour codes taken out for measuring widths."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from looprunner.cli.output import style, table, unstyle

#: a terminal's control sequence: ESC [ parameters, intermediates, final byte
CONTROL_SEQUENCE = re.compile(r"\033\[[0-?]*[ -/]*[@-~]")


@given(
    st.text(
        alphabet=st.sampled_from(
            ["\033", "[", "0", "9", ";", "?", " ", "/", "@", "m", "~", "x", "é", "\n"]
        ),
        max_size=16,
    )
)
def test_colour_codes_are_removed_as_the_expression_removes_them(text):
    assert unstyle(text) == CONTROL_SEQUENCE.sub("", text)


def test_a_coloured_cell_is_as_wide_as_its_text(monkeypatch):
    monkeypatch.setattr("looprunner.cli.output.use_colour", lambda stream=None: True)
    red = style("failed", "red", bold=True)
    assert red != "failed"
    assert unstyle(red) == "failed"
    lines = table(["HEALTH", "NAME"], [[red, "one"], ["complete", "two"]]).splitlines()
    assert [
        unstyle(line).index(name) for line, name in zip(lines, ("NAME", "one", "two"), strict=True)
    ] == [unstyle(lines[0]).index("NAME")] * 3
