"""Hands the launcher's environment to an engine started in tmux, without leaking it.

A tmux session gets the tmux *server's* environment, not the caller's, and passing
variables with ``new-session -e`` would put every secret on a command line that any
local user can read in ``/proc``. So the launcher writes its environment, as JSON,
into a FIFO (mode 0600) in the run directory, and the engine reads it first thing: the
data passes through the kernel and is never stored on disk. The FIFO is removed as soon
as it has been read (or when the launcher gives up).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import select
import time
from collections.abc import Mapping
from pathlib import Path

FIFO_NAME = ".env-handoff"
#: the launcher's umask travels with its environment under this key (no variable can be
#: named so: ``=`` is not allowed in a name), so the engine creates files as the user who
#: ran ``start`` would, not as the tmux server's umask would have it
UMASK_KEY = "=umask"
#: variables that describe the caller's terminal, not the environment the agent needs
NOT_HANDED_OVER = frozenset(
    {"TMUX", "TMUX_PANE", "TERM_SESSION_ID", "WINDOWID", "COLUMNS", "LINES"}
)


def create(run_dir: Path) -> Path:
    """Create the FIFO in ``run_dir`` and return its path (replacing a stale one)."""
    path = run_dir / FIFO_NAME
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    os.mkfifo(path, 0o600)
    return path


def discard(path: Path) -> None:
    """Remove the FIFO of a launch that failed: nobody will read it."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def send(path: Path, env: Mapping[str, str], *, timeout: float) -> bool:
    """Write ``env`` to the FIFO once the engine opens it; False if it never did."""
    payload = json.dumps({k: v for k, v in env.items() if k not in NOT_HANDED_OVER}).encode()
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
                break
            except OSError as exc:
                if exc.errno not in (errno.ENXIO, errno.ENOENT) or time.monotonic() >= deadline:
                    return False
                time.sleep(0.01)
        try:
            os.set_blocking(fd, True)
            view = memoryview(payload)
            while view:
                written = os.write(fd, view)
                view = view[written:]
        finally:
            os.close(fd)
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def receive(path: Path, *, timeout: float) -> dict[str, str] | None:
    """Read the environment the launcher sends; None if nothing arrived in time."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    chunks = []
    deadline = time.monotonic() + timeout
    writer_seen = False
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                return None
            chunk = os.read(fd, 65536)
            if chunk:
                writer_seen = True
                chunks.append(chunk)
            elif writer_seen:
                break
            else:
                # no writer has connected yet: a FIFO with no writer reads as EOF
                time.sleep(0.005)
    finally:
        os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    try:
        data = json.loads(b"".join(chunks))
    except ValueError:
        return None
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else None


def take_umask(received: dict[str, str]) -> int | None:
    """Remove the launcher's umask from a received environment and return it."""
    raw = received.pop(UMASK_KEY, None)
    try:
        return int(raw, 8) & 0o777 if raw is not None else None
    except ValueError:
        return None
