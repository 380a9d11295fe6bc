"""Removing finished runs: ``rm`` names them, ``prune`` picks them by age and health.

A live session is never removed. A session's run is removed only once it finished
(complete, failed or killed) and while this command holds its lock, so no engine can
start or run under it; the lock file goes last, with the lock released. An earlier run
kept aside has no engine by construction and is removed whatever its health. ``rm``
checks every name before it removes anything: one refusal, and nothing changes.
A run folder that is a symbolic link loses the link, never its target.
"""

from __future__ import annotations

import os
import shutil
import stat
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path

from looprunner.errors import SessionConflictError, SessionError, UnsafeFileError, UsageError
from looprunner.models import Health, RemovalReport, RunInfo
from looprunner.names import ProjectPaths, validate_run_name
from looprunner.plugins.registry import Registries
from looprunner.session import listing, observe, runs
from looprunner.session.ref import Plugins, SessionRef
from looprunner.store import holders
from looprunner.store import lock as lockmod
from looprunner.store.projection import read_projected
from looprunner.views.clock import duration_seconds

#: the healths ``prune --health`` accepts (a session itself only when finished)
PRUNE_HEALTHS = ("complete", "failed", "killed", "crashed")
_FINISHED = (Health.COMPLETE, Health.FAILED, Health.KILLED)

Confirm = Callable[[tuple[RunInfo, ...]], bool]


def parse_duration(value: str | float | timedelta | None) -> float | None:
    """Return a duration in seconds: ``30m``, ``12h``, ``7d``, ``1h30m`` (or a number of seconds).

    Raises
    ------
    UsageError
        For anything else, saying what a duration looks like.
    """
    if value is None:
        return None
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    seconds = duration_seconds(value) if isinstance(value, str) else None
    if seconds is None:
        raise UsageError(
            f"invalid duration {value!r}: use a number and a unit, s, m, h, d or w "
            "(e.g. 30m, 12h, 7d, 1h30m)"
        )
    return seconds


def parse_healths(value: str | Iterable[str] | None) -> frozenset[str]:
    """Return the healths asked for (``failed,killed``); every prunable one when None."""
    if value is None:
        return frozenset(PRUNE_HEALTHS)
    items = value.split(",") if isinstance(value, str) else list(value)
    wanted = frozenset(item.strip() for item in items if item.strip())
    unknown = sorted(wanted - set(PRUNE_HEALTHS))
    if unknown or not wanted:
        raise UsageError(
            f"invalid health {','.join(unknown) or value!r}: choose from "
            f"{', '.join(PRUNE_HEALTHS)} (comma-separated)"
        )
    return wanted


def why_not(name: str, health: Health, state_finished: bool, detail: str | None) -> str | None:
    """Say why a session's current run may not be removed now; None when it may."""
    if health in _FINISHED or (health is Health.CRASHED and state_finished):
        return None  # finished (a crash cleanup recorded counts: its engine is gone)
    if health is Health.RUNNING:
        return f"it is running; stop it first with 'looprunner kill {name}'"
    if health is Health.CRASHED:
        return (
            f"it crashed and can be resumed ('looprunner resume {name}'); "
            f"'looprunner kill {name}' records its end, then it can be removed"
        )
    if health is Health.ORPHANED:
        return "a backend session of it runs without an engine; run 'looprunner cleanup --fix'"
    return f"its health is {health.value}" + (f" ({detail})" if detail else "")


def plan(project: ProjectPaths, plugins: Plugins, names: Sequence[str]) -> list[RunInfo]:
    """Return the runs ``names`` name, or raise for the first that cannot be removed.

    Raises
    ------
    InvalidSessionNameError
        A name that is neither a session's nor an earlier run's (exit 2).
    SessionNotFoundError
        No such session or earlier run (exit 4).
    SessionConflictError
        A session that is live or not finished (exit 3), named with what to do.
    """
    for name in names:
        validate_run_name(name)
    found = []
    for name in dict.fromkeys(names):
        ref = SessionRef(name, project.project, plugins)
        status = observe.status(ref)
        if status.health is Health.NOT_FOUND:
            raise listing.not_found(name, project.project)
        finished = status.state is not None and status.state.status.finished
        reason = None if ref.kept else why_not(name, status.health, finished, status.detail)
        if reason is not None:
            raise SessionConflictError(f"cannot remove session {name!r}: {reason}", session=name)
        found.append(runs.info(ref, status))
    return found


def remove(
    project: str | Path, names: Sequence[str], *, plugins: Plugins, confirm: Confirm | None
) -> RemovalReport:
    """Remove the named runs, all or none: each is checked, and its lock taken, first."""
    paths = ProjectPaths.of(project)
    planned = plan(paths, plugins, names)
    if confirm is not None and not confirm(tuple(planned)):
        return RemovalReport(removed=(), left=tuple((run, "not confirmed") for run in planned))
    locks: list[tuple[lockmod.SessionLock, bool]] = []
    try:
        for run in planned:
            if not run.kept:
                locks.append(_take(paths, run))  # noqa: PERF401 (partial list released on refusal)
    except BaseException:
        for lock, existed in locks:
            lock.release(remove=not existed)  # as it was: nothing changed on a refusal
        raise
    trees: list[str] = []
    try:
        for run in planned:
            _remove_run(paths, run, trees)
    finally:
        for lock, _ in locks:
            lock.release(remove=True)
    return RemovalReport(removed=tuple(planned), worktrees=tuple(trees))


def prune(
    project: str | Path = ".",
    *,
    older_than: str | float | timedelta | None = None,
    health: str | Iterable[str] | None = None,
    session: str | None = None,
    keep: int = 0,
    where: Callable[[RunInfo], bool] | None = None,
    dry_run: bool = False,
    confirm: Confirm | None = None,
    registries: Registries | None = None,
) -> RemovalReport:
    """Remove finished sessions and earlier runs that match; never a live session.

    Parameters
    ----------
    older_than:
        Only runs that ended (or, unfinished, were last updated) longer ago than this:
        seconds, a ``timedelta``, or ``30m``, ``12h``, ``7d``, ``2w``.
    health:
        Only runs of these healths (``"failed,killed"``, or a list); by default complete,
        failed, killed and crashed. A session itself is removed only once finished; an
        earlier run kept aside, whatever its health.
    session:
        Only this session's runs (its current one and its earlier ones).
    keep:
        Leave the ``keep`` most recent matching earlier runs of each session.
    where:
        Only runs for which this returns True.
    dry_run:
        Remove nothing; the report lists what would be removed.
    confirm:
        Asked once with every run about to be removed; returning False removes none.
    registries:
        The plugins to use (their backends are asked what is live); by default the
        installed ones.
    """
    plugins = Plugins.of(registries) if registries is not None else Plugins()
    paths = ProjectPaths.of(project)
    age = parse_duration(older_than)
    healths = parse_healths(health)
    if keep < 0:
        raise UsageError(f"keep must be 0 or more, got {keep}")
    candidates = runs.kept_runs(paths, plugins, session)
    for status in listing.statuses(paths.project, plugins):
        finished = status.state is not None and status.state.status.finished
        if session not in (None, status.session):
            continue
        if why_not(status.session, status.health, finished, status.detail) is None:
            ref = SessionRef(status.session, paths.project, plugins)
            candidates.append(runs.info(ref, status))
    now = time.time()
    matching = [
        run
        for run in candidates
        if run.health.value in healths
        and (age is None or now - _ended(run) > age)
        and (where is None or where(run))
    ]
    if keep:
        newest: dict[str, list[RunInfo]] = {}
        for run in sorted(matching, key=lambda r: r.kept_at or "", reverse=True):
            if run.kept:
                newest.setdefault(run.session, []).append(run)
        spared = {run.name for group in newest.values() for run in group[:keep]}
        matching = [run for run in matching if run.name not in spared]
    matching.sort(key=lambda r: (r.session, r.kept is False, r.kept_at or "", r.name))
    if dry_run or not matching:
        return RemovalReport(removed=tuple(matching), dry_run=dry_run)
    if confirm is not None and not confirm(tuple(matching)):
        return RemovalReport(removed=(), left=tuple((run, "not confirmed") for run in matching))
    removed: list[RunInfo] = []
    left: list[tuple[RunInfo, str]] = []
    trees: list[str] = []
    for run in matching:
        try:
            lock = None if run.kept else _take(paths, run)[0]
        except SessionConflictError as exc:
            left.append((run, exc.message))  # it came to life since: left alone
            continue
        try:
            _remove_run(paths, run, trees)
        finally:
            if lock is not None:
                lock.release(remove=True)
        removed.append(run)
    return RemovalReport(removed=tuple(removed), left=tuple(left), worktrees=tuple(trees))


def _ended(run: RunInfo) -> float:
    """When the run ended (seconds since the epoch); its folder's time if unrecorded."""
    when = run.ended_at
    if when:
        try:
            return datetime.fromisoformat(when.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    try:
        return os.lstat(run.run_dir).st_mtime
    except OSError:
        return time.time()


def _take(paths: ProjectPaths, run: RunInfo) -> tuple[lockmod.SessionLock, bool]:
    """Hold a session's lock for its removal; refuse if anything runs or starts under it.

    Returns the lock and whether its file existed before (a refusal leaves it as found).
    """
    session = paths.session(run.name)
    existed = os.path.lexists(session.lock_file)
    lock = lockmod.SessionLock(session.lock_file)
    try:
        taken = lock.acquire(timeout=0)
    except UnsafeFileError as exc:
        raise SessionConflictError(
            f"cannot remove session {run.name!r}: {exc.message}", session=run.name
        ) from exc
    if not taken:
        foreign = holders.look(session.lock_file).foreign
        why = foreign.sentence(session.lock_file) if foreign else "it is running now"
        raise SessionConflictError(f"cannot remove session {run.name!r}: {why}", session=run.name)
    try:
        state = read_projected(session.state_file, session.events_file)
    except ValueError:
        state = None
    changed = state is not None and (
        not state.status.finished or (run.state is not None and state.pid != run.state.pid)
    )
    if holders.pending_launch(lock.metadata()) is not None or changed:
        lock.release(remove=not existed)
        raise SessionConflictError(
            f"cannot remove session {run.name!r}: it was started again meanwhile",
            session=run.name,
        )
    return lock, existed


def _remove_run(paths: ProjectPaths, run: RunInfo, trees: list[str]) -> None:
    """Remove a run: its git worktree first (kept if it holds work), then its folder.

    The worktree goes first because the run folder says where it is.
    """
    from looprunner.session import worktrees

    tree = worktrees.remove(paths.project, run.run_dir)
    if tree is not None:
        trees.append(tree.sentence())
    _remove_folder(run.run_dir)


def _remove_folder(path: Path) -> None:
    """Remove a run folder; a symbolic link (or a file) in its place is unlinked itself."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    try:
        if stat.S_ISDIR(info.st_mode):
            shutil.rmtree(path)
        else:
            path.unlink()
    except OSError as exc:
        raise SessionError(f"cannot remove {path}: {exc.strerror or exc}") from exc


__all__ = ["PRUNE_HEALTHS", "parse_duration", "parse_healths", "plan", "prune", "remove"]
