"""Starting an agent process that ends when its engine dies.

An agent is started the fast way (``subprocess`` with ``vfork``: no copy of the engine,
no Python run in one) in a session of its own, and listed with this process's warden
(:mod:`looprunner.engine.warden`), which ends its process group if the engine dies,
SIGKILL included. The warden is told ``+PID`` after the start and ``-PID`` once the agent
has ended (:func:`released`, before the engine reaps it).

Without a warden (no ``/bin/sh``, or one that cannot be started) the agent asks Linux for
the parent-death signal instead (``PR_SET_PDEATHSIG``: SIGTERM when the engine thread
that started it dies). Only the new process can ask for it, between ``fork`` and
``exec``: through util-linux's ``setpriv --pdeathsig TERM -- ARGV``, a small program that
asks for the signal and ``exec``-s the agent in place (same pid, group and start time),
where ``setpriv`` knows the option and the program can be found (so the error the caller
gets is Python's own, naming it); otherwise through ``preexec_fn``, which copies the
whole engine with ``fork`` and runs Python in the copy.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from looprunner.engine.warden import WARDEN

#: where setpriv is looked for: the system's own folders, never the agent's PATH
SYSTEM_PATH = "/usr/bin:/bin:/usr/sbin:/sbin"

#: False: agents are not listed with a warden (they ask for the parent-death signal)
use_warden = True
_wrapper: tuple[str, ...] | None = None
_probed = False
_probe_lock = threading.Lock()


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Ask Linux to SIGTERM the agent if the engine dies (SIGKILL included)."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def death_signal_wrapper() -> tuple[str, ...] | None:
    """Return the argv prefix that gives a program the parent-death signal, or None.

    Found once per process: ``setpriv`` in the system folders, tried once on itself
    (``setpriv --pdeathsig TERM -- setpriv --version``), so a version without the option
    is never used.
    """
    global _wrapper, _probed
    if not sys.platform.startswith("linux"):
        return None
    with _probe_lock:
        if not _probed:
            _probed = True
            found = shutil.which("setpriv", path=SYSTEM_PATH)
            if found is not None:
                prefix = (found, "--pdeathsig", "TERM", "--")
                with contextlib.suppress(OSError, subprocess.SubprocessError):
                    subprocess.run(
                        [*prefix, found, "--version"],
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                        timeout=10,
                        check=True,
                    )
                    _wrapper = prefix
        return _wrapper


def findable(program: str, *, cwd: Path, env: Mapping[str, str]) -> bool:
    """Tell whether ``exec`` will find ``program`` as an executable file.

    As the agent's ``execvp`` looks: a name with a slash from ``cwd``, a bare name along
    the ``PATH`` of ``env`` (relative entries from ``cwd``).
    """
    if "/" in program:
        candidates = [cwd / program]
    else:
        path = env.get("PATH", os.defpath)
        candidates = [cwd / (entry or ".") / program for entry in path.split(os.pathsep)]
    return any(c.is_file() and os.access(c, os.X_OK) for c in candidates)


def start(argv: Sequence[str], *, cwd: Path, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """Start ``argv`` as the leader of a new session, piped, ending with its engine.

    Raises
    ------
    OSError
        The program could not be started (Python's own error, naming it).
    """
    if use_warden and WARDEN.ready():
        proc = _popen(list(argv), cwd=cwd, env=env, preexec=False)
        if WARDEN.watch(proc.pid):
            return proc
        # the warden died in between: end this start and make it the other way
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
    wrapper = death_signal_wrapper()
    fast = wrapper is not None and bool(argv) and findable(argv[0], cwd=cwd, env=env)
    return _popen(
        [*wrapper, *argv] if fast and wrapper is not None else list(argv),
        cwd=cwd,
        env=env,
        preexec=not fast and sys.platform.startswith("linux"),
    )


def released(pid: int) -> None:
    """Say that the agent ``pid`` has ended: its group is no longer the warden's to end."""
    if use_warden:
        WARDEN.forget(pid)


def _popen(
    argv: list[str], *, cwd: Path, env: Mapping[str, str], preexec: bool
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=cwd,
        env=env,
        start_new_session=True,
        preexec_fn=_die_with_parent if preexec else None,
    )
