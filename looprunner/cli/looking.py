"""What ``list`` and ``status`` print: the same whichever way the command was reached.

Both the click commands (:mod:`looprunner.cli.inspect`) and the thin entry for commands
that only look (:mod:`looprunner.cli.quick`) call these; nothing here imports click, so
the thin entry prints exactly what the full command line prints without paying for it.
Each session's answer (its ``--json`` object) is built first, and the text is drawn from
it (:mod:`looprunner.cli.pages`).
"""

from __future__ import annotations

import gc
import os

from looprunner.cli.output import echo, emit_json

TYPE_CHECKING = False  # typing itself is not imported: a quick look needs nothing of it
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

    from looprunner.cli.pages import StatusPage

#: sessions running longer than this many hours get a warning in ``list``
LONG_RUNNING_ENV = "LOOPRUNNER_LONG_RUNNING_HOURS"
#: ``0`` turns the quick look (:mod:`looprunner.glance`) off: every answer from the models
QUICK_LOOK_ENV = "LOOPRUNNER_QUICK_LOOK"


def quick_look() -> bool:
    """Tell whether answers may come from the quick look (see :data:`QUICK_LOOK_ENV`)."""
    return os.environ.get(QUICK_LOOK_ENV, "1") != "0"


def show_list(
    project: str | Path,
    as_json: bool,
    *,
    long_running: float | None = None,
    health_filter: str | None = None,
    stage: str | None = None,
    since: str | None = None,
    sort: str | None = None,
) -> int:
    """Print every session in ``project`` (filtered and sorted on request).

    The cyclic garbage collector is paused meanwhile: a listing makes thousands of small
    dicts and lists (each session's state and answer), none of them in a cycle, and the
    collector's passes over them cost a listing of 200 sessions about 5 ms and free
    nothing; reference counting frees them as before.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        filtered = bool(health_filter or stage or since)
        entries = None
        if quick_look() and not filtered and sort is None:
            from looprunner.glance.look import list_answers

            entries = list_answers(str(project))
        if entries is None:
            from looprunner.cli.answers import session_answer
            from looprunner.session import Session

            statuses = Session.list(
                project, health=health_filter, stage=stage, since=since, sort=sort
            )
            entries = [(s.session, session_answer(s)) for s in statuses]
        if as_json:
            emit_json([answer for _, answer in entries])
            return 0
        if long_running is None:
            try:
                long_running = float(os.environ.get(LONG_RUNNING_ENV, "2"))
            except ValueError:
                long_running = 2.0
        from looprunner.cli import pages  # the text: ages and tables, which --json never shows

        for line in pages.list_lines(
            entries, str(project), filtered=filtered, long_running=long_running
        ):
            echo(line)
        return 0
    finally:
        if collecting:
            gc.enable()


def show_status(project: str | Path, as_json: bool, name: str) -> int:
    """Print the health, resources and progress of session ``name``."""
    if quick_look():
        from looprunner.glance.look import status_answer

        answer = status_answer(str(project), name)
        if answer is not None and as_json:
            emit_json(answer)
            return 0
        quick = None if answer is None else quick_page(str(project), name, answer)
        if quick is not None:
            show(quick)
            return 0
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
    from looprunner.cli.pages import StatusPage

    page = StatusPage(
        answer,
        name=name,
        where=session.where() if live else "",
        run_dir=str(session.paths.run_dir),
        kept=session.kept,
        worktree=found,
        # the log's end is enough for the last few iterations, however long the log is
        events=[unstructure(event) for event in session.events(last=50)],
    )
    show(page)
    return 0


def show(page: StatusPage) -> None:
    """Print a status page as text."""
    from looprunner.cli import pages

    for line in pages.status_lines(page):
        echo(line)


def quick_page(project: str, name: str, answer: dict[str, Any]) -> StatusPage | None:
    """Return the status page of the quick look's answer (None: the models must draw it)."""
    from looprunner.cli.pages import StatusPage
    from looprunner.glance.look import page_parts

    parts = page_parts(project, name, answer)
    if parts is None:
        return None
    return StatusPage(answer, name=name, kept=False, worktree=None, **parts)
