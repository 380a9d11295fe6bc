"""What ``list`` and ``status`` print: the same whichever way the command was reached.

Both the click commands (:mod:`looprunner.cli.inspect`) and the thin entry for commands
that only look (:mod:`looprunner.cli.quick`) call these; nothing here imports click, so
the thin entry prints exactly what the full command line prints without paying for it.
Each session's answer (its ``--json`` object) is built first, and the text is drawn from
it (:mod:`looprunner.cli.pages`).
"""

from __future__ import annotations

import os

from looprunner.cli import pages
from looprunner.cli.output import echo, emit_json

TYPE_CHECKING = False  # typing itself is not imported: a quick look needs nothing of it
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

#: sessions running longer than this many hours get a warning in ``list``
LONG_RUNNING_ENV = "LOOPRUNNER_LONG_RUNNING_HOURS"


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
    from looprunner.cli.answers import session_answer
    from looprunner.session import Session

    statuses = Session.list(project, health=health_filter, stage=stage, since=since, sort=sort)
    answers = [session_answer(s) for s in statuses]
    if as_json:
        emit_json(answers)
        return 0
    if long_running is None:
        try:
            long_running = float(os.environ.get(LONG_RUNNING_ENV, "2"))
        except ValueError:
            long_running = 2.0
    filtered = bool(health_filter or stage or since)
    for line in pages.list_lines(
        answers, str(project), filtered=filtered, long_running=long_running
    ):
        echo(line)
    return 0


def show_status(project: Path, as_json: bool, name: str) -> int:
    """Print the health, resources and progress of session ``name``."""
    import attrs

    from looprunner.cli.answers import session_answer
    from looprunner.session import Session, not_found
    from looprunner.store.records import unstructure

    session = Session(name, project)
    result = session.status()
    if result.health == "not_found":
        raise not_found(name, project)
    queue = session.queue_remaining() if result.state is not None else None
    worktree = session.worktree()
    found: dict[str, Any] | None = None if worktree is None else attrs.asdict(worktree)
    answer = session_answer(result)
    if found is not None:  # the recorded worktree, and what git says of it now
        answer["worktree"] = {**(answer.get("worktree") or {}), **found}
    answer["queue_remaining"] = queue
    if as_json:
        emit_json(answer)
        return 0
    live = result.resources.tmux
    page = pages.StatusPage(
        answer,
        where=session.where() if live else "",
        run_dir=str(session.paths.run_dir),
        kept=session.kept,
        worktree=found,
        # the log's end is enough for the last few iterations, however long the log is
        events=[unstructure(event) for event in session.events(last=50)],
    )
    for line in pages.status_lines(page):
        echo(line)
    return 0
