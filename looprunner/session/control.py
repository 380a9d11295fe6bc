"""Changing a running session from outside: kill and resume.

``kill`` ends the engine (SIGTERM, then SIGKILL after a grace), whatever its agent left,
and what the session's backend holds (its ``stop()``), then records ``killed`` through
the one writer of endings — unless the engine recorded its own ending first.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Mapping

from looprunner import convert, procinfo
from looprunner.engine.process import kill_grace, stop_leftover_group
from looprunner.errors import (
    LooprunnerError,
    SessionConflictError,
    SessionError,
    SessionNotFoundError,
    UnsafeFileError,
)
from looprunner.models import Health, RunStatus, SessionStatus
from looprunner.protocols import Backend, EngineFactory, InProcess, describe
from looprunner.session import launch, observe
from looprunner.session.ref import SessionRef
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
    """Stop the session: engine and agent group ended, backend cleared, state ``killed``."""
    current = observe.status(ref)
    if current.health is Health.NOT_FOUND:
        raise SessionNotFoundError(f"no session named {ref.name!r}", session=ref.name)
    if current.finished:
        raise SessionError(
            f"session {ref.name!r} is not running (it is {current.health.value})",
            session=ref.name,
        )
    timeout = KILL_TIMEOUT if grace is None else grace + 5
    if current.health is Health.RUNNING:
        if in_process is not None and in_process.request_stop(timeout):
            pass  # the engine ran in this process: stopped through its backend
        else:
            _signal_engine(ref, current, timeout=timeout)
    state = ref.read_state()
    if state is not None and state.agent_pid:
        stop_leftover_group(
            state.agent_pid,
            state.agent_start_time,
            state.boot_id,
            kill_grace() if grace is None else grace,
        )
    backend = ref.backend(state)
    if backend is not None:
        _clear_backend(ref, backend)
    _record_killed(ref)
    return observe.status(ref)


def _signal_engine(ref: SessionRef, current: SessionStatus, *, timeout: float) -> None:
    """SIGTERM the engine holding the lock; SIGKILL it if it outlives ``timeout``."""
    meta = lockmod.read_metadata(ref.paths.lock_file)
    state = current.state
    if isinstance(meta.get("pid"), int):
        pid, started, boot = meta["pid"], meta.get("pid_start_time"), meta.get("boot_id")
    elif state is not None and state.pid:  # the lock file was deleted from under it
        pid, started, boot = state.pid, state.pid_start_time, state.boot_id
    else:
        return
    if not procinfo.is_alive(pid, started, boot):
        return
    if pid == os.getpid():
        raise SessionError(
            f"session {ref.name!r} runs in this process; "
            "stop it through the Session that started it",
            session=ref.name,
        )
    try:
        os.kill(pid, signal.SIGTERM)
    except PermissionError:
        user = procinfo.owner(pid) or "another user"
        raise SessionError(
            f"cannot stop session {ref.name!r}: its engine (pid {pid}) belongs to another "
            f"user ({user}); run 'looprunner kill {ref.name}' as that user or as root",
            session=ref.name,
        ) from None
    with contextlib.suppress(OSError):  # a stopped engine acts on SIGTERM once continued
        os.kill(pid, signal.SIGCONT)
    deadline = time.monotonic() + timeout
    while procinfo.is_alive(pid, started, boot) and time.monotonic() < deadline:
        time.sleep(0.05)
    if procinfo.is_alive(pid, started, boot):
        os.kill(pid, signal.SIGKILL)
        while procinfo.is_alive(pid, started, boot) and time.monotonic() < deadline + 5:
            time.sleep(0.05)


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


def _record_killed(ref: SessionRef) -> None:
    """Mark a session whose engine is gone as killed (the lock makes us its writer)."""
    lock = lockmod.SessionLock(ref.paths.lock_file)
    if not lock.acquire(timeout=2.0):
        raise SessionError(
            f"session {ref.name!r} did not stop: its lock is still held", session=ref.name
        )
    try:
        try:
            state = read_state(ref.paths.state_file)
        except ValueError:
            state = None
        if state is None or state.status.finished:
            return
        record_ending(
            ref.paths.state_file,
            EventLog(ref.paths.events_file, ref.name),
            state,
            RunStatus.KILLED,
            reason="killed",
            data={"by": "kill"},
        )
    finally:
        lock.release(remove=True)


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
    if health is Health.ORPHANED:
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
    lock = launch.take_lock(ref)
    try:  # the engine would refuse them too, but only in its tmux pane: say it here
        refuse_unsafe(
            ref.paths.state_file,
            ref.paths.events_file,
            ref.paths.engine_log,
            ref.paths.pipeline_file,
        )
    except UnsafeFileError:
        lock.release()
        raise
    live = runner.sessions(ref.project)
    if live and ref.name in live:
        lock.release()
        raise SessionConflictError(f"{describe(runner, ref.name)} already exists", session=ref.name)
    launch.spawn(
        ref,
        runner,
        lock,
        env=env,
        resume=True,
        engine_factory=engine_factory,
        background=background,
    )


def _held(ref: SessionRef) -> str:
    backend = ref.backend(ref.read_state())
    return describe(backend, ref.name) if backend is not None else "a backend session"
