"""Taking a session's lock from whatever holds it, in the one order every command follows.

``kill`` may write a session's ending only while it holds the session's lock, and it
takes the lock as follows, so that no ending it records is contradicted afterwards:

* an engine holds it (its pid is in the lock file): signal it (SIGTERM, SIGCONT for a
  stopped engine, SIGKILL after the timeout); it records ``killed`` itself and lets go;
* a launcher is handing over to its engine (a launch record in the lock file, the
  launcher alive): wait for that engine to take the lock, then signal it like any
  engine — an engine checks for a stop before each iteration, so it runs none;
* a launch whose launcher died, or that outlives the timeout: take the lock and remove
  the lock file with the record in it, so that engine, if it ever comes, finds no launch
  of its own and exits without writing (:mod:`looprunner.store.holders`);
* a foreign holder (no looprunner process of this session): say who, change nothing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

from looprunner import procinfo
from looprunner.errors import ForeignLockError, SessionError
from looprunner.session.ref import SessionRef
from looprunner.store import holders
from looprunner.store import lock as lockmod
from looprunner.store.projection import read_projected

#: how long a stranger must hold the lock before a command gives up and names it (a
#: looprunner command of another kind may hold it for an instant)
FOREIGN_PATIENCE = 1.0
#: how long past its timeout a command waits for a SIGKILLed engine to let go
AFTER_SIGKILL = 5.0
POLL = 0.05


def take_over(ref: SessionRef, *, timeout: float, verb: str) -> lockmod.SessionLock:
    """Return the session's lock, held, once no engine and no launch of it holds it.

    ``verb`` says, in messages, what could not be done ("killed").

    Raises
    ------
    ForeignLockError
        Something that is no looprunner process of this session holds the lock file.
    SessionError
        The engine belongs to another user or runs in this process, or the lock is
        still held when time runs out.
    """
    path = ref.paths.lock_file
    deadline = time.monotonic() + timeout
    foreign_since: float | None = None
    while True:
        lock = lockmod.SessionLock(path)
        try:
            taken = lock.acquire(timeout=0)
        except PermissionError:
            _stop_unlisted_engine(ref, deadline)  # says so if it is another user's
            raise SessionError(
                f"session {ref.name!r} cannot be {verb}: this user may not open its lock "
                f"file {path}",
                session=ref.name,
            ) from None
        if taken:
            if holders.pending_launch(lock.metadata()) is None or time.monotonic() >= deadline:
                _stop_unlisted_engine(ref, deadline)
                return lock
            lock.release()  # the record stays: the engine on its way must find it
        else:
            meta = lockmod.read_metadata(path)
            pid = holders.engine_pid(meta)
            if pid is not None:
                stop_engine(ref, pid, meta.get("pid_start_time"), meta.get("boot_id"), deadline)
                continue
            foreign = (  # watched for FOREIGN_PATIENCE below, so not confirmed there
                holders.foreign_holder(path, meta, confirm=False)
                if holders.pending_launch(meta) is None
                else None
            )
            now = time.monotonic()
            if foreign is None:
                foreign_since = None
            elif foreign_since is None:
                foreign_since = now
            elif now - foreign_since >= FOREIGN_PATIENCE:
                raise ForeignLockError(
                    f"session {ref.name!r} cannot be {verb}: {foreign.sentence(path)}",
                    session=ref.name,
                    pid=foreign.pid,
                    user=foreign.user,
                )
            if now >= deadline + AFTER_SIGKILL:
                raise SessionError(
                    f"session {ref.name!r} did not stop: its lock is still held",
                    session=ref.name,
                )
        time.sleep(POLL)


def _stop_unlisted_engine(ref: SessionRef, deadline: float) -> None:
    """Stop an engine that runs on although the lock file we took is not its own.

    That is an engine whose lock file was deleted from under it: it still holds the
    old file, and the state names it.
    """
    try:
        state = read_projected(ref.paths.state_file, ref.paths.events_file)
    except ValueError:
        return
    if state is None or state.status.finished:
        return
    if procinfo.is_alive(state.pid, state.pid_start_time, state.boot_id):
        assert state.pid is not None
        stop_engine(ref, state.pid, state.pid_start_time, state.boot_id, deadline)


def stop_engine(ref: SessionRef, pid: int, started: object, boot: object, deadline: float) -> None:
    """SIGTERM the engine ``pid``; SIGKILL it if it outlives ``deadline``."""
    start_time = started if isinstance(started, int) else None
    boot_id = boot if isinstance(boot, str) else None
    if pid == os.getpid():
        raise SessionError(
            f"session {ref.name!r} runs in this process; "
            "stop it through the Session that started it",
            session=ref.name,
        )
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    except PermissionError:
        user = procinfo.owner(pid) or "another user"
        raise SessionError(
            f"cannot stop session {ref.name!r}: its engine (pid {pid}) belongs to another "
            f"user ({user}); run 'looprunner kill {ref.name}' as that user or as root",
            session=ref.name,
        ) from None
    with contextlib.suppress(OSError):  # a stopped engine acts on SIGTERM once continued
        os.kill(pid, signal.SIGCONT)
    while procinfo.is_alive(pid, start_time, boot_id) and time.monotonic() < deadline:
        time.sleep(POLL)
    if procinfo.is_alive(pid, start_time, boot_id):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        while (
            procinfo.is_alive(pid, start_time, boot_id)
            and time.monotonic() < deadline + AFTER_SIGKILL
        ):
            time.sleep(POLL)
