"""Finding and repairing what crashes leave behind.

That is: stale locks, backend sessions without an engine (``orphaned_tmux``, named after
the default backend's tmux sessions), zombie states, and symlinks or special files where a
session's files should be (``unsafe_file``: the fix removes the entry itself, never a
link's target).

Every repair first takes the session's lock (without waiting): a lock that cannot be
taken belongs to a live engine, and that session is left alone, as is one whose lock
file holds the record of a launch whose launcher still waits for its engine. Holding the lock also
makes two cleanups, or a cleanup and a start, take turns. Each backend is asked about
its own sessions only (tmux touches only sessions it marked as this project's), and a
backend session younger than the engine's lock timeout is not called orphaned, since its
engine may be starting (for a backend that can tell ages, :class:`SessionAges`) —
unless the backend says the session's engine has exited (:class:`SessionExits`): then
one pass repairs the backend session, the state and the lock together. An
``unsafe_file`` is removed without the lock: the lock file may be the unsafe one.
"""

from __future__ import annotations

import json
import stat
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import attrs

from looprunner import handoff, procinfo
from looprunner.engine.contain import stop_leftovers
from looprunner.engine.process import kill_grace
from looprunner.errors import LooprunnerError, UnsafeFileError
from looprunner.health import CRASHED_ERROR, crash_reason
from looprunner.models import (
    KINDS,
    CleanupReport,
    Problem,
    ProblemKind,
    RunError,
    RunState,
    RunStatus,
)
from looprunner.names import ProjectPaths, SessionPaths
from looprunner.plugins.calls import call_lifecycle
from looprunner.plugins.registry import Registries
from looprunner.protocols import Backend, SessionAges, SessionExits, describe
from looprunner.session import backend_options
from looprunner.session.facade import Session
from looprunner.session.launch import orphan_grace
from looprunner.session.listing import names_on_disk, recorded_backends
from looprunner.session.ref import Plugins
from looprunner.store import holders
from looprunner.store import lock as lockmod
from looprunner.store.diskfault import Marker, recorded_fault
from looprunner.store.endings import (
    ENDING_EVENTS,
    log_missing_ending,
    record_ending,
    unlogged_ending,
)
from looprunner.store.events import EventLog
from looprunner.store.projection import read_projected
from looprunner.store.safe import unsafe_reason

__all__ = ["KINDS", "CleanupReport", "Problem", "ProblemKind", "cleanup", "scan"]


def _state(session: SessionPaths) -> RunState | None:
    try:
        return read_projected(session.state_file, session.events_file)
    except ValueError:
        return None


def _engine_alive(state: RunState) -> bool:
    return procinfo.is_alive(state.pid, state.pid_start_time, state.boot_id)


def _foreign_host(state: RunState | None) -> bool:
    return state is not None and state.host is not None and state.host != procinfo.hostname()


def _backends(paths: ProjectPaths, plugins: Plugins, names: list[str]) -> dict[str, Backend]:
    """Return the default backend and every backend a session recorded, by a label each.

    A backend set with other options (another cluster) is asked on its own: the label is
    its name, plus its options when a session recorded some.
    """
    default = plugins.default_backend()
    found: dict[str, Backend] = {default.name: default}
    for name in names:
        for backend_name in recorded_backends(paths, [name]):
            options = backend_options.recorded(paths.session(name).run_dir)
            label = backend_name + (json.dumps(sorted(options.items())) if options else "")
            if label in found:
                continue
            try:
                found[label] = plugins.backend(backend_name, options)
            except LooprunnerError:
                continue  # not installed any more: nothing of it can be asked or repaired
    return found


def _exited(backend: Backend, project: Path) -> set[str]:
    """Return the backend's sessions whose engine has exited (empty if it cannot tell)."""
    if not isinstance(backend, SessionExits):
        return set()
    try:
        return backend.exited(project) or set()
    except LooprunnerError:
        return set()


def _live(backend: Backend, project: Path) -> dict[str, float | None] | None:
    """Each live session of ``backend`` with its creation time (None if it cannot tell)."""
    try:
        if isinstance(backend, SessionAges):
            created = backend.created(project)
            return None if created is None else dict(created)
        live = backend.sessions(project)
    except LooprunnerError:
        return None
    return None if live is None else dict.fromkeys(live)


def scan(project: str | Path = ".", *, plugins: Plugins | None = None) -> CleanupReport:
    """Look at every session's three resources and report what is out of sync."""
    paths = ProjectPaths.of(project)
    plugins = plugins or Plugins()
    on_disk = names_on_disk(paths)
    names: set[str] = set(on_disk)
    live_by_backend: dict[str, dict[str, float | None] | None] = {}
    exited_by_backend: dict[str, set[str]] = {}
    backends = _backends(paths, plugins, on_disk)
    for label, backend in backends.items():
        live = live_by_backend[label] = _live(backend, paths.project)
        names.update(live or ())
        if live:
            exited_by_backend[label] = _exited(backend, paths.project)
    reachable = all(live is not None for live in live_by_backend.values())
    problems: list[Problem] = []
    now = time.time()
    for name in sorted(names):
        session = paths.session(name)
        unsafe = _unsafe_files(session)
        problems.extend(unsafe)
        view = holders.look(session.lock_file)
        probe = view.probe
        if view.ours:
            continue  # a live engine (or one starting): nothing here is ours to repair
        state = _state(session)
        if _foreign_host(state):
            continue  # its engine ran on another machine: cannot be judged from here
        problems.extend(_stale_handoff(session))
        alive = state is not None and not state.status.finished and _engine_alive(state)
        for label, live in live_by_backend.items():
            if live is None or name not in live or alive:
                continue
            created = live[name]
            old = created is None or now - created >= orphan_grace()
            # an exited session (a dead pane kept by remain-on-exit) has no engine to wait for
            exited = name in exited_by_backend.get(label, set())
            if old or exited or (state is not None and state.status.finished):
                problems.append(
                    Problem(
                        "orphaned_tmux",
                        name,
                        f"{describe(backends[label], name)} has no engine",
                        backend=backends[label].name,
                    )
                )
        fault = recorded_fault(probe.metadata, state)
        if state is not None and not state.status.finished and not alive:
            why = (
                f"its engine failed: {fault.error.type}: {fault.error.message} (recorded "
                "in its lock file)"
                if fault is not None
                else crash_reason(state)
            )
            problems.append(
                Problem("zombie_state", name, f"state says {state.status.value} but {why}")
            )
        if unlogged_ending(state, EventLog(session.events_file, name)):
            assert state is not None
            kind = ENDING_EVENTS[state.status]
            problems.append(
                Problem(
                    "unlogged_ending",
                    name,
                    f"state says {state.status.value} but the event log lacks its {kind}",
                )
            )
        if probe.present and not any(p.path == str(session.lock_file) for p in unsafe):
            says = (
                f"; it records: {fault.error.type}: {fault.error.message}"
                if fault is not None and state is None
                else ""
            )
            detail = (
                view.foreign.sentence(session.lock_file)
                if view.foreign
                else f"{session.lock_file} is not held{says}"
            )
            problems.append(Problem("stale_lock", name, detail))
    return CleanupReport(problems=tuple(problems), tmux_reachable=reachable)


def cleanup(
    project: str | Path = ".",
    *,
    fix: bool = False,
    kinds: Iterable[ProblemKind] = KINDS,
    confirm: Callable[[Problem], bool] | None = None,
    registries: Registries | None = None,
) -> CleanupReport:
    """Find (and with ``fix``, repair) stale locks, orphaned backend sessions, zombie states.

    Parameters
    ----------
    fix:
        Repair what was found; without it nothing is changed.
    kinds:
        Only repair these kinds of problem (all are still reported).
    confirm:
        Asked before each repair; returning False skips it.
    registries:
        The plugins to use (their backends are asked, their ``on_cleanup`` hooks told);
        by default the installed ones.
    """
    plugins = Plugins.of(registries) if registries is not None else Plugins()
    report = scan(project, plugins=plugins)
    if not fix:
        return report
    paths = ProjectPaths.of(project)
    wanted = set(kinds)
    done: list[Problem] = []
    ordered = sorted(report.problems, key=lambda p: (p.session, KINDS.index(p.kind)))
    for problem in ordered:
        if problem.kind not in wanted:
            done.append(attrs.evolve(problem, action="skipped (not selected)"))
            continue
        if confirm is not None and not confirm(problem):
            done.append(attrs.evolve(problem, action="skipped"))
            continue
        repaired = _repair(problem, paths, plugins)
        if repaired.fixed:
            repaired = _tell_plugins(repaired, paths, plugins)
        done.append(repaired)
    return CleanupReport(problems=tuple(done), tmux_reachable=report.tmux_reachable, fix=True)


def _tell_plugins(problem: Problem, paths: ProjectPaths, plugins: Plugins) -> Problem:
    """Call ``on_cleanup`` hooks; a plugin's failure is noted in the problem's action."""
    failures: list[str] = []

    def report(plugin: str, hook: str, exc: BaseException) -> None:
        failures.append(f"plugin {plugin} failed in {hook}: {type(exc).__name__}: {exc}")

    session = Session.with_registries(problem.session, paths.project, plugins.registries)
    call_lifecycle(plugins.pm, "on_cleanup", report, session=session, problem=problem)
    if not failures:
        return problem
    return attrs.evolve(problem, action="; ".join([problem.action or "", *failures]).lstrip("; "))


def _stale_handoff(session: SessionPaths) -> list[Problem]:
    """Report the environment file a launch left when it died before its engine took it.

    The launcher writes it (mode 0600) for the engine, which removes it first thing; a
    launcher killed in between leaves the environment, credentials included, on disk
    until the session's next launch replaces it.
    """
    path = session.run_dir / handoff.FILE_NAME
    try:
        if not stat.S_ISREG(path.lstat().st_mode):
            return []  # a link or anything else there is no launch's: never opened
    except OSError:
        return []
    detail = (
        f"{path} holds the environment of a launch whose engine never took it "
        "(credentials included, readable only by you)"
    )
    return [Problem("stale_handoff", session.name, detail, path=str(path))]


def _remove_handoff(problem: Problem, session: SessionPaths) -> Problem:
    """Remove a dead launch's environment file (the lock is held: no launch is under way)."""
    path = session.run_dir / handoff.FILE_NAME
    try:
        if not stat.S_ISREG(path.lstat().st_mode):
            return attrs.evolve(problem, action="left alone: not a regular file now")
        path.unlink()
    except FileNotFoundError:
        return attrs.evolve(problem, fixed=True, action="already resolved")
    except OSError as exc:
        return attrs.evolve(problem, action=f"not fixed: {exc.strerror}")
    return attrs.evolve(problem, fixed=True, action="removed the environment file")


def _unsafe_files(session: SessionPaths) -> list[Problem]:
    """Report each of the session's files that is a symlink or a special file."""
    found = []
    for path in (
        session.lock_file,
        session.state_file,
        session.events_file,
        session.engine_log,
        session.pipeline_file,
        session.progress_file,
    ):
        reason = unsafe_reason(path)
        if reason is not None:
            detail = f"{path} is {reason}, not a regular file: looprunner will not open it"
            found.append(Problem("unsafe_file", session.name, detail, path=str(path)))
    return found


def _remove_unsafe(problem: Problem) -> Problem:
    """Remove the link (or FIFO, socket, device node) itself; never follow it."""
    path = Path(problem.path or "")
    reason = unsafe_reason(path)
    if reason is None:
        return attrs.evolve(problem, fixed=True, action="already resolved")
    if reason == "a directory":
        return attrs.evolve(problem, action="left alone: a directory is not removed")
    try:
        path.unlink()  # unlink removes the entry: a symlink's target is untouched
    except OSError as exc:
        return attrs.evolve(problem, action=f"not fixed: {exc.strerror}")
    return attrs.evolve(problem, fixed=True, action=f"removed {reason[2:]}")


def _repair(problem: Problem, paths: ProjectPaths, plugins: Plugins) -> Problem:
    if problem.kind == "unsafe_file":
        return _remove_unsafe(problem)
    session = paths.session(problem.session)
    lock = lockmod.SessionLock(session.lock_file)
    try:
        taken = lock.acquire(timeout=0)
    except UnsafeFileError as exc:
        return attrs.evolve(problem, action=f"not fixed: {exc.message}")
    if not taken:
        foreign = holders.look(session.lock_file).foreign
        if foreign is not None:
            return attrs.evolve(problem, action=f"not fixed: {foreign.sentence(session.lock_file)}")
        return attrs.evolve(problem, action="left alone: an engine holds the lock now")
    if holders.pending_launch(lock.metadata()) is not None:
        lock.release()  # the record stays: the engine on its way must find it
        return attrs.evolve(problem, action="left alone: its engine is starting")
    try:
        state = _state(session)
        if problem.kind == "orphaned_tmux":
            if state is not None and not state.status.finished and _engine_alive(state):
                return attrs.evolve(problem, action="left alone: its engine is alive")
            try:
                backend = plugins.backend(
                    problem.backend or plugins.default_backend().name,
                    backend_options.recorded(session.run_dir),
                )
                stopped = backend.stop(problem.session, paths.project)
            except LooprunnerError as exc:
                return attrs.evolve(problem, action=f"not fixed: {exc.message}")
            action = (
                f"killed the {describe(backend, problem.session)}" if stopped else "already gone"
            )
            return attrs.evolve(problem, fixed=True, action=action)
        if problem.kind == "zombie_state":
            if state is None or state.status.finished or _engine_alive(state):
                return attrs.evolve(problem, fixed=True, action="already resolved")
            ended_count = stop_leftovers(
                state.agent_pid,
                state.agent_start_time,
                state.boot_id,
                state.agent_mark,
                kill_grace(),
            )
            fault = recorded_fault(lockmod.read_metadata(session.lock_file), state)
            marked = _mark_ended(session.state_file, session.events_file, state, fault)
            ended = f"stopped {ended_count} process(es) its agent left; " if ended_count else ""
            return attrs.evolve(
                problem,
                fixed=True,
                action=f"marked {marked}; {ended}resume with 'looprunner resume {problem.session}'",
            )
        if problem.kind == "stale_handoff":
            return _remove_handoff(problem, session)
        if problem.kind == "unlogged_ending":
            log = EventLog(session.events_file, problem.session)
            if state is None or not unlogged_ending(state, log):
                return attrs.evolve(problem, fixed=True, action="already resolved")
            log_missing_ending(log, state)
            return attrs.evolve(
                problem, fixed=True, action=f"appended {ENDING_EVENTS[state.status]}"
            )
        return attrs.evolve(problem, fixed=True, action="removed the lock file")
    finally:
        lock.release(remove=True)


def _mark_ended(state_file: Path, events_file: Path, state: RunState, fault: Marker | None) -> str:
    """Record the ending of a run whose engine is gone; return what it was marked.

    A fault its engine could record only in the lock file (a full or read-only disk)
    is written to state now, as the engine would have; otherwise the run ``crashed``.
    """
    if fault is not None:
        error = fault.error
        marked = f"failed ({error.type}, as its engine recorded in the lock file)"
    else:
        message = f"{crash_reason(state)} (found by cleanup)"
        error = RunError(CRASHED_ERROR, message, state.iteration or None)
        marked = "crashed"
    record_ending(
        state_file, EventLog(events_file, state.session), state, RunStatus.FAILED, error=error
    )
    return marked
