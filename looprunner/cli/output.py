"""Rendering for the command line: aligned tables, colour only on a terminal, JSON."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

import click

# re-exported: every command formats times the way the notebook table does
from looprunner.views.clock import age as age
from looprunner.views.clock import parse_ts as parse_ts

HEALTH_COLOURS = {
    "running": "cyan",
    "complete": "green",
    "failed": "red",
    "crashed": "red",
    "killed": "yellow",
    "orphaned": "magenta",
    "unknown": "magenta",
    "not_found": "white",
}


def use_colour(stream: TextIO | None = None) -> bool:
    """Colour only on a terminal, and never when ``NO_COLOR`` is set."""
    stream = stream or sys.stdout
    return stream.isatty() and not os.environ.get("NO_COLOR")


def style(text: str, colour: str | None = None, *, bold: bool = False) -> str:
    """Colour ``text`` when colour is on."""
    if not use_colour():
        return text
    return click.style(text, fg=colour, bold=bold)


def health(value: str) -> str:
    """Colour a health word by its meaning."""
    return style(value, HEALTH_COLOURS.get(value))


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns; widths ignore colour codes."""
    plain = [[click.unstyle(cell) for cell in row] for row in rows]
    widths = [len(h) for h in headers]
    for plain_row in plain:
        for i, cell in enumerate(plain_row):
            widths[i] = max(widths[i], len(cell))
    lines = [
        "  ".join(
            style(h.ljust(w), bold=True) for h, w in zip(headers, widths, strict=True)
        ).rstrip()
    ]
    for row, raw in zip(rows, plain, strict=True):
        cells = [cell + " " * (w - len(p)) for cell, p, w in zip(row, raw, widths, strict=True)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def emit_json(data: Any) -> None:
    """Print ``data`` as JSON on stdout."""
    click.echo(json.dumps(data, indent=2, default=str))
