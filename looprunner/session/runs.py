"""Earlier runs kept aside by ``start --force``: finding them and describing them.

``start --force`` never deletes a run: it renames the session's run folder to
``NAME.YYYYMMDDTHHMMSS`` beside it. Those folders are listed here from the disk alone
(an earlier run has no lock or backend session of its own), each with what its
``state.json`` recorded.
"""

from __future__ import annotations

from typing import Any

from looprunner.models import RunInfo, SessionStatus
from looprunner.names import ProjectPaths, split_kept_run, validate_session_name
from looprunner.session import observe
from looprunner.session.ref import Plugins, SessionRef


def kept_runs(project: ProjectPaths, plugins: Plugins, session: str | None = None) -> list[RunInfo]:
    """Return every earlier run of the project (or of ``session``), oldest first per session."""
    if session is not None:
        validate_session_name(session)
    try:
        entries = list(project.runs.iterdir())
    except OSError:
        return []
    found = []
    for entry in entries:
        split = split_kept_run(entry.name)
        if split is None or (session is not None and split[0] != session):
            continue
        ref = SessionRef(entry.name, project.project, plugins)
        found.append(info(ref, observe.kept_status(ref)))
    return sorted(found, key=lambda run: (run.session, run.kept_at or "", run.name))


def info(ref: SessionRef, status: SessionStatus) -> RunInfo:
    """Describe the run ``ref`` names (a session's current run, or an earlier one)."""
    kept = ref.kept
    return RunInfo(
        name=ref.name,
        session=kept.session if kept is not None else ref.name,
        health=status.health,
        run_dir=ref.paths.run_dir,
        state=status.state,
        kept_at=kept.kept_at if kept is not None else None,
        detail=status.detail,
    )


def as_dict(run: RunInfo) -> dict[str, Any]:
    """Return the ``--json`` shape of a run (``runs``, and what ``rm``/``prune`` removed)."""
    state = run.state
    current = state.current if state is not None and state.stages else None
    return {
        "name": run.name,
        "session": run.session,
        "kept_at": run.kept_at,
        "health": run.health.value,
        "status": state.status.value if state is not None else None,
        "type": state.type if state is not None else None,
        "pipeline": state.pipeline if state is not None else None,
        "stage": current.id if current is not None else None,
        "iteration": state.iteration if state is not None else None,
        "max_iterations": current.max_iterations if current is not None else None,
        "started_at": state.started_at if state is not None else None,
        "finished_at": state.finished_at if state is not None else None,
        "cost_usd": state.cost_usd if state is not None else None,
        "run_dir": str(run.run_dir),
        "detail": run.detail,
    }
