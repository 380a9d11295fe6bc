"""The text of ``status`` and ``list``, drawn from answers: the ``--json`` objects.

A session's answer (what ``looprunner --json status NAME`` prints) holds everything the
text shows. Drawing the text from it, not from models, lets both ways of reaching an
answer — the models (:mod:`looprunner.session`) and the quick look that reads the files
as plain data (:mod:`looprunner.glance`) — print through one function, so the two can
only differ where their answers do, which ``tests/integration/test_glance.py`` compares.
"""

from __future__ import annotations

from datetime import UTC, datetime

from looprunner.cli.output import health, style, table
from looprunner.views import cells
from looprunner.views.clock import age, parse_ts

TYPE_CHECKING = False  # typing itself is not imported: a quick look needs nothing of it
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

NEXT_ACTIONS = {
    "running": ("monitor {n}", "attach {n}", "kill {n}"),
    "crashed": ("resume {n}", "cleanup"),
    "failed": ("resume {n}", "tail {n}", "cleanup"),
    "killed": ("resume {n}", "start {n} --force ..."),
    "orphaned": ("cleanup --fix", "kill {n}"),
    "unknown": ("status {n}",),
}


class StatusPage:
    """What ``status`` shows besides the answer: its name, where it runs, its events.

    ``name`` is the name asked for (the state file may call the session otherwise, in a
    copied run folder), ``where`` names the backend's session (shown when it is
    present), ``worktree`` is
    what git says of the session's worktree now (None: it has none), ``events`` the
    log's last events as recorded (``type``, ``stage``, ``iteration``, ``data``).
    """

    def __init__(
        self,
        answer: Mapping[str, Any],
        *,
        name: str,
        where: str,
        run_dir: str,
        kept: bool,
        worktree: Mapping[str, Any] | None,
        events: Sequence[Mapping[str, Any]],
    ) -> None:
        self.answer = answer
        self.name = name
        self.where = where
        self.run_dir = run_dir
        self.kept = kept
        self.worktree = worktree
        self.events = events


def status_lines(page: StatusPage) -> list[str]:
    """Return the lines ``status NAME`` prints: health, resources, progress, next steps."""
    answer = page.answer
    name = page.name
    detail = answer["detail"]
    lines = [
        f"{style(name, bold=True)}: {health(answer['health'])}" + (f" — {detail}" if detail else "")
    ]
    has_state = "stages" in answer
    lock = answer.get("lock_info")
    lock_text = "absent"
    if lock is not None and lock["present"]:
        pid = lock["pid"]
        holder = f" by pid {pid} ({'alive' if lock['pid_alive'] else 'gone'})" if pid else ""
        lock_text = f"held{holder}" if lock["held"] else "present, free (stale)"
        if lock["foreign"]:
            who = (
                f"pid {lock['foreign_pid']} ({lock['foreign_user']})"
                if lock["foreign_pid"]
                else "?"
            )
            lock_text = f"held by {who}, not by a looprunner engine of this session"
    backend = answer["backend"] if has_state else "tmux"
    live = answer["resources"]["tmux"]
    backend_text = (
        f"unknown ({backend} cannot be reached)"
        if live is None
        else (f"{page.where} present" if live else "absent")
    )
    rows = [
        ("lock", lock_text),
        ("state", "present" if answer["resources"]["state"] else "absent"),
        (backend, backend_text),
    ]
    if has_state:
        rows += _progress_rows(page)
    width = max(len(k) for k, _ in rows)
    lines += [f"  {key.ljust(width)}  {value}" for key, value in rows]
    if answer["branches"]:
        lines.append("  providers:")
        lines += [f"    {line}" for line in cells.branch_lines(answer["branches"])]
    lines += _recent_lines(page)
    actions = NEXT_ACTIONS.get(answer["health"], ())
    if not has_state and answer.get("error") is not None:  # its run folder was deleted
        actions = ("start {n} ...", "cleanup --fix")
    if page.kept:  # an earlier run kept aside: looked at or removed, never resumed
        actions = ("tail {n}", "rm {n}")
    if actions:
        lines.append(
            "  next: "
            + "  |  ".join(style(f"looprunner {a.format(n=name)}", "cyan") for a in actions)
        )
    return lines


def _progress_rows(page: StatusPage) -> list[tuple[str, str]]:
    """Return the rows of a session with a state: where it is, what it spent, its end."""
    state = page.answer
    current = cells.current_stage(state)
    started = state["started_at"]
    rows = [
        ("type", f"{state['type']} {state['pipeline']}"),
        ("stage", f"{current['id']} ({state['current_stage'] + 1}/{len(state['stages'])})"),
        (
            "iteration",
            f"{state['iteration']}/{current['max_iterations']} "
            f"({state['iteration_completed']} completed)",
        ),
        ("started", f"{started} ({age(started)} ago)"),
    ]
    if state["finished_at"]:
        finished = state["finished_at"]
        rows.append(("finished", f"{finished} (ran {age(started, until=finished)})"))
    if state["usage"] is not None or state["cost_usd"] is not None:
        rows.append(("cost", cells.cost_text(state["cost_usd"], state["usage"], long=True)))
    if state["completion_reason"]:
        rows.append(("reason", state["completion_reason"]))
    if state["error"] is not None:
        rows.append(("error", f"{state['error']['type']}: {state['error']['message']}"))
    rows.append(("spent", spent_text(state["spent"])))
    if state.get("queue_remaining") is not None:
        rows.append(("queue", f"{state['queue_remaining']} item(s) remaining"))
    if page.worktree is not None:
        rows.append(("worktree", worktree_text(page.worktree)))
    rows.append(("run dir", page.run_dir))
    return rows


def _recent_lines(page: StatusPage) -> list[str]:
    """Return a retry being waited for, and the last five iterations' decisions."""
    lines = []
    events = page.events
    if events and events[-1]["type"] == "retry_wait" and page.answer["health"] == "running":
        wait = events[-1]["data"]
        lines.append(
            f"  waiting    {wait.get('delay')}s after attempt {wait.get('attempt')}/"
            f"{wait.get('attempts')} ({wait.get('class')})"
        )
    recent = [e for e in events if e["type"] == "iteration_complete"][-5:]
    if recent:
        lines.append("  recent iterations:")
        for event in recent:
            data = event["data"]
            summary = data.get("summary") or data.get("reason") or ""
            where = f"{data['provider']}/" if data.get("block") else ""
            lines.append(
                f"    {where}{event['stage']} #{event['iteration']}  "
                f"{data.get('decision', '?'):8}  {summary}"
            )
    return lines


def list_lines(
    entries: Sequence[tuple[str, Mapping[str, Any]]],
    project: str,
    *,
    filtered: bool,
    long_running: float,
) -> list[str]:
    """Return the lines ``list`` prints for (name, answer) pairs: table, counts, warnings."""
    if not entries and filtered:
        return [f"No sessions in {project} match."]
    if not entries:
        return [
            f"No sessions in {project}.",
            f"Start one: {style('looprunner start NAME --stage TYPE -n 5', 'cyan')}"
            f"  (or try {style('looprunner demo', 'cyan')})",
        ]
    rows = []
    for name, answer in entries:
        shown = cells.row(name, answer)
        rows.append([health(shown[c]) if c == "HEALTH" else shown[c] for c in cells.COLUMNS])
    lines = [table(list(cells.COLUMNS), rows)]
    counts: dict[str, int] = {}
    for _, answer in entries:
        counts[answer["health"]] = counts.get(answer["health"], 0) + 1
    lines.append("\n" + ", ".join(f"{n} {h}" for h, n in sorted(counts.items())))
    lines += [line for name, answer in entries for line in _warning(name, answer, long_running)]
    return lines


def _warning(name: str, answer: Mapping[str, Any], long_running: float) -> list[str]:
    """Return a session's warning line in ``list``, if its health calls for one."""
    said = answer["health"]
    if said == "running" and "stages" in answer:
        started = parse_ts(answer["started_at"])
        hours = (datetime.now(UTC) - started).total_seconds() / 3600 if started else 0
        if hours > long_running:
            return [
                style(f"warning: {name} has been running for {age(answer['started_at'])}", "yellow")
            ]
    elif said == "crashed":
        return [
            style(f"warning: {name} crashed; 'looprunner resume {name}' continues it", "yellow")
        ]
    elif said == "orphaned":
        return [
            style(f"warning: {name} is orphaned; 'looprunner cleanup --fix' repairs it", "yellow")
        ]
    elif said == "unknown":
        return [style(f"warning: {name}: {answer['detail']}", "yellow")]
    return []


def spent_text(spent: Mapping[str, Any]) -> str:
    """Say what a session spent against its budgets (unknown amounts are left out)."""
    parts = []
    if spent["cost_usd"] is not None:
        parts.append(f"${spent['cost_usd']:.4g}")
    if spent["tokens"] is not None:
        parts.append(f"{spent['tokens']} tokens")
    parts.append(f"{spent['runtime']:.0f}s running")
    if spent["errors_in_row"]:
        parts.append(f"{spent['errors_in_row']} failed iteration(s) in a row")
    return ", ".join(parts)


def worktree_text(worktree: Mapping[str, Any]) -> str:
    """Say where a session's worktree is, its branch, and how far it has come."""
    if not worktree["present"]:
        return f"{worktree['path']} (gone; 'resume' makes it again) on {worktree['branch']}"
    ahead = "?" if worktree["ahead"] is None else str(worktree["ahead"])
    text = f"branch {worktree['branch']}, {ahead} commit(s) ahead of {worktree['base'][:12]}"
    if worktree["changes"]:
        text += f", {worktree['changes']} uncommitted change(s)"
    return f"{text} — {worktree['path']}"
