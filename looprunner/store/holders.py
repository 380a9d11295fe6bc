"""Who holds a session's lock: its engine, a launcher handing over to one, or a stranger.

The engine holds the lock for its whole life and records its pid in the lock file. For
the instant of a ``start`` or ``resume`` the launcher holds it instead, and before it
lets go it writes a *launch record*: a token that the engine it starts must find there
when it takes the lock, and the state the launch decided on. So whoever takes the lock
in between — ``kill``, ``cleanup``, another launcher — can see that an engine is on its
way, and an engine whose launch was overtaken (its record gone or replaced) knows it and
exits without writing anything.

Anything else holding the lock file — another user's shared ``flock`` on an old 0644
file, a stray program — is a *foreign* holder: nothing of this session, named with its
pid and user where ``/proc/locks`` tells them, so commands say so instead of calling the
session running.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs

from looprunner import procinfo
from looprunner.models import RunState
from looprunner.store import lock as lockmod
from looprunner.store.diskfault import FAULT_KEY
from looprunner.store.events import utc_now

LAUNCH_KEY = "launch"
#: seconds a lock holder that names itself nowhere is watched before it is called foreign
CONFIRM = 0.2
#: a launch record older than this (seconds) is not waited for, even if its launcher
#: lives: launchers give up on an engine after a minute (``session.launch``)
LAUNCH_PATIENCE = 120.0


def new_launch(lock: lockmod.SessionLock, *, resumes: RunState | None) -> str:
    """Write a launch record into the held ``lock`` and return its token.

    ``resumes`` is the state the launch decided on (None for a new run): the engine
    refuses to take over any other.
    """
    import secrets  # a launch's token: commands that only look never make one

    token = secrets.token_hex(16)
    pid = os.getpid()
    # an ending a full disk left only here stays for the engine that resumes the run
    kept = {k: v for k, v in lock.metadata().items() if k == FAULT_KEY}
    lock.write_metadata(
        {
            **kept,
            LAUNCH_KEY: {
                "token": token,
                "pid": pid,
                "pid_start_time": procinfo.start_time(pid),
                "boot_id": procinfo.boot_id(),
                "host": procinfo.hostname(),
                "at": utc_now(),
                "resumes": None if resumes is None else fingerprint(resumes),
            },
        }
    )
    return token


def fingerprint(state: RunState) -> dict[str, str]:
    """Return what identifies one written state (any write changes ``updated_at``)."""
    return {"status": state.status.value, "updated_at": state.updated_at}


def launch_of(meta: Mapping[str, Any]) -> dict[str, Any] | None:
    """Return the launch record in lock metadata, or None."""
    launch = meta.get(LAUNCH_KEY)
    return launch if isinstance(launch, dict) else None


def _alive(record: Mapping[str, Any]) -> int | None:
    pid = record.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool):
        return None
    started = record.get("pid_start_time")
    boot = record.get("boot_id")
    alive = procinfo.is_alive(
        pid, started if isinstance(started, int) else None, boot if isinstance(boot, str) else None
    )
    return pid if alive else None


def pending_launch(meta: Mapping[str, Any]) -> dict[str, Any] | None:
    """Return the launch record if its launcher still lives (it waits for its engine).

    A record older than :data:`LAUNCH_PATIENCE` is not pending: its launcher has given
    up on it, whatever it does now.
    """
    launch = launch_of(meta)
    if launch is None or _alive(launch) is None:
        return None
    try:
        at = datetime.fromisoformat(str(launch.get("at")).replace("Z", "+00:00"))
    except ValueError:
        return None
    return launch if (datetime.now(UTC) - at).total_seconds() < LAUNCH_PATIENCE else None


def engine_pid(meta: Mapping[str, Any]) -> int | None:
    """Return the pid of the engine the metadata names, if that process still lives."""
    return _alive(meta)


@attrs.frozen
class Foreign:
    """A holder of the lock file that is no looprunner process of this session."""

    pid: int | None
    user: str | None

    def sentence(self, path: Path) -> str:
        """Say who holds the lock file, in the words every command uses."""
        who = (
            f"pid {self.pid} (user {self.user or 'unknown'})"
            if self.pid is not None
            else "a process this one cannot see (another pid namespace)"
        )
        return f"the lock file {path} is held by {who}, not by a looprunner engine of this session"


def foreign_holder(path: Path, meta: Mapping[str, Any], *, confirm: bool = True) -> Foreign | None:
    """Return a holder of the lock file that is not ours, or None.

    Ours are this process, the engine and the launcher the metadata names, and any
    process running looprunner (a ``kill`` or ``cleanup`` holds the lock for an instant).
    A holder is only called foreign if it still holds the lock, naming itself nowhere,
    :data:`CONFIRM` seconds later (unless ``confirm`` is False, for a caller that
    watches it anyway): a launcher writes its record moments after taking the lock, and
    the metadata reads empty while its holder rewrites it. Linux only: elsewhere nobody
    is known to hold it.
    """
    first = _stranger(path, meta)
    if first is None or not confirm:
        return first
    time.sleep(CONFIRM)
    again = _stranger(path, lockmod.read_metadata(path))
    return again if again == first else None


def _stranger(path: Path, meta: Mapping[str, Any]) -> Foreign | None:
    try:
        info = path.lstat()
    except OSError:
        return None
    pids = procinfo.flock_holders(info.st_dev, info.st_ino)
    if not pids:
        return None
    launch = launch_of(meta)
    ours = {os.getpid(), engine_pid(meta), _alive(launch) if launch else None}
    for pid in pids:
        if pid in ours or (pid > 0 and procinfo.runs_looprunner(pid)):
            continue
        if pid > 0:
            return Foreign(pid, procinfo.owner(pid))
        return Foreign(None, None)
    return None


@attrs.frozen
class LockView:
    """A look at a session's lock: the probe, and whether this session holds it.

    ``ours`` is True while an engine of this session holds the lock, or a launch of it
    is handing over to its engine (``launching``: the launcher's pid), or a looprunner
    command holds it for an instant; ``foreign`` names a stranger holding it.
    """

    probe: lockmod.LockProbe
    ours: bool
    foreign: Foreign | None = None
    launching: int | None = None


def look(path: Path) -> LockView:
    """Look at the lock without taking it; ask ``/proc/locks`` only when it matters.

    A lock held while its metadata names a live engine is ours, and so is a launch in
    progress, held or not (between its launcher letting go and its engine taking it);
    one held otherwise, or a present lock file nobody should hold (a stale one), is
    checked for a foreign holder — which the probe's shared lock cannot see if it is
    shared too.
    """
    probe = lockmod.probe(path)
    if not probe.present:
        return LockView(probe, ours=False)
    meta = probe.metadata
    launch = pending_launch(meta)
    if launch is not None:  # held by its launcher or its engine, or about to be
        return LockView(probe, ours=True, launching=launch["pid"])
    if probe.held and engine_pid(meta) is not None:
        return LockView(probe, ours=True)
    foreign = foreign_holder(path, meta)
    return LockView(probe, ours=probe.held and foreign is None, foreign=foreign)
