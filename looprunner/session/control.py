"""Changing a running session from outside: kill and resume.

``kill`` ends the engine (SIGTERM, then SIGKILL after a grace), whatever its agent left
(its group, and what escaped it: :mod:`looprunner.engine.contain`), and what the
session's backend holds (its ``stop()``), then records ``killed`` through
the one writer of endings — unless the engine recorded its own ending first. ``resume``
continues a session only if, once it holds the lock, the state is still the one it
decided on; a backend session of the name whose engine has exited (tmux keeps a dead pane
under ``remain-on-exit``) holds nothing, and resume clears it rather than refusing.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from looprunner import convert
from looprunner.engine.contain import stop_leftovers
from looprunner.engine.process import kill_grace
from looprunner.errors import (
    LooprunnerError,
    SessionConflictError,
    SessionError,
    SessionNotFoundError,
)
from looprunner.models import Health, RunState, RunStatus, SessionStatus
from looprunner.protocols import (
    Backend,
    EngineFactory,
    InProcess,
    LaunchChecking,
    SessionExits,
    describe,
)
from looprunner.session import launch, observe, stopping, worktrees
from looprunner.session.ref import SessionRef
from looprunner.store import holders
from looprunner.store import lock as lockmod
from looprunner.store.endings import record_ending
from looprunner.store.events import EventLog
from looprunner.store.safe import refuse_unsafe
from looprunner.store.state import read_state

#: how long ``kill`` waits for an engine to end after SIGTERM before using SIGKILL
KILL_TIMEOUT = 15.0
#: how long ``kill`` lets the backend's session close by itself after its engine ended
BACKEND_CLOSE_WAIT = 5.0


def kill(ref: SessionRef, *, in_process: InProcess | None, grace: float | None) -> SessionStatus:
    """Stop the session: engine and agent group ended, backend cleared, state ``killed``.

    The lock is taken as :mod:`~looprunner.session.stopping` describes (an engine is
    signalled, a launch in progress waited for and its engine signalled), so ``killed``
    is recorded only when no engine can run the session on afterwards.

    Raises
    ------
    SessionError
        The session had already ended — or ended some other way (``complete``) before
        it could be stopped: it was not killed.
    """
    current = observe.status(ref)
    if current.health is Health.NOT_FOUND:
        raise SessionNotFoundError(f"no session named {ref.name!r}", session=ref.name)
    if current.finished:
        raise SessionError(
            f"session {ref.name!r} is not running (it is {current.health.value})",
            session=ref.name,
        )
    timeout = KILL_TIMEOUT if grace is None else grace + 5
    if current.health is Health.RUNNING and in_process is not None:
        in_process.request_stop(timeout)  # the engine ran in this process: stop it there
    lock = stopping.take_over(ref, timeout=timeout, verb="killed")
    try:
        try:
            state = read_state(ref.paths.state_file)
        except ValueError:
            state = None
        if state is not None and state.agent_pid:
            stop_leftovers(
                state.agent_pid,
                state.agent_start_time,
                state.boot_id,
                state.agent_mark,
                kill_grace() if grace is None else grace,
            )
        if state is not None and not state.status.finished:
            state = record_ending(
                ref.paths.state_file,
                EventLog(ref.paths.events_file, ref.name),
                state,
                RunStatus.KILLED,
                reason="killed",
                data={"by": "kill"},
            )
    finally:
        lock.release(remove=True)  # with it goes the record of a launch it overtook
    backend = ref.backend(state)
    if backend is not None:
        _clear_backend(ref, backend)
    if state is not None and state.status.finished and state.status is not RunStatus.KILLED:
        raise SessionError(
            f"session {ref.name!r} was not killed: it ended ({state.status.value}) "
            "before it could be stopped",
            session=ref.name,
        )
    # the session as kill left it: a resume that has taken the lock since is its own story
    left = holders.LockView(lockmod.LockProbe(present=False, held=False), ours=False)
    return observe.status(ref, recorded=(state, False), view=left)


def _clear_backend(ref: SessionRef, backend: Backend) -> None:
    """Let the backend's session close with its engine, then ask the backend to stop it."""
    try:
        deadline = time.monotonic() + BACKEND_CLOSE_WAIT
        while time.monotonic() < deadline:
            live = backend.sessions(ref.project)
            if not live or ref.name not in live:
                break
            time.sleep(0.05)  # the engine just exited: its session closes by itself
        backend.stop(ref.name, ref.project)  # whatever it still holds (records, a session)
    except LooprunnerError:
        return  # unreachable: status will say unknown rather than lie


def resume(
    ref: SessionRef,
    runner: Backend,
    *,
    env: Mapping[str, str] | None,
    engine_factory: EngineFactory,
    background: bool,
) -> None:
    """Continue a crashed, failed or killed session on ``runner``."""
    current = observe.status(ref)
    health = current.health
    if health is Health.NOT_FOUND:
        raise SessionNotFoundError(f"no session named {ref.name!r}", session=ref.name)
    if health is Health.RUNNING:
        raise SessionConflictError(f"session {ref.name!r} is running", session=ref.name)
    if health is Health.COMPLETE:
        raise SessionError(
            f"session {ref.name!r} already completed; nothing to resume", session=ref.name
        )
    if health is Health.ORPHANED and not _exited(ref.backend(current.state), ref):
        raise SessionConflictError(
            f"{_held(ref)} exists without an engine; "
            f"run 'looprunner kill {ref.name} --yes' or 'looprunner cleanup --fix' first",
            session=ref.name,
        )
    if health is Health.UNKNOWN:
        raise SessionError(f"cannot resume {ref.name!r}: {current.detail}", session=ref.name)
    if current.state is None and current.fault is not None:  # its run folder is gone
        raise SessionError(f"cannot resume {ref.name!r}: {current.fault.message}", session=ref.name)
    if not ref.paths.pipeline_file.exists():
        raise SessionError(
            f"session {ref.name!r} has no pipeline.yaml in {ref.paths.run_dir}; "
            "start it again with --force",
            session=ref.name,
        )
    launch.check(ref, convert.load_resolved_pipeline(ref.paths.pipeline_file))
    if isinstance(runner, LaunchChecking):
        runner.check_launch(ref.name, ref.project)  # not ours to clear: say so up front
    lock = launch.take_lock(ref, "resumed")
    try:
        decided = _ready_to_launch(ref, runner, current)
        recorded = worktrees.recorded(ref.paths.run_dir)
        if recorded is not None:  # the same worktree, made again from its branch if gone
            worktrees.reattach(ref.project, ref.name, recorded)
    except BaseException:
        lock.release(remove=True)  # with it goes the record of a launch that will not happen
        raise
    launch.spawn(
        ref,
        runner,
        lock,
        env=env,
        resumes=decided,
        engine_factory=engine_factory,
        background=background,
    )


def _ready_to_launch(ref: SessionRef, runner: Backend, current: SessionStatus) -> RunState:
    """Check, holding the lock, what resume needs; return the state it takes over."""
    # the engine would refuse these too, but only in its tmux pane: say it here
    refuse_unsafe(
        ref.paths.state_file,
        ref.paths.events_file,
        ref.paths.engine_log,
        ref.paths.pipeline_file,
    )
    decided = _unchanged_since(ref, current)
    recorded = ref.backend(decided)
    for backend in (runner, *([recorded] if recorded and recorded.name != runner.name else [])):
        live = backend.sessions(ref.project)
        if not live or ref.name not in live:
            continue
        if not _exited(backend, ref):
            raise SessionConflictError(
                f"{describe(backend, ref.name)} already exists and still runs a process; "
                f"see 'looprunner status {ref.name}'",
                session=ref.name,
            )
        # its engine is gone (a dead pane kept by remain-on-exit): it holds nothing
        backend.stop(ref.name, ref.project)
    return decided


def _exited(backend: Backend | None, ref: SessionRef) -> bool:
    """Tell whether the backend keeps the session although its engine has exited."""
    if not isinstance(backend, SessionExits):
        return False
    try:
        exited = backend.exited(ref.project)
    except LooprunnerError:
        return False
    return exited is not None and ref.name in exited


def _unchanged_since(ref: SessionRef, current: SessionStatus) -> RunState:
    """Return the state resume decided on, if it is still the state (under the lock).

    Between resume's look and its taking the lock, a ``kill`` or ``cleanup`` may have
    ended the session; resuming it then would contradict the ending they reported.
    """
    try:
        now = read_state(ref.paths.state_file)
    except ValueError:
        now = None
    seen = current.state
    compared = now
    if now is not None and seen is not None and not now.status.finished and seen.status.finished:
        # a run whose ending reached only the lock file (a full disk): status showed the
        # file's state as that ending, so compare the file's state ended the same way
        compared = now.ended(seen.status, at=seen.finished_at or now.updated_at, error=seen.error)
    if (
        now is None
        or seen is None
        or compared is None
        or holders.fingerprint(compared) != holders.fingerprint(seen)
    ):
        what = now.status.value if now is not None else "without a readable state"
        raise SessionConflictError(
            f"session {ref.name!r} was not resumed: it changed while resume was starting "
            f"(it is {what} now); see 'looprunner status {ref.name}'",
            session=ref.name,
        )
    return now


def _held(ref: SessionRef) -> str:
    backend = ref.backend(ref.read_state())
    return describe(backend, ref.name) if backend is not None else "a backend session"
