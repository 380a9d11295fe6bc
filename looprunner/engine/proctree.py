"""What ``/proc`` says about processes, read cheaply, and the child-subreaper switch.

The sweep of what an agent left (:mod:`looprunner.engine.contain`) needs, for every
process, its parent, process group, session and start time (one read of
``/proc/PID/stat``), and for a few of them whether their environment carries a marker
(``/proc/PID/environ``, readable for the user's own processes). Reads go through
``os.open``/``os.read``: the sweep runs after every iteration, and a process vanishing
between the listing and the read is normal, not an error.

On Linux a process can ask to become a *child subreaper* (``prctl``
``PR_SET_CHILD_SUBREAPER``, through ctypes: no dependency): descendants orphaned below it
are then re-parented to it instead of to init, so a double-forked daemon stays its
descendant. Elsewhere these functions answer "unknown" and the sweep falls back to
scanning.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import sys

import attrs

_PROC = "/proc"
PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37
#: the most of one process's environment read (a marker past it is not seen; the kernel
#: caps an environment near this size with the default stack limit anyway)
MAX_ENVIRON = 4 * 1024 * 1024


@attrs.frozen
class Proc:
    """One process as ``/proc/PID/stat`` describes it."""

    pid: int
    ppid: int
    pgrp: int
    sid: int
    #: clock ticks since boot (with the boot id, a process's identity)
    started: int
    zombie: bool


def _read(path: str, limit: int) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        chunks = []
        size = 0
        while size < limit:
            chunk = os.read(fd, min(65536, limit - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def read(pid: int) -> Proc | None:
    """Return process ``pid`` (None if it is gone or ``/proc`` is missing)."""
    raw = _read(f"{_PROC}/{pid}/stat", 4096)
    if not raw:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after the last ')'
    fields = raw[raw.rfind(b")") + 2 :].split()
    try:
        return Proc(
            pid=pid,
            ppid=int(fields[1]),
            pgrp=int(fields[2]),
            sid=int(fields[3]),
            started=int(fields[19]),
            zombie=fields[0] == b"Z",
        )
    except (IndexError, ValueError):
        return None


def snapshot() -> dict[int, Proc]:
    """Every process visible in ``/proc`` (empty where there is no ``/proc``)."""
    found: dict[int, Proc] = {}
    try:
        entries = os.scandir(_PROC)
    except OSError:
        return found
    with entries:
        for entry in entries:
            if entry.name.isdigit():
                proc = read(int(entry.name))
                if proc is not None:
                    found[proc.pid] = proc
    return found


def environ_has(pid: int, name: str, value: str) -> bool:
    """Tell whether process ``pid`` was started with ``name=value`` in its environment.

    False when the environment cannot be read: another user's process, a process that
    made itself non-dumpable, a zombie, or a process that is gone.
    """
    raw = _read(f"{_PROC}/{pid}/environ", MAX_ENVIRON)
    if not raw:
        return False
    return b"\0" + f"{name}={value}".encode() + b"\0" in b"\0" + raw + b"\0"


def has_children(*, besides: int | None = None) -> bool:
    """Tell whether this process has any child, live or zombie, without reaping one.

    One ``waitid`` call (``WNOHANG | WNOWAIT``): ``ECHILD`` means none. ``besides`` is a
    child that does not count (the engine's warden): then the children are read from
    ``/proc/self/task/*/children`` instead. True where it cannot be asked, so a caller
    never skips work on a guess.
    """
    if besides is not None:
        found = _children()
        return found is None or bool(found - {besides})
    waitid = getattr(os, "waitid", None)
    if waitid is None:
        return True
    flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
    try:
        waitid(os.P_ALL, 0, flags)
    except ChildProcessError:
        return False
    except OSError:
        return True
    return True


def _children() -> set[int] | None:
    """Every child of this process's threads (None where ``/proc`` does not say)."""
    found: set[int] = set()
    try:
        with os.scandir(f"{_PROC}/self/task") as entries:
            tasks = [entry.name for entry in entries]
    except OSError:
        return None
    for task in tasks:
        raw = _read(f"{_PROC}/self/task/{task}/children", 1 << 20)
        if raw is None:
            if os.access(f"{_PROC}/self/task/{task}", os.F_OK):
                return None  # no such file on this kernel: cannot say
            continue  # a thread that ended meanwhile
        found.update(int(pid) for pid in raw.split())
    return found


@functools.cache
def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def _prctl(option: int, arg: int | ctypes.c_int) -> bool:
    libc = _libc()
    if libc is None:
        return False
    argument = ctypes.byref(arg) if isinstance(arg, ctypes.c_int) else ctypes.c_ulong(arg)
    try:
        result: int = libc.prctl(option, argument, 0, 0, 0)
    except AttributeError:
        return False
    return result == 0


def become_subreaper() -> bool:
    """Make this process the adopter of its orphaned descendants; return whether it is."""
    return _prctl(PR_SET_CHILD_SUBREAPER, 1) and is_subreaper()


def stop_adopting() -> None:
    """Let orphans below this process go to init again (those adopted stay children)."""
    _prctl(PR_SET_CHILD_SUBREAPER, 0)


def is_subreaper() -> bool:
    """Tell whether this process is a child subreaper (False where that cannot be known)."""
    flag = ctypes.c_int(0)
    return _prctl(PR_GET_CHILD_SUBREAPER, flag) and flag.value != 0


def reap(pid: int) -> bool:
    """Collect child ``pid`` if it has exited; return whether it was collected (or is gone)."""
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == pid
    return True
