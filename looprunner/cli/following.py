"""What ``tail`` and ``wait`` print: the same whichever way the command was reached.

The click commands (:mod:`looprunner.cli.operate`, :mod:`looprunner.cli.run`) and the
thin entry (:mod:`looprunner.cli.quick`) both call these; nothing here imports click.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from looprunner.cli.output import echo, emit_json, health
from looprunner.models import Event, Health, SessionStatus
from looprunner.session import Session, as_dict, not_found
from looprunner.store.records import event_to_dict
from looprunner.views.clock import age


def describe(event: Event) -> str:
    """One readable line for an event."""
    data = event.data
    # an event of a parallel block's provider names it: "claude/refine"
    where = f"{data['provider']}/{event.stage}" if data.get("block") else event.stage
    parts = [
        event.ts[11:19],
        f"{where or '-':<16}",
        f"{event.iteration or '':>3}",
        f"{event.type:<19}",
    ]
    detail = ""
    if event.type == "iteration_complete":
        detail = f"{data.get('decision', '?')}: {data.get('summary') or data.get('reason') or ''}"
    elif event.type in ("iteration_failed", "session_failed"):
        detail = f"{data.get('type')}: {data.get('message')}"
    elif event.type in ("stage_complete", "session_complete"):
        detail = str(data.get("reason") or "")
    elif event.type == "session_start":
        detail = f"{data.get('type', '')} {data.get('pipeline', '')} on {data.get('backend', '')}"
    elif data:
        detail = ", ".join(f"{k}={v}" for k, v in data.items() if v is not None)
    return " ".join(parts) + (f" {detail}" if detail else "")


def show_tail(
    project: str | Path, as_json: bool, name: str, follow: bool, lines: int | None
) -> int:
    """Print session ``name``'s events (raw JSON lines with ``as_json``); follow on request."""
    session = Session(name, project)
    if session.status().health is Health.NOT_FOUND:
        raise not_found(name, project)
    start = session.event_log_position()  # follow from here: the backlog covers the rest
    if lines is not None:
        backlog = list(session.events(last=lines)) if lines > 0 else []
    else:
        backlog = list(session.events())

    def show(event: Event) -> None:
        if as_json:
            echo(json.dumps(event_to_dict(event), separators=(",", ":")))
        else:
            echo(describe(event))

    for event in backlog:
        show(event)
    if follow:
        seen = max((e.seq for e in session.events(last=1)), default=0)
        try:
            for event in session.tail(follow=True, offset=start):
                if event.seq > seen:
                    seen = event.seq
                    show(event)
        except KeyboardInterrupt:
            return 130  # stopped following with Ctrl-C: the session runs on
    return 0


def _progress(status: SessionStatus) -> tuple[str, str]:
    """Return the progress line's news (health, stage, iteration) and its age suffix."""
    state = status.state
    if state is None:
        return f"{status.session}: {status.health.value}", ""
    current = state.current
    news = (
        f"{status.session}: {status.health.value} · stage {current.id} "
        f"{state.current_stage + 1}/{len(state.stages)} · iteration "
        f"{state.iteration_completed}/{current.max_iterations} done"
    )
    return news, f" · {age(state.started_at)}"


def wait_for(
    session: Session, timeout: float | None, *, show: bool, quiet: bool = False
) -> SessionStatus:
    """Wait for a session, showing its progress.

    On a terminal one line is redrawn in place; elsewhere (a CI log, a pipe) a line is
    printed only when the health, stage or completed iterations change, so an hour's
    wait is a few lines, not thousands. ``quiet`` prints nothing while waiting.
    """
    live = show and not quiet and sys.stderr.isatty()
    last = ""

    def on_progress(status: SessionStatus) -> None:
        nonlocal last
        news, aged = _progress(status)
        if live:
            line = news + aged
            if line != last:
                echo(f"\r\033[K{line}", nl=False, err=True)
                last = line
        elif show and not quiet and news != last:
            echo(news + aged, err=True)
            last = news

    try:
        return session.wait(timeout, on_progress=on_progress)
    finally:
        if live and last:
            echo("", err=True)


def show_wait(
    project: str | Path, as_json: bool, name: str, timeout: float | None, quiet: bool
) -> int:
    """Block until session ``name`` finishes, showing its progress; 0 if it completed."""
    session = Session(name, project)
    if session.status().health is Health.NOT_FOUND:
        raise not_found(name, project)
    status = wait_for(session, timeout, show=not as_json, quiet=quiet)
    if as_json:
        emit_json(as_dict(status))
    else:
        echo(
            f"{name}: {health(status.health.value)}"
            + (f" — {status.state.error.message}" if status.state and status.state.error else "")
        )
    return 0 if status.health is Health.COMPLETE else 1
