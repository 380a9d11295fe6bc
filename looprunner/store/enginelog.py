"""``engine.log``: what the engine printed, bounded in size, never fatal to write.

The log mirrors every agent's output, so across many iterations it would grow without
bound: at ``LOOPRUNNER_MAX_ENGINE_LOG_BYTES`` (default 64 MiB) it is renamed
``engine.log.1`` (replacing the one before) and a new ``engine.log`` is begun, so the two
together hold at most about twice the limit. Readers (``monitor``, the error messages
that quote the log) read the two as one stream, across the boundary
(:func:`looprunner.store.logs.last_lines`, :func:`looprunner.store.logs.follow`).

The log is a convenience, not the record (that is ``state.json`` and the event log): a
write that fails — a full disk, a read-only file system — is counted and dropped, never
raised, and once the log takes writes again a line says how much it missed. Every file
is opened through :func:`looprunner.store.safe.open_regular` (never through a symlink).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from looprunner.errors import UnsafeFileError
from looprunner.limits import env_limit
from looprunner.store.logs import rotated
from looprunner.store.safe import open_regular

MAX_LOG_ENV = "LOOPRUNNER_MAX_ENGINE_LOG_BYTES"
#: engine.log is rotated past this many bytes (64 MiB) unless the environment says
MAX_LOG_BYTES = 64 * 1024 * 1024


def max_log_bytes() -> int:
    """Return the size at which engine.log is rotated (``LOOPRUNNER_MAX_ENGINE_LOG_BYTES``)."""
    return env_limit(MAX_LOG_ENV, MAX_LOG_BYTES)


def missed_line(count: int, reason: str) -> str:
    """Return the line that says how much engine.log missed, and why."""
    return f"[looprunner: {count} bytes could not be written to engine.log: {reason}]\n"


class LogWriter:
    """Appends to one session's engine.log, rotating it, and never raising on a write."""

    def __init__(self, path: Path, *, limit: int | None = None) -> None:
        self.path = path
        self.limit = max_log_bytes() if limit is None else limit
        self._fd: int | None = None
        self._size = 0
        #: bytes dropped since the last write that worked, and the error that dropped them
        self.missed = 0
        self.error: OSError | None = None

    def open(self) -> None:
        """Open (creating) the log for appending.

        Raises
        ------
        UnsafeFileError
            A symlink or special file stands where the log should be.
        """
        try:
            self._open()
        except UnsafeFileError:
            raise
        except OSError as exc:  # a read-only run folder: run on, and say so when we can
            self.error = exc

    def _open(self) -> None:
        fd = open_regular(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        self._fd, self._size = fd, os.fstat(fd).st_size

    def write(self, data: bytes) -> None:
        """Append ``data``; rotate first if it would take the log past the limit."""
        if not data:
            return
        if self._fd is None and not self._reopen():
            self.missed += len(data)
            return
        if self.missed:
            note = missed_line(self.missed, _reason(self.error)).encode()
            if self._size and not data.startswith(b"\n"):
                note = b"\n" + note
            if self._append(note):  # the disk still refuses: the note waits too
                self.missed += len(data)
                return
            self.missed = 0
        if self._size > 0 and self._size + len(data) > self.limit:
            self._rotate()
        self.missed += self._append(data)

    def close(self) -> None:
        """Close the log."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def _append(self, data: bytes) -> int:
        """Write ``data`` whole if the disk lets us; return how many bytes it refused."""
        assert self._fd is not None
        view = memoryview(data)
        try:
            while view:
                written = os.write(self._fd, view)
                self._size += written
                view = view[written:]
        except OSError as exc:
            self.error = exc
        return len(view)

    def _reopen(self) -> bool:
        """Try again to open a log that could not be opened (the disk may be back)."""
        try:
            self._open()
        except UnsafeFileError:
            return False
        except OSError as exc:
            self.error = exc
            return False
        return True

    def _rotate(self) -> None:
        """Keep the current log as ``engine.log.1`` and begin a new one.

        ``os.replace`` renames the name itself (a symlink planted at ``engine.log.1`` is
        replaced, never followed). If the new log cannot be made, writing goes on into
        the old one, now ``engine.log.1``, and a new log is tried again after another
        ``limit`` bytes.
        """
        assert self._fd is not None
        try:
            if os.path.lexists(self.path):  # not when a new log could not be made before
                self.path.replace(rotated(self.path))
        except OSError as exc:
            self.error = exc
            self._size = 0  # try again after another limit's worth
            return
        old = self._fd
        try:
            self._open()
        except (OSError, UnsafeFileError) as exc:
            if isinstance(exc, OSError):
                self.error = exc
            self._fd, self._size = old, 0
            return
        with contextlib.suppress(OSError):
            os.close(old)


def _reason(error: OSError | None) -> str:
    if error is None:
        return "unknown error"
    return error.strerror or str(error)
