"""How ``looprunner top`` draws a frame with rich: a header, the sessions, keys or a question.

Only this module and :mod:`looprunner.cli.top` import rich; the rows come from
:mod:`looprunner.views.top`, which knows nothing of terminals. Colour follows rich's
rules: none when the output is not a terminal or ``NO_COLOR`` is set.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import attrs
from rich import box
from rich.console import Group, RenderableType
from rich.control import strip_control_codes
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from looprunner.cli.output import HEALTH_COLOURS
from looprunner.views.clock import age
from looprunner.views.top import TopRow

COLUMNS = ("NAME", "HEALTH", "STAGE", "ITER", "COST", "DECISION", "DECIDED", "EV/MIN", "AGE")
KEYS = "↑/↓ (n/p) select · m monitor · a attach · k kill · q quit"
DECISION_COLOURS = {"continue": "cyan", "stop": "green", "error": "red", "failed": "red"}


@attrs.frozen
class Screen:
    """What the interactive view adds to the rows: selection, output panel, a message."""

    selected: str | None = None
    #: the selected session's last output lines, when the monitor panel is open
    output: Sequence[str] | None = None
    #: a question (``kill auth? y/N``) or what the last action did, instead of the keys
    message: str | None = None
    interactive: bool = False


def cells(row: TopRow, now: datetime) -> list[str]:
    """Return the text of one row: unknown values blank (a cost never shown as ``$0``)."""
    iteration = "" if row.iteration is None else f"{row.iteration}/{row.max_iterations}"
    return [
        row.session,
        row.health,
        row.stage or "",
        iteration,
        "" if row.cost_usd is None else f"${row.cost_usd:.4f}",
        row.decision or "",
        "" if row.decided_at is None else f"{age(row.decided_at, now=now)} ago",
        str(row.events_per_minute),
        "" if row.started_at is None else age(row.started_at, now=now),
    ]


def header(rows: Sequence[TopRow], project: Path, now: datetime) -> Text:
    """One line: the project, how many sessions in each health, when it was drawn."""
    counts = Counter(r.health for r in rows)
    text = Text("looprunner top", style="bold")
    text.append(f"  {project}  ")
    text.append(f"{len(rows)} session{'s' if len(rows) != 1 else ''}")
    if counts:
        text.append(": ")
        for i, (value, n) in enumerate(sorted(counts.items())):
            text.append(", " if i else "")
            text.append(f"{n} {value}", style=HEALTH_COLOURS.get(value))
    text.append(f"  {now.astimezone():%H:%M:%S}")
    text.no_wrap = True  # a narrow terminal cuts the line rather than pushing the table down
    text.overflow = "ellipsis"
    return text


def table(rows: Sequence[TopRow], screen: Screen, now: datetime) -> Table:
    """Return the sessions, one row each, the selected one highlighted."""
    grid = Table(
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        show_edge=False,
        collapse_padding=True,
        header_style="bold",
    )
    for name in COLUMNS:
        grid.add_column(name, justify="right" if name in ("COST", "EV/MIN") else "left")
    for row in rows:
        texts = cells(row, now)
        styled = [Text(t) for t in texts]
        styled[1].stylize(HEALTH_COLOURS.get(row.health, ""))
        styled[5].stylize(DECISION_COLOURS.get(row.decision or "", ""))
        chosen = screen.interactive and row.session == screen.selected
        grid.add_row(*styled, style="reverse" if chosen else None)
    return grid


def frame(
    rows: Sequence[TopRow],
    project: Path,
    *,
    now: datetime,
    interval: float | None = None,
    screen: Screen | None = None,
) -> RenderableType:
    """Everything one refresh draws."""
    screen = screen or Screen()
    parts: list[RenderableType] = [header(rows, project, now), Text("")]
    if rows:
        parts.append(table(rows, screen, now))
    else:
        parts.append(Text("No sessions in this project yet: looprunner start NAME --stage TYPE"))
    if screen.output is not None and screen.selected:
        body = Text("\n".join(strip_control_codes(line) for line in screen.output) or "(no output)")
        parts.append(Panel(body, title=f"{screen.selected}: engine.log", title_align="left"))
    if screen.interactive and screen.message:
        parts.append(Text(screen.message, style="bold"))
    elif screen.interactive:
        every = f"every {interval:g}s · " if interval is not None else ""
        parts.append(Text(every + KEYS, style="dim"))
    return Group(*parts)
