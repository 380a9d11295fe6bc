"""``looprunner top``: every session of the project on one live screen.

Each refresh makes one listing (which asks tmux once for all sessions) and reads the end
of each event log; nothing else asks tmux until a key does (``a`` attaches, ``k``
kills). The monitor panel reads ``engine.log`` from the run folder, so an open panel
costs no tmux call either. ``--once`` prints a single frame as plain text for scripts
and tests; ``--json`` prints the rows.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import attrs
import click
from rich.console import Console
from rich.live import Live

from looprunner.cli.context import Context, pass_ctx
from looprunner.cli.keys import Keys
from looprunner.cli.output import emit_json
from looprunner.cli.topview import Screen, frame
from looprunner.errors import LooprunnerError, UsageError
from looprunner.session import Session
from looprunner.views.top import TopRow, recent_output, top_rows

#: the width ``--once`` draws at when its output is not a terminal (a file, a pipe)
PLAIN_WIDTH = 160


def gather(project: Path) -> list[TopRow]:
    """One refresh's rows: a listing (one question to each backend), then the event logs."""
    return top_rows(Session.list(project), project)


@click.command()
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=2.0,
    show_default=True,
    help="Seconds between refreshes.",
)
@click.option("--once", is_flag=True, help="Print one frame as plain text and exit.")
@pass_ctx
def top(ctx: Context, interval: float, once: bool) -> int:
    """Watch every session live: health, stage, iteration, cost, last decision, events/min."""
    if ctx.json:  # the rows of one refresh: there is no live JSON view
        emit_json([row.as_dict() for row in gather(ctx.project)])
        return 0
    if once:
        tty = sys.stdout.isatty()
        console = Console(highlight=False, width=None if tty else PLAIN_WIDTH)
        console.print(frame(gather(ctx.project), ctx.project, now=datetime.now(UTC)))
        return 0
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError(
            "top needs a terminal; 'looprunner top --once' prints one frame as text, "
            "'looprunner --json top' the rows as JSON"
        )
    return Viewer(ctx.project, interval).run()


@attrs.define
class Viewer:
    """The interactive view: its rows, the selection, and what the keys do."""

    project: Path
    interval: float
    rows: list[TopRow] = attrs.field(factory=list)
    selected: str | None = None
    monitoring: bool = False
    asking: str | None = None  # the session a kill waits for confirmation of
    message: str | None = None

    def refresh(self) -> None:
        """Read every session again (one tmux call), keeping the selection on its name."""
        self.rows = gather(self.project)
        names = [r.session for r in self.rows]
        if self.selected not in names:
            self.selected = names[0] if names else None

    def screen(self, console: Console) -> Screen:
        """Return what the frame adds to the rows now."""
        output = None
        if self.monitoring and self.selected:
            room = max(5, console.size.height - len(self.rows) - 10)
            output = recent_output(self.project, self.selected, room)
        message = f"kill {self.asking}? y/N" if self.asking else self.message
        return Screen(selected=self.selected, output=output, message=message, interactive=True)

    def move(self, step: int) -> None:
        """Select the row ``step`` rows down (up when negative), staying in the list."""
        names = [r.session for r in self.rows]
        if not names:
            return
        at = names.index(self.selected) if self.selected in names else 0
        self.selected = names[max(0, min(len(names) - 1, at + step))]

    def run(self) -> int:
        """Draw, wait for a key or the next refresh, act; until ``q``."""
        console = Console(highlight=False)
        due = 0.0
        with (
            Keys(sys.stdin.fileno()) as keys,
            Live(console=console, screen=True, auto_refresh=False) as live,
        ):
            while True:
                if time.monotonic() >= due:
                    self.refresh()
                    due = time.monotonic() + self.interval
                now = datetime.now(UTC)
                view = frame(
                    self.rows, self.project, now=now, interval=self.interval,
                    screen=self.screen(console),
                )  # fmt: skip
                live.update(view, refresh=True)
                key = keys.read(due - time.monotonic())
                if key is None:
                    continue
                if key in ("q", "eof") and not self.asking:
                    return 0
                if self.handle(key, live, keys):
                    due = 0.0  # something changed: read the sessions again now

    def handle(self, key: str, live: Live, keys: Keys) -> bool:
        """Act on one key; return whether the sessions must be read again."""
        if self.asking:
            name, self.asking = self.asking, None
            if key in ("y", "Y"):
                self.message = kill(self.project, name)
                return True
            self.message = f"{name} left running"
            return False
        self.message = None
        if key in ("down", "n"):
            self.move(1)
        elif key in ("up", "p"):
            self.move(-1)
        elif key == "m":
            self.monitoring = not self.monitoring
        elif key == "escape":
            self.monitoring = False
        elif key == "k" and self.selected:
            self.asking = self.selected
        elif key == "a" and self.selected:
            self.message = attach(self.project, self.selected, live, keys)
            return True
        return False


def kill(project: Path, name: str) -> str:
    """Kill one session; say what happened in a line."""
    try:
        result = Session(name, project).kill()
    except LooprunnerError as exc:
        return f"not killed: {exc}"
    return f"{name} is {result.health.value}"


def attach(project: Path, name: str, live: Live, keys: Keys) -> str | None:
    """Hand the terminal to the session's tmux session until the user detaches."""
    try:
        command = Session(name, project).attach_command()
    except LooprunnerError as exc:
        return str(exc)
    live.stop()
    keys.leave()
    try:
        subprocess.run(command, check=False)
    finally:
        keys.enter()
        live.start(refresh=True)
    return None
