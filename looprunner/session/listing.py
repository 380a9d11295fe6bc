"""Every session of a project: names on disk and live on backends, their statuses.

A listing asks each backend once: the default one (where sessions start unless told
otherwise) and every backend a session of the project recorded, set with the options
that session's launch recorded (a backend set otherwise, another cluster, is asked too).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from looprunner.backend_settings import OptionsKey, options_key
from looprunner.errors import LooprunnerError, SessionNotFoundError
from looprunner.models import RunState, SessionStatus
from looprunner.names import (
    ProjectPaths,
    is_valid_session_name,
    session_from_tmux_name,
    split_kept_run,
)
from looprunner.session import observe
from looprunner.session.ref import Plugins, SessionRef, run_dir_problem
from looprunner.store import lock as lockmod
from looprunner.store.projection import read_projected
from looprunner.store.records import unstructure


def names_on_disk(paths: ProjectPaths) -> list[str]:
    """Return the names that have a run directory or a lock file (no backend asked)."""
    names: set[str] = set()
    if paths.runs.is_dir():
        names.update(p.name for p in paths.runs.iterdir() if is_valid_session_name(p.name))
    if paths.locks.is_dir():
        names.update(p.stem for p in paths.locks.glob("*.lock") if is_valid_session_name(p.stem))
    return sorted(names)


def recorded_backends(
    paths: ProjectPaths, names: list[str], states: Mapping[str, RunState | None] | None = None
) -> set[str]:
    """Return the backends the sessions recorded (in state, else in the lock file).

    ``states`` gives states already read, so a listing reads each state file once.
    """
    found: set[str] = set()
    for name in names:
        session = paths.session(name)
        if states is not None and name in states:
            state = states[name]
        else:
            try:
                state = read_projected(session.state_file, session.events_file)
            except ValueError:
                state = None
        backend = state.backend if state is not None else None
        if backend is None:
            meta = lockmod.read_metadata(session.lock_file)
            backend = meta.get("backend") if isinstance(meta.get("backend"), str) else None
        if backend:
            found.add(backend)
    return found


def statuses(project: str | Path, plugins: Plugins) -> list[SessionStatus]:
    """Return the status of every session in the project, by name."""
    paths = ProjectPaths.of(project)
    refs = {name: SessionRef(name, paths, plugins) for name in names_on_disk(paths)}
    recorded = {name: observe.read_recorded(ref) for name, ref in refs.items()}
    states = {name: state for name, (state, _) in recorded.items()}
    cache: observe.LiveSessions = {}
    asked: set[tuple[str, OptionsKey]] = {("", ())}
    for name, ref in refs.items():  # each backend as its sessions' launches set it
        for backend in recorded_backends(paths, [name], states):
            asked.add((backend, options_key(ref.backend_options())))
    for backend, options in sorted(asked):
        live = observe.live_sessions(
            plugins, paths.project, backend or None, cache, dict(options) or None
        )
        for name in live or ():
            if name not in refs and is_valid_session_name(name):  # a backend's own word
                refs[name] = SessionRef(name, paths, plugins)
    return [observe.status(refs[name], cache, recorded.get(name)) for name in sorted(refs)]


def not_found(name: str, project: str | Path) -> SessionNotFoundError:
    """Build the not-found error, naming the sessions (or earlier runs) that do exist."""
    kept = split_kept_run(name)
    if kept is not None:
        runs = ProjectPaths.of(project).runs
        entries = runs.iterdir() if runs.is_dir() else iter(())
        others = sorted(p.name for p in entries if (split_kept_run(p.name) or ("",))[0] == kept[0])
        hint = (
            f"; earlier runs of {kept[0]!r}: {', '.join(others)}"
            if others
            else f"; session {kept[0]!r} has no earlier runs kept (see 'looprunner runs')"
        )
        return SessionNotFoundError(f"no earlier run named {name!r}{hint}", session=name)
    existing = [s.session for s in statuses(project, Plugins())]
    hint = f"; sessions here: {', '.join(existing)}" if existing else "; there are no sessions here"
    try:
        problem = run_dir_problem(ProjectPaths.of(project).session(name).run_dir)
    except LooprunnerError:  # an invalid name has no run folder to look at
        problem = None
    if problem is not None:  # what stands in its place, rather than "sessions here: NAME"
        hint = f" ({problem})"
    short = session_from_tmux_name(name)
    if short is not None and short in existing:  # the name `tmux ls` shows was typed
        hint = f" (that is the tmux session of session {short!r}: give {short!r} instead)"
    return SessionNotFoundError(f"no session named {name!r}{hint}", session=name)


def as_dict(status: SessionStatus) -> dict[str, Any]:
    """Return the ``--json`` shape of a status: state.json's fields, health, resources."""
    data: dict[str, Any] = (
        dict(unstructure(status.state)) if status.state else {"session": status.session}
    )
    data["health"] = status.health.value
    kept = split_kept_run(status.session)
    if kept is not None:  # an earlier run: its state names the session it was a run of
        data["run"], data["kept_at"] = status.session, kept[1]
    data["resources"] = {
        "lock": status.resources.lock,
        "state": status.resources.state,
        "tmux": status.resources.tmux,
    }
    data["detail"] = status.detail
    data["branches"] = [unstructure(b) for b in status.branches]
    if status.state is None and status.fault is not None:  # a run folder deleted under it
        data["status"] = "failed"
        data["error"] = unstructure(status.fault)
    if status.lock is not None:
        data["lock_info"] = unstructure(status.lock)
    return data
