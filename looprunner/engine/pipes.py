"""An agent's pipes and its exit: its prompt in, its output out, knowing it has ended.

The pieces :class:`looprunner.engine.process.AgentRunner` watches an agent with, each a
system call or two, kept apart from the watching itself.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
from collections.abc import Callable


def start_feeding(proc: subprocess.Popen[bytes], text: str) -> threading.Thread | None:
    """Give the agent its prompt on stdin, then end it (the agent sees end of input).

    A prompt the pipe takes whole (64 KiB on Linux) is written at once, without
    blocking; a longer one is written by a thread, since the agent may not read until
    it has written output of its own, which this process reads meanwhile (the thread
    is returned, to be joined). Starting a thread costs more than the rest of an
    iteration's bookkeeping.
    """
    assert proc.stdin is not None
    data = text.encode("utf-8")
    fd = proc.stdin.fileno()
    written = 0
    try:
        os.set_blocking(fd, False)
        written = os.write(fd, data) if data else 0
    except BlockingIOError:
        written = 0
    except OSError:  # the agent closed its stdin or exited: nothing more to give it
        written = len(data)
    if written == len(data):
        with contextlib.suppress(OSError, ValueError):
            proc.stdin.close()
        return None
    with contextlib.suppress(OSError):
        os.set_blocking(fd, True)
    writer = threading.Thread(target=_feed, args=(proc, data[written:]), daemon=True)
    writer.start()
    return writer


def _feed(proc: subprocess.Popen[bytes], data: bytes) -> None:
    assert proc.stdin is not None
    with contextlib.suppress(OSError, ValueError):
        proc.stdin.write(data)
    with contextlib.suppress(OSError, ValueError):
        proc.stdin.close()


def has_exited(pid: int) -> bool:
    """Tell whether the child ``pid`` has exited, without reaping it."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # reaped already
        return True


def read(fd: int) -> bytes | None:
    """Read what is there: bytes, b"" at end of file, None if nothing after all."""
    try:
        return os.read(fd, 65536)
    except BlockingIOError:
        return None
    except OSError:
        return b""


def drain(fd: int, on_output: Callable[[bytes], None]) -> None:
    """Read what the agent wrote before it exited (a child may keep the pipe open)."""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except (BlockingIOError, OSError):
            return
        if not chunk:
            return
        on_output(chunk)


def pidfd(pid: int) -> int | None:
    """Return a pidfd of child ``pid``, readable once it exits (None where there is none)."""
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        fd: int = opener(pid)
    except OSError:
        return None
    return fd
