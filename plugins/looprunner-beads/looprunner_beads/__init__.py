"""beads (``bd``) for looprunner, the way loop-agents used it.

A session's work queue is the beads labelled ``pipeline/SESSION``. This plugin adds:

- the termination type ``beads``: stop when ``bd ready --label pipeline/SESSION`` lists
  nothing (``queue_empty``), and the count of what is left in ``looprunner status``;
- the stage ``work``: a Claude Code prompt that claims, implements, tests, commits and
  closes one bead per iteration;
- an ``on_cleanup`` hook: when ``looprunner cleanup --fix`` marks a crashed session, the
  beads it had claimed (``in_progress``) are put back to ``open``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from looprunner.plugin import Health, hookimpl

from looprunner_beads import bd
from looprunner_beads._version import __version__
from looprunner_beads.termination import BeadsTermination

if TYPE_CHECKING:
    from looprunner.plugin import Problem
    from looprunner.plugin import SessionView as Session

__all__ = ["BeadsTermination", "__version__"]


@hookimpl
def register_terminations(registry: Any) -> None:
    """Register the ``beads`` termination."""
    registry.add(BeadsTermination)


@hookimpl
def register_stage_folders(registry: Any) -> None:
    """Register the shipped stages (``work``)."""
    registry.add(Path(__file__).parent / "stages")


def _termination_types(data: object) -> Iterator[str]:
    """Yield every ``termination.type`` in a resolved pipeline document, however nested."""
    if isinstance(data, dict):
        termination = data.get("termination")
        if isinstance(termination, dict) and isinstance(termination.get("type"), str):
            yield termination["type"]
        for value in data.values():
            yield from _termination_types(value)
    elif isinstance(data, list):
        for value in data:
            yield from _termination_types(value)


def uses_beads(session: Session) -> bool:
    """Tell whether the session's pipeline has a stage with a ``beads`` termination.

    Read from the run directory's ``pipeline.yaml`` (the resolved pipeline, JSON); a
    session whose pipeline cannot be read is not taken to use beads.
    """
    try:
        data = json.loads(session.paths.pipeline_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return BeadsTermination.name in set(_termination_types(data))


@hookimpl
def on_cleanup(session: Session, problem: Problem) -> None:
    """Put a crashed session's claimed beads back in the queue.

    When ``cleanup --fix`` has marked the session crashed (``zombie_state``), every bead
    labelled ``pipeline/SESSION`` that is still ``in_progress`` was claimed by an agent
    that will never finish it: ``bd update ID --status open`` makes it ready again, so a
    ``resume`` (or another session) picks it up. Nothing is done unless the session is
    now recorded crashed with no engine holding its lock, and sessions that do not use a
    ``beads`` termination are left alone.
    """
    if problem.kind != "zombie_state" or not problem.fixed or not uses_beads(session):
        return
    if session.status().health is not Health.CRASHED:
        return  # resolved some other way (finished, or an engine runs it again)
    project = session.paths.project
    failed: list[str] = []
    for issue in bd.in_progress(session.name, project):
        try:
            bd.reopen(issue["id"], project)
        except bd.BeadsError as exc:  # reopen the others; cleanup reports the raise
            failed.append(f"{issue['id']} ({exc.message})")
    if failed:
        raise bd.BeadsError(f"could not reopen {', '.join(failed)}")
