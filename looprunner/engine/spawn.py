"""Starting an agent process that the kernel ends (SIGTERM) when its engine dies.

Linux sends a process its "parent-death signal" (``PR_SET_PDEATHSIG``) when the thread
that started it exits, SIGKILL included; only the new process itself can ask for it,
between ``fork`` and ``exec``. Python can run code there only through ``preexec_fn``,
and that costs: ``subprocess`` then copies the whole engine with ``fork`` and runs Python
in the copy (where a lock held by another thread at that instant deadlocks it), instead
of starting the program with ``vfork``. Under load that was most of an iteration's
spawn time.

So the agent is started through util-linux's ``setpriv --pdeathsig TERM -- ARGV``: a
small program that asks for the signal and then ``exec``-s the agent in place (same pid,
same process group, same start time), and the engine starts it the fast way. Where
``setpriv`` is missing or too old to know ``--pdeathsig``, and for a program that cannot
be found (so the error the caller gets is Python's own, naming it), the agent is started
as before, through ``preexec_fn``.
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

#: where setpriv is looked for: the system's own folders, never the agent's PATH
SYSTEM_PATH = "/usr/bin:/bin:/usr/sbin:/sbin"

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
    """Start ``argv`` as the leader of a new session, piped, dying with its engine.

    Raises
    ------
    OSError
        The program could not be started (Python's own error, naming it).
    """
    wrapper = death_signal_wrapper()
    fast = wrapper is not None and bool(argv) and findable(argv[0], cwd=cwd, env=env)
    return subprocess.Popen(
        [*wrapper, *argv] if fast and wrapper is not None else list(argv),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=cwd,
        env=env,
        start_new_session=True,
        preexec_fn=None if fast or not sys.platform.startswith("linux") else _die_with_parent,
    )
