"""What ``list`` and ``status`` print: the same whichever way the command was reached.

Both the click commands (:mod:`looprunner.cli.inspect`) and the thin entry for commands
that only look (:mod:`looprunner.cli.quick`) call these; nothing here imports click, so
the thin entry prints exactly what the full command line prints without paying for it.
"""

from __future__ import annotations

import os
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import attrs

from looprunner.cli.answers import session_answer
from looprunner.cli.output import age, echo, emit_json, health, parse_ts, style, table
from looprunner.models import Health, SessionStatus, Spent, WorktreeStatus
from looprunner.session import Session, not_found
from looprunner.views import display
from looprunner.views.display import branch_lines, cost_text

NEXT_ACTIONS = {
    Health.RUNNING: ("monitor {n}", "attach {n}", "kill {n}"),
    Health.CRASHED: ("resume {n}", "cleanup"),
    Health.FAILED: ("resume {n}", "tail {n}", "cleanup"),
    Health.KILLED: ("resume {n}", "start {n} --force ..."),
    Health.ORPHANED: ("cleanup --fix", "kill {n}"),
    Health.UNKNOWN: ("status {n}",),
}
#: sessions running longer than this many hours get a warning in ``list``
LONG_RUNNING_ENV = "LOOPRUNNER_LONG_RUNNING_HOURS"


def _row(status: SessionStatus) -> list[str]:
    """Return the cells of ``list``: the notebook table's, with the health coloured."""
    cells = display.row(status)
    return [health(cells[c]) if c == "HEALTH" else cells[c] for c in display.COLUMNS]


def show_list(
    project: Path,
    as_json: bool,
    *,
    long_running: float | None = None,
    health_filter: str | None = None,
    stage: str | None = None,
    since: str | None = None,
    sort: str | None = None,
) -> int:
    """Print every session in ``project`` (filtered and sorted on request)."""
    statuses = Session.list(project, health=health_filter, stage=stage, since=since, sort=sort)
    if long_running is None:
        try:
            long_running = float(os.environ.get(LONG_RUNNING_ENV, "2"))
        except ValueError:
            long_running = 2.0
    if as_json:
        emit_json([session_answer(s) for s in statuses])
        return 0
    if not statuses and (health_filter or stage or since):
        echo(f"No sessions in {project} match.")
        return 0
    if not statuses:
        echo(f"No sessions in {project}.")
        echo(
            f"Start one: {style('looprunner start NAME --stage TYPE -n 5', 'cyan')}"
            f"  (or try {style('looprunner demo', 'cyan')})"
        )
        return 0
    echo(
        table(
            list(display.COLUMNS),
            [_row(s) for s in statuses],
        )
    )
    counts = Counter(s.health.value for s in statuses)
    echo("\n" + ", ".join(f"{n} {h}" for h, n in sorted(counts.items())))
    for status in statuses:
        state = status.state
        if status.health is Health.RUNNING and state is not None:
            started = parse_ts(state.started_at)
            hours = (datetime.now(UTC) - started).total_seconds() / 3600 if started else 0
            if hours > long_running:
                echo(
                    style(
                        f"warning: {status.session} has been running for {age(state.started_at)}",
                        "yellow",
                    )
                )
        elif status.health is Health.CRASHED:
            echo(
                style(
                    f"warning: {status.session} crashed; "
                    f"'looprunner resume {status.session}' continues it",
                    "yellow",
                )
            )
        elif status.health is Health.ORPHANED:
            echo(
                style(
                    f"warning: {status.session} is orphaned; 'looprunner cleanup --fix' repairs it",
                    "yellow",
                )
            )
        elif status.health is Health.UNKNOWN:
            echo(style(f"warning: {status.session}: {status.detail}", "yellow"))
    return 0


def show_status(project: Path, as_json: bool, name: str) -> int:
    """Print the health, resources and progress of session ``name``."""
    session = Session(name, project)
    result = session.status()
    if result.health is Health.NOT_FOUND:
        raise not_found(name, project)
    queue = session.queue_remaining() if result.state is not None else None
    worktree = session.worktree()
    if as_json:
        data = session_answer(result)
        if worktree is not None:  # the recorded worktree, and what git says of it now
            data["worktree"] = {**(data.get("worktree") or {}), **attrs.asdict(worktree)}
        emit_json({**data, "queue_remaining": queue})
        return 0
    echo(
        f"{style(name, bold=True)}: {health(result.health.value)}"
        + (f" — {result.detail}" if result.detail else "")
    )
    state = result.state
    lock = result.lock
    lock_text = "absent"
    if lock is not None and lock.present:
        holder = f" by pid {lock.pid} ({'alive' if lock.pid_alive else 'gone'})" if lock.pid else ""
        lock_text = f"held{holder}" if lock.held else "present, free (stale)"
        if lock.foreign:
            who = f"pid {lock.foreign_pid} ({lock.foreign_user})" if lock.foreign_pid else "?"
            lock_text = f"held by {who}, not by a looprunner engine of this session"
    backend = state.backend if state is not None else "tmux"
    live = result.resources.tmux
    backend_text = (
        f"unknown ({backend} cannot be reached)"
        if live is None
        else (f"{session.where()} present" if live else "absent")
    )
    rows = [
        ("lock", lock_text),
        ("state", "present" if result.resources.state else "absent"),
        (backend, backend_text),
    ]
    if state is not None:
        current = state.current
        rows += [
            ("type", f"{state.type} {state.pipeline}"),
            ("stage", f"{current.id} ({state.current_stage + 1}/{len(state.stages)})"),
            (
                "iteration",
                f"{state.iteration}/{current.max_iterations} "
                f"({state.iteration_completed} completed)",
            ),
            ("started", f"{state.started_at} ({age(state.started_at)} ago)"),
        ]
        if state.finished_at:
            rows.append(
                (
                    "finished",
                    f"{state.finished_at} (ran {age(state.started_at, until=state.finished_at)})",
                )
            )
        if state.usage is not None or state.cost_usd is not None:
            rows.append(("cost", cost_text(state.cost_usd, state.usage, long=True)))
        if state.completion_reason:
            rows.append(("reason", state.completion_reason))
        if state.error is not None:
            rows.append(("error", f"{state.error.type}: {state.error.message}"))
        rows.append(("spent", spent_text(state.spent)))
        if queue is not None:
            rows.append(("queue", f"{queue} item(s) remaining"))
        if worktree is not None:
            rows.append(("worktree", worktree_text(worktree)))
        rows.append(("run dir", str(session.paths.run_dir)))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        echo(f"  {key.ljust(width)}  {value}")
    if result.branches:
        echo("  providers:")
        for line in branch_lines(result.branches):
            echo(f"    {line}")
    # the log's end is enough for the last few iterations, however long the log is
    tail = list(session.events(last=50))
    if tail and tail[-1].type == "retry_wait" and result.health is Health.RUNNING:
        wait = tail[-1].data
        echo(
            f"  waiting    {wait.get('delay')}s after attempt {wait.get('attempt')}/"
            f"{wait.get('attempts')} ({wait.get('class')})"
        )
    recent = [e for e in tail if e.type == "iteration_complete"][-5:]
    if recent:
        echo("  recent iterations:")
        for event in recent:
            summary = event.data.get("summary") or event.data.get("reason") or ""
            where = f"{event.data['provider']}/" if event.data.get("block") else ""
            echo(
                f"    {where}{event.stage} #{event.iteration}  "
                f"{event.data.get('decision', '?'):8}  {summary}"
            )
    actions = NEXT_ACTIONS.get(result.health, ())
    if state is None and result.fault is not None:  # its run folder was deleted
        actions = ("start {n} ...", "cleanup --fix")
    if session.kept:  # an earlier run kept aside: looked at or removed, never resumed
        actions = ("tail {n}", "rm {n}")
    if actions:
        echo(
            "  next: "
            + "  |  ".join(style(f"looprunner {a.format(n=name)}", "cyan") for a in actions)
        )
    return 0


def spent_text(spent: Spent) -> str:
    """Say what a session spent against its budgets (unknown amounts are left out)."""
    parts = []
    if spent.cost_usd is not None:
        parts.append(f"${spent.cost_usd:.4g}")
    if spent.tokens is not None:
        parts.append(f"{spent.tokens} tokens")
    parts.append(f"{spent.runtime:.0f}s running")
    if spent.errors_in_row:
        parts.append(f"{spent.errors_in_row} failed iteration(s) in a row")
    return ", ".join(parts)


def worktree_text(worktree: WorktreeStatus) -> str:
    """Say where a session's worktree is, its branch, and how far it has come."""
    if not worktree.present:
        return f"{worktree.path} (gone; 'resume' makes it again) on {worktree.branch}"
    ahead = "?" if worktree.ahead is None else str(worktree.ahead)
    text = f"branch {worktree.branch}, {ahead} commit(s) ahead of {worktree.base[:12]}"
    if worktree.changes:
        text += f", {worktree.changes} uncommitted change(s)"
    return f"{text} — {worktree.path}"
