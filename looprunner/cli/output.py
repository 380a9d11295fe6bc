"""Rendering for the command line: aligned tables, colour only on a terminal, JSON.

No click here: the commands that only look (:mod:`looprunner.cli.quick`) print through
this module without importing the command-line framework. The escape codes are click's
own (``click.style``), so a command prints the same whichever way it was reached.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing itself is not imported: a quick look needs nothing of it
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any, NoReturn, TextIO

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
_ANSI_COLOURS = {"red": 31, "green": 32, "yellow": 33, "magenta": 35, "cyan": 36, "white": 37}
#: how a terminal's control sequence begins (ESC and ``[``)
_ESCAPE = "\033["


def echo(text: str = "", *, err: bool = False, nl: bool = True) -> None:
    """Print ``text`` (and a newline) on stdout or stderr at once, as ``click.echo`` does."""
    print(text, end="\n" if nl else "", file=sys.stderr if err else sys.stdout, flush=True)


def reader_gone() -> NoReturn:
    """Exit 1 without a word when whoever reads stdout stopped (``looprunner list | head``).

    As click does for the commands it prints (exit 1, nothing on stderr): the answer was
    not delivered whole, and saying so would only add noise to the reader's terminal.
    Stdout is pointed at ``/dev/null`` first, so the interpreter's own flush at exit
    fails no more.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    sys.exit(1)


def show_warnings() -> None:
    """Print library warnings (a deprecated pipeline key, ...) as one line on stderr."""
    import warnings

    def show(message: Warning | str, *args: object, **kwargs: object) -> None:
        echo(f"looprunner: warning: {message}", err=True)

    warnings.showwarning = show
    warnings.simplefilter("default", DeprecationWarning)


def unstyle(text: str) -> str:
    """Remove colour codes from ``text``: each ``ESC [ params intermediates final``.

    What the regular expression for such a sequence removes (parameters ``0``-``?``,
    intermediates space-``/``, a final ``@``-``~``), read by hand: :mod:`re` costs a
    command that only looks more than its work (``tests/unit/test_output.py`` compares
    the two).
    """
    if _ESCAPE not in text:
        return text
    first, *rest = text.split(_ESCAPE)
    kept = [first]
    for piece in rest:
        end = len(piece)
        at = next((i for i, char in enumerate(piece) if not "0" <= char <= "?"), end)
        at = next((i for i in range(at, end) if not " " <= piece[i] <= "/"), end)
        if at < end and "@" <= piece[at] <= "~":
            kept.append(piece[at + 1 :])
        else:  # not a whole sequence: kept as it is, as the expression keeps it
            kept.append(_ESCAPE + piece)
    return "".join(kept)


def use_colour(stream: TextIO | None = None) -> bool:
    """Colour only on a terminal, and never when ``NO_COLOR`` is set."""
    stream = stream or sys.stdout
    return stream.isatty() and not os.environ.get("NO_COLOR")


def style(text: str, colour: str | None = None, *, bold: bool = False) -> str:
    """Colour ``text`` when colour is on."""
    if not use_colour():
        return text
    code = f"\033[{_ANSI_COLOURS[colour]}m" if colour else ""
    return f"{code}\033[{1 if bold else 22}m{text}\033[0m"


def health(value: str) -> str:
    """Colour a health word by its meaning."""
    return style(value, HEALTH_COLOURS.get(value))


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns; widths ignore colour codes."""
    plain = [[unstyle(cell) for cell in row] for row in rows]
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
    """Print ``data`` as JSON on stdout, indented (as ``json.dumps(indent=2)`` writes it)."""
    from looprunner import jsontext

    echo(jsontext.dumps(data))
