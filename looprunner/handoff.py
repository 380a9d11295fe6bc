"""Hands the launcher's environment to an engine started elsewhere, without leaking it.

A tmux session gets the tmux *server's* environment, not the caller's, and passing
variables with ``new-session -e`` would put every secret on a command line that any
local user can read in ``/proc``. So the launcher hands its environment over, as JSON,
through one of two transports, chosen by the backend (see
:func:`looprunner.protocols.handoff_of`):

``fifo`` (the default)
    A FIFO (mode 0600) in the run directory that the engine reads first thing: the data
    passes through the kernel and is never stored on disk. It only works when the engine
    runs on the launcher's machine: a FIFO carries nothing between two kernels, even on
    shared storage.
``file``
    For backends whose engines may run on another machine that shares the project: a
    file created exclusively (``O_CREAT | O_EXCL``, mode 0600, never through a symbolic
    link) in the run directory, which the engine opens and unlinks first thing. The
    launcher waits until it is gone and removes it itself when the launch fails or the
    engine never comes, so it rests on the shared storage for the seconds of a launch.

Either way the path goes to the engine on its command line (``--env-fifo PATH`` or
``--env-file PATH``), never the data.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import select
import stat
import time
from collections.abc import Mapping
from pathlib import Path

from looprunner.errors import UnsafeFileError

#: the transports (a backend names one in its ``handoff`` attribute)
FIFO = "fifo"
FILE = "file"
TRANSPORTS = (FIFO, FILE)
FIFO_NAME = ".env-handoff"
FILE_NAME = ".env-handoff.json"
#: the engine's command-line option that names each transport's path
FLAGS = {FIFO: "--env-fifo", FILE: "--env-file"}
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
    """Remove the FIFO or file of a launch that failed: nobody will read it."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def encode(env: Mapping[str, str]) -> bytes:
    """Return what either transport carries: ``env`` as JSON, the terminal's variables left out."""
    return json.dumps({k: v for k, v in env.items() if k not in NOT_HANDED_OVER}).encode()


def decode(raw: bytes) -> dict[str, str] | None:
    """Return the environment ``raw`` (JSON) holds, or None if it is not one."""
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else None


def send(path: Path, env: Mapping[str, str], *, timeout: float) -> bool:
    """Write ``env`` to the FIFO once the engine opens it; False if it never did."""
    payload = encode(env)
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
    return decode(b"".join(chunks))


#: the largest handoff file the engine reads (an environment is a few kB)
MAX_FILE_BYTES = 16 * 1024 * 1024


def write_file(run_dir: Path, env: Mapping[str, str]) -> Path:
    """Create the handoff file in ``run_dir`` holding ``env``; return its path.

    A regular file already there is a launch's that died: it is replaced. A symbolic link
    or anything else in its place is refused (:class:`UnsafeFileError`): it was planted,
    and following it would write the environment where someone else chose. The file is
    created with ``O_EXCL`` and mode 0600, so what is written is never anybody else's.
    """
    path = run_dir / FILE_NAME
    try:
        found = os.lstat(path)
    except FileNotFoundError:
        pass
    else:
        if stat.S_ISLNK(found.st_mode):
            raise UnsafeFileError(path, "a symbolic link")
        if not stat.S_ISREG(found.st_mode):
            raise UnsafeFileError(path, "not a regular file")
        path.unlink()  # stale
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:  # something appeared since the look above
        raise UnsafeFileError(path, "created by another program during the launch") from None
    try:
        view = memoryview(encode(env))
        while view:
            view = view[os.write(fd, view) :]
    except BaseException:
        discard(path)
        raise
    finally:
        os.close(fd)
    return path


def wait_taken(path: Path, *, timeout: float) -> bool:
    """Wait until the engine has removed the handoff file; False if it never did.

    The file is removed here in any case (the engine's turn is over), so it never
    outlives the launch.
    """
    deadline = time.monotonic() + timeout
    pause = 0.01
    try:
        while os.path.lexists(path):
            if time.monotonic() >= deadline:
                return False
            time.sleep(pause)
            pause = min(pause * 1.5, 0.1)
        return True
    finally:
        discard(path)


def read_file(path: Path, *, timeout: float) -> dict[str, str] | None:
    """Read and remove the handoff file (the engine's side); None if there is none to trust.

    Waits up to ``timeout`` for it to appear (shared storage may show it late), unlinks it
    as soon as it is open, and refuses a symbolic link, a file that is not regular or
    one that another user owns: the environment decides what the agents run.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
            break
        except FileNotFoundError:
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.05)
        except OSError:  # ELOOP: a symbolic link
            return None
    try:
        found = os.fstat(fd)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        if not stat.S_ISREG(found.st_mode) or found.st_uid != os.geteuid():
            return None
        if found.st_size > MAX_FILE_BYTES:
            return None
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return decode(b"".join(chunks))


def prepare(transport: str, run_dir: Path, env: Mapping[str, str]) -> Path:
    """Make the launcher's end of ``transport`` for ``env``; return the path the engine gets."""
    return write_file(run_dir, env) if transport == FILE else create(run_dir)


def deliver(transport: str, path: Path, env: Mapping[str, str], *, timeout: float) -> bool:
    """Complete the handoff once the engine is launched; False if the engine never took it."""
    if transport == FILE:
        return wait_taken(path, timeout=timeout)
    return send(path, env, timeout=timeout)


def receive_any(transport: str, path: Path, *, timeout: float) -> dict[str, str] | None:
    """Take the environment the launcher handed over (the engine's side of either transport)."""
    if transport == FILE:
        return read_file(path, timeout=timeout)
    return receive(path, timeout=timeout)


def take_umask(received: dict[str, str]) -> int | None:
    """Remove the launcher's umask from a received environment and return it."""
    raw = received.pop(UMASK_KEY, None)
    try:
        return int(raw, 8) & 0o777 if raw is not None else None
    except ValueError:
        return None
