"""How sessions look in a notebook (HTML tables) and a terminal (text), and ``watch``.

Kept apart from :mod:`looprunner.session` so the session logic does not mix with
presentation (and below it: a view only needs something with a ``status()``); imports
nothing of IPython unless it is already running.
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Iterable
from typing import Any, Protocol, TextIO

from looprunner.models import Health, SessionStatus, TokenUsage
from looprunner.store.records import unstructure
from looprunner.views import cells


class Watched(Protocol):
    """What :func:`watch` follows: anything that reports a status."""

    def status(self) -> SessionStatus:
        """Return the session's current status."""


#: the columns of a session table, the same for ``looprunner list``, the notebook and the REPL
COLUMNS = cells.COLUMNS


def row(status: SessionStatus) -> dict[str, str]:
    """Return the cells of one session's row, by column (see :func:`cells.row`)."""
    answer: dict[str, Any] = (
        dict(unstructure(status.state)) if status.state is not None else {"session": status.session}
    )
    answer["health"] = status.health.value
    answer["branches"] = [unstructure(b) for b in status.branches]
    return cells.row(status.session, answer)


def cost_text(cost_usd: float | None, usage: TokenUsage | None, *, long: bool = False) -> str:
    """Say what agents reported a session cost (see :func:`cells.cost_text`)."""
    return cells.cost_text(cost_usd, None if usage is None else unstructure(usage), long=long)


def html_table(statuses: Iterable[SessionStatus]) -> str:
    """Render statuses as an HTML table, for Jupyter."""
    import html  # notebooks only: the command line never renders HTML

    head = "".join(f"<th>{name}</th>" for name in COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(row(s)[c])}</td>" for c in COLUMNS) + "</tr>"
        for s in statuses
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def text_table(statuses: Iterable[SessionStatus]) -> str:
    """Render statuses as aligned text, for a REPL."""
    rows = [row(s) for s in statuses]
    widths = {c: max([len(c), *(len(r[c]) for r in rows)]) for c in COLUMNS}
    lines = ["  ".join(c.ljust(widths[c]) for c in COLUMNS).rstrip()]
    lines += ["  ".join(r[c].ljust(widths[c]) for c in COLUMNS).rstrip() for r in rows]
    return "\n".join(lines)


class SessionList(list[SessionStatus]):
    """A list of statuses that shows itself as a table in Jupyter and in a REPL."""

    def _repr_html_(self) -> str:
        return html_table(self)

    def __str__(self) -> str:
        return text_table(self)


def bar(done: int, total: int, width: int = 24) -> str:
    """Draw a text progress bar: ``[########------]``."""
    filled = width if total <= 0 else min(width, round(width * done / total))
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def progress_lines(status: SessionStatus) -> list[str]:
    """One line per stage: its bar, iterations done / cap, and its status."""
    state = status.state
    if state is None:
        return [f"{status.session}: {status.health.value}"]
    lines = [f"{status.session}: {status.health.value}"]
    for index, stage in enumerate(state.stages):
        lines.append(
            f"  {stage.id:<20} {bar(stage.iterations_completed, stage.max_iterations)} "
            f"{stage.iterations_completed}/{stage.max_iterations} {stage.status.value}"
        )
        if index == state.current_stage:
            lines += [
                f"    {b.name:<18} {bar(b.iteration, b.max_iterations)} "
                f"{b.stage} {b.iteration}/{b.max_iterations} {b.status}"
                for b in status.branches
            ]
    return lines


def _in_notebook() -> bool:
    """Tell whether a Jupyter kernel runs this code (IPython is never imported here)."""
    shell = sys.modules.get("IPython")
    get = getattr(shell, "get_ipython", None) if shell is not None else None
    ip = get() if get else None
    return ip is not None and hasattr(ip, "kernel")


def watch(session: Watched, *, interval: float = 0.5, out: TextIO | None = None) -> SessionStatus:
    """Show live progress (a bar per stage) until the session stops running.

    In Jupyter the display updates in place; in a terminal the lines are redrawn; in a
    log (not a terminal) a line is printed only when something changed.
    """
    stream = out or sys.stdout
    notebook = out is None and _in_notebook()
    handle: Any = None
    last = ""
    live = not notebook and stream.isatty()
    drawn = 0
    while True:
        status = session.status()
        lines = progress_lines(status)
        text = "\n".join(lines)
        if text != last:
            if notebook:
                ipd: Any = importlib.import_module("IPython.display")  # a kernel runs

                from html import escape

                view = ipd.HTML("<pre>" + escape(text) + "</pre>")
                if handle is None:
                    handle = ipd.display(view, display_id=True)
                else:
                    handle.update(view)
            elif live:
                if drawn:
                    stream.write(f"\x1b[{drawn}F\x1b[J")
                stream.write(text + "\n")
                drawn = len(lines)
            else:
                stream.write(text + "\n")
            stream.flush()
            last = text
        if status.health not in (Health.RUNNING, Health.UNKNOWN):
            return status
        time.sleep(interval)
