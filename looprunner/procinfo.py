"""Process identity: enough to tell a live process from a dead one whose pid was reused.

A pid alone is not an identity: after a crash the number may be given to an unrelated
process, and after a reboot every number is. So looprunner records a process's pid with
its start time (clock ticks since boot, from ``/proc/PID/stat``) and the boot id, and only
believes or signals a pid when all three still match. Where ``/proc`` is missing (macOS)
the start time and boot id are None and only the lock is trusted.

Files are read with :func:`open`, not :mod:`pathlib`, and the answers that never change
are kept in a plain dict, not :func:`functools.cache`: the command line's quick look at a
session (:mod:`looprunner.glance`) asks whether engines live without importing either
(:mod:`functools` brings :mod:`collections`).
"""

from __future__ import annotations

import os

_BOOT_ID = "/proc/sys/kernel/random/boot_id"
#: this boot's id and this machine's name, once asked (they do not change while we run)
_KNOWN: dict[str, str | None] = {}


def _read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def boot_id() -> str | None:
    """Return this boot's id, or None where the platform has none."""
    if "boot_id" not in _KNOWN:
        try:
            _KNOWN["boot_id"] = _read(_BOOT_ID).decode("utf-8", "replace").strip() or None
        except OSError:
            _KNOWN["boot_id"] = None
    return _KNOWN["boot_id"]


def hostname() -> str:
    """Return this machine's host name."""
    name = _KNOWN.get("hostname")
    if name is None:
        import socket  # only a lock's writer and a pid check of another host's lock need it

        name = _KNOWN["hostname"] = socket.gethostname()
    return name


def _stat_fields(pid: int) -> list[bytes] | None:
    """Fields 3 onwards of ``/proc/PID/stat`` (None where there is no such file)."""
    try:
        raw = _read(f"/proc/{pid}/stat")
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    return raw[raw.rfind(b")") + 2 :].split()


def start_time(pid: int) -> int | None:
    """Return when process ``pid`` started (ticks since boot), or None if unknown/gone."""
    fields = _stat_fields(pid)
    try:
        return int(fields[19]) if fields else None
    except (IndexError, ValueError):
        return None


def state_letter(pid: int) -> str | None:
    """Return the state letter of ``pid`` (``R``, ``S``, ``T`` stopped, ``Z``...), or None."""
    fields = _stat_fields(pid)
    return fields[0].decode("ascii", "replace") if fields else None


def is_stopped(pid: int | None) -> bool:
    """Tell whether ``pid`` is stopped by a signal (SIGSTOP, SIGTSTP: state ``T``)."""
    return pid is not None and pid > 0 and state_letter(pid) == "T"


def owner(pid: int) -> str | None:
    """Return the user ``pid`` runs as (a name where there is one), or None if unknown."""
    try:
        uid = os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return f"uid {uid}"


def is_zombie(pid: int) -> bool:
    """Tell whether ``pid`` has exited but not been reaped yet (so it is dead)."""
    fields = _stat_fields(pid)
    return fields is not None and bool(fields) and fields[0] == b"Z"


def is_alive(pid: int | None, started: int | None = None, boot: str | None = None) -> bool:
    """Tell whether ``pid`` still names the process recorded with ``started`` and ``boot``.

    A different boot id, or a different start time, means the recorded process is gone
    even if some process has that pid now.
    """
    if pid is None or pid <= 0:
        return False
    if boot is not None and boot_id() is not None and boot != boot_id():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if is_zombie(pid):
        return False
    if started is not None:
        now = start_time(pid)
        if now is not None and now != started:
            return False
    return True


_LOCKS = "/proc/locks"


def flock_holders(device: int, inode: int) -> list[int] | None:
    """Return the pids holding an ``flock`` on the file (``device``, ``inode``).

    Read from ``/proc/locks`` (Linux), which names every lock on the machine with the
    pid that took it, whoever owns the file or the process: so a lock another user holds
    on our file can be named. A pid of 0 or less means the holder lives where this
    process cannot see it (another pid namespace). Waiters (lines with ``->``) hold
    nothing and are left out. None where ``/proc/locks`` cannot be read.
    """
    try:
        text = _read(_LOCKS).decode("utf-8", "replace")
    except OSError:
        return None
    wanted = f"{os.major(device):02x}:{os.minor(device):02x}:{inode}"
    pids = []
    for line in text.splitlines():
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 1234 fe:00:5308434 0 EOF"
        if len(fields) < 6 or fields[1] != "FLOCK" or fields[5] != wanted:
            continue
        try:
            pids.append(int(fields[4]))
        except ValueError:
            continue
    return pids


def cmdline(pid: int) -> list[str]:
    """Return the command line of ``pid`` ([] if gone or unreadable)."""
    try:
        raw = _read(f"/proc/{pid}/cmdline")
    except OSError:
        return []
    return [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]


def runs_looprunner(pid: int) -> bool:
    """Tell whether ``pid`` runs looprunner (``looprunner ...`` or ``python -m looprunner``).

    Only a hint, for telling a looprunner command that holds a lock for an instant from
    a stranger: a program may name itself anything.
    """
    argv = cmdline(pid)
    if len(argv) >= 3 and argv[1:3] == ["-m", "looprunner"]:
        return True
    return any(os.path.basename(arg) == "looprunner" for arg in argv[:2])
