"""Finding and repairing what crashes leave behind.

That is: stale locks, orphaned tmux sessions and zombie states.

Every repair first takes the session's lock (without waiting): a lock that cannot be
taken belongs to a live engine, and that session is left alone. Holding the lock also
makes two cleanups, or a cleanup and a start, take turns. tmux sessions that looprunner
did not create (no ``@looprunner`` mark) are never touched, and a tmux session younger
than the engine's lock timeout is not called orphaned, since its engine may be starting.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Literal

import attrs

from looprunner import procinfo
from looprunner.engine.process import kill_grace, stop_leftover_group
from looprunner.engine.runner import LOCK_TIMEOUT
from looprunner.errors import LooprunnerError
from looprunner.health import CRASHED_ERROR, crash_reason
from looprunner.models import RunError, RunState, RunStatus, events
from looprunner.names import ProjectPaths, is_valid_session_name
from looprunner.plugins import Registries, call_lifecycle, make_plugin_manager
from looprunner.store import lock as lockmod
from looprunner.store.events import EventLog, utc_now
from looprunner.store.state import read_state, write_state

ProblemKind = Literal["orphaned_tmux", "zombie_state", "stale_lock"]
#: repair order: the tmux session first, then the state, then the lock file
KINDS: tuple[ProblemKind, ...] = ("orphaned_tmux", "zombie_state", "stale_lock")
#: a tmux session younger than this (seconds) may be an engine that is still starting
ORPHAN_GRACE = LOCK_TIMEOUT + 5
ORPHAN_GRACE_ENV = "LOOPRUNNER_ORPHAN_GRACE"


def orphan_grace() -> float:
    """Seconds before a tmux session without an engine counts as orphaned."""
    try:
        return float(os.environ.get(ORPHAN_GRACE_ENV, ORPHAN_GRACE))
    except ValueError:
        return ORPHAN_GRACE


@attrs.frozen
class Problem:
    """One thing cleanup found; ``action`` says what was done about it (or why not)."""

    kind: ProblemKind
    session: str
    detail: str
    fixed: bool = False
    action: str | None = None


@attrs.frozen
class CleanupReport:
    """What a cleanup found and, with ``fix``, what it repaired."""

    problems: tuple[Problem, ...]
    tmux_reachable: bool
    fix: bool = False

    @property
    def clean(self) -> bool:
        """True when nothing was found."""
        return not self.problems


def _state(path: Path) -> RunState | None:
    try:
        return read_state(path)
    except ValueError:
        return None


def _engine_alive(state: RunState) -> bool:
    return procinfo.is_alive(state.pid, state.pid_start_time, state.boot_id)


def _foreign_host(state: RunState | None) -> bool:
    return state is not None and state.host is not None and state.host != procinfo.hostname()


def scan(project: str | Path = ".", *, registries: Registries | None = None) -> CleanupReport:
    """Look at every session's three resources and report what is out of sync."""
    paths = ProjectPaths.of(project)
    registries = registries or Registries(make_plugin_manager())
    tmux = registries.backends.get("tmux")()
    created: dict[str, int] | None = tmux.created(paths.project)
    names: set[str] = set(created or ())
    if paths.runs.is_dir():
        names.update(p.name for p in paths.runs.iterdir() if is_valid_session_name(p.name))
    if paths.locks.is_dir():
        names.update(p.stem for p in paths.locks.glob("*.lock") if is_valid_session_name(p.stem))
    problems: list[Problem] = []
    now = time.time()
    for name in sorted(names):
        session = paths.session(name)
        probe = lockmod.probe(session.lock_file)
        if probe.held:
            continue  # a live engine: nothing here is ours to repair
        state = _state(session.state_file)
        if _foreign_host(state):
            continue  # its engine ran on another machine: cannot be judged from here
        alive = state is not None and not state.status.finished and _engine_alive(state)
        if created is not None and name in created and not alive:
            age = now - created[name]
            if age >= orphan_grace() or (state is not None and state.status.finished):
                problems.append(
                    Problem("orphaned_tmux", name, f"tmux session pipeline-{name} has no engine")
                )
        if state is not None and not state.status.finished and not alive:
            problems.append(
                Problem(
                    "zombie_state",
                    name,
                    f"state says {state.status.value} but {crash_reason(state)}",
                )
            )
        if probe.present:
            problems.append(Problem("stale_lock", name, f"{session.lock_file} is not held"))
    return CleanupReport(problems=tuple(problems), tmux_reachable=created is not None)


def cleanup(
    project: str | Path = ".",
    *,
    fix: bool = False,
    kinds: Iterable[ProblemKind] = KINDS,
    confirm: Callable[[Problem], bool] | None = None,
    registries: Registries | None = None,
) -> CleanupReport:
    """Find (and with ``fix``, repair) stale locks, orphaned tmux sessions, zombie states.

    Parameters
    ----------
    fix:
        Repair what was found; without it nothing is changed.
    kinds:
        Only repair these kinds of problem (all are still reported).
    confirm:
        Asked before each repair; returning False skips it.
    """
    registries = registries or Registries(make_plugin_manager())
    report = scan(project, registries=registries)
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
        repaired = _repair(problem, paths, registries)
        if repaired.fixed:
            repaired = _tell_plugins(repaired, paths, registries)
        done.append(repaired)
    return CleanupReport(problems=tuple(done), tmux_reachable=report.tmux_reachable, fix=True)


def _tell_plugins(problem: Problem, paths: ProjectPaths, registries: Registries) -> Problem:
    """Call ``on_cleanup`` hooks; a plugin's failure is noted in the problem's action."""
    from looprunner.session import Session

    failures: list[str] = []

    def report(plugin: str, hook: str, exc: BaseException) -> None:
        failures.append(f"plugin {plugin} failed in {hook}: {type(exc).__name__}: {exc}")

    session = Session(problem.session, paths.project, plugin_manager=registries.pm)
    call_lifecycle(registries.pm, "on_cleanup", report, session=session, problem=problem)
    if not failures:
        return problem
    return attrs.evolve(problem, action="; ".join([problem.action or "", *failures]).lstrip("; "))


def _repair(problem: Problem, paths: ProjectPaths, registries: Registries) -> Problem:
    session = paths.session(problem.session)
    lock = lockmod.SessionLock(session.lock_file)
    if not lock.acquire(timeout=0):
        return attrs.evolve(problem, action="left alone: an engine holds the lock now")
    try:
        state = _state(session.state_file)
        if problem.kind == "orphaned_tmux":
            if state is not None and not state.status.finished and _engine_alive(state):
                return attrs.evolve(problem, action="left alone: its engine is alive")
            try:
                killed = registries.backends.get("tmux")().stop(problem.session, paths.project)
            except LooprunnerError as exc:
                return attrs.evolve(problem, action=f"not fixed: {exc.message}")
            action = "killed the tmux session" if killed else "already gone"
            return attrs.evolve(problem, fixed=True, action=action)
        if problem.kind == "zombie_state":
            if state is None or state.status.finished or _engine_alive(state):
                return attrs.evolve(problem, fixed=True, action="already resolved")
            stop_leftover_group(
                state.agent_pid, state.agent_start_time, state.boot_id, kill_grace()
            )
            _mark_crashed(session.state_file, session.events_file, state)
            return attrs.evolve(
                problem,
                fixed=True,
                action=f"marked crashed; resume with 'looprunner resume {problem.session}'",
            )
        return attrs.evolve(problem, fixed=True, action="removed the lock file")
    finally:
        lock.release(remove=True)


def _mark_crashed(state_file: Path, events_file: Path, state: RunState) -> None:
    message = f"{crash_reason(state)} (found by cleanup)"
    now = utc_now()
    write_state(
        state_file,
        attrs.evolve(
            state,
            status=RunStatus.FAILED,
            finished_at=now,
            updated_at=now,
            iteration_started=None,
            agent_pid=None,
            agent_start_time=None,
            error=RunError(CRASHED_ERROR, message, state.iteration or None),
        ),
    )
    EventLog(events_file, state.session).append(
        events.SESSION_FAILED,
        stage=state.current.id,
        iteration=state.iteration or None,
        data={"type": CRASHED_ERROR, "message": message},
    )
