"""Opening looprunner's own files without following symlinks.

Anyone who can write the state folder could put a symlink (or a FIFO, a device) where
one of our files should be. Every file looprunner opens for writing under ``.claude/`` is
opened through :func:`open_regular`: ``O_NOFOLLOW`` (so ``O_CREAT`` never creates a
dangling link's target), ``O_NONBLOCK`` while opening (a FIFO cannot block us), and
checked with ``fstat`` to be a regular file; anything else is refused with
:class:`~looprunner.errors.UnsafeFileError` naming the path. :func:`unsafe_reason` is
the same judgement without opening, for ``cleanup`` and the launch checks.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from pathlib import Path

from looprunner.errors import UnsafeFileError


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"


def unsafe_reason(path: Path) -> str | None:
    """Say what is unsafe about ``path`` ("a symbolic link", ...), or None if it is fine.

    A missing file is fine (we create it); only what is there and is not a regular file
    counts.
    """
    try:
        mode = path.lstat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    return None if stat.S_ISREG(mode) else _kind(mode)


def refuse_unsafe(*paths: Path) -> None:
    """Raise :class:`UnsafeFileError` for the first of ``paths`` that is not safe to open."""
    for path in paths:
        reason = unsafe_reason(path)
        if reason is not None:
            raise UnsafeFileError(path, reason)


def _check_regular(fd: int, path: Path) -> None:
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        raise UnsafeFileError(path, _kind(mode))


def open_regular(path: Path, flags: int, mode: int = 0o666) -> int:
    """Open ``path`` as :func:`os.open` does, refusing a symlink or a non-regular file.

    Returns a blocking, non-inheritable descriptor of a regular file.

    Raises
    ------
    UnsafeFileError
        ``path`` is a symbolic link (dangling or not), a FIFO, a device, a directory...
    """
    opening = flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, opening, mode)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO, errno.EISDIR, errno.EWOULDBLOCK):
            raise UnsafeFileError(path, unsafe_reason(path) or "a special file") from exc
        raise
    try:
        _check_regular(fd, path)
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
    except BaseException:
        os.close(fd)
        raise
    return fd
