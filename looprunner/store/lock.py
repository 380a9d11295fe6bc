"""The session lock: held by the engine for its whole life, freed by the kernel on death.

This is the only module that imports portalocker. The lock is an exclusive ``flock`` on
``locks/NAME.lock``; a lock file whose lock can be taken is stale by definition, so no
pid is ever guessed at. Because a lock file may be unlinked by its holder when it exits
cleanly, every acquirer checks after locking that the file it locked is still the one at
the path; otherwise it retries, so two holders of one name can never exist.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import IO, Any

import attrs

from looprunner.errors import UnsafeFileError
from looprunner.store.safe import open_regular

try:  # POSIX: probing needs only flock, the primitive portalocker's default locker uses
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]


class LockException(Exception):
    """The lock is held by someone else."""


def _lock(handle: IO[bytes], *, shared: bool = False, blocking: bool = False) -> None:
    """Take an flock through portalocker (imported here: it is slow to import)."""
    import portalocker
    from portalocker.exceptions import LockException as PortalockerLockException

    flags = portalocker.LockFlags.SHARED if shared else portalocker.LockFlags.EXCLUSIVE
    if not blocking:
        flags |= portalocker.LockFlags.NON_BLOCKING
    try:
        portalocker.lock(handle, flags)
    except PortalockerLockException as exc:
        raise LockException(str(exc)) from exc


def _unlock(handle: IO[bytes]) -> None:
    import portalocker

    with contextlib.suppress(Exception):
        portalocker.unlock(handle)


def _try_shared(handle: IO[bytes]) -> bool:
    """Take a shared lock for an instant if nobody holds the exclusive one.

    Uses ``fcntl.flock`` directly where it exists: the same lock portalocker takes on
    POSIX, without paying for importing portalocker on every ``status`` call.
    """
    if fcntl is None:  # pragma: no cover - not POSIX
        try:
            _lock(handle, shared=True)
        except LockException:
            return False
        _unlock(handle)
        return True
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return False
    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    return True


REASSERT_WAIT = 3.0


@attrs.frozen
class LockProbe:
    """What a look at a lock file (without holding it) found."""

    present: bool
    held: bool
    metadata: dict[str, Any] = attrs.field(factory=dict)


def _same_file(handle: IO[bytes], path: Path) -> bool:
    try:
        on_disk = path.stat()
    except FileNotFoundError:
        return False
    mine = os.fstat(handle.fileno())
    return (mine.st_dev, mine.st_ino) == (on_disk.st_dev, on_disk.st_ino)


LOCK_MODE = 0o600
#: the bytes of the lock file the engine keeps allocated, so that on a full disk it can
#: still record how its session ended there (:mod:`looprunner.store.diskfault`)
RESERVED_BYTES = 4096


def _open_lock_file(path: Path) -> IO[bytes]:
    """Open (creating) a lock file: 0600 whatever the umask, never inherited by children.

    Nobody else needs to open it: the holder's metadata is read by the same user. A
    lock file an older version left 0644 is made 0600 when we own it. A symlink or a
    special file at the path is refused (:class:`~looprunner.errors.UnsafeFileError`).
    """
    # not O_APPEND: the metadata is rewritten in place (see SessionLock.write_metadata)
    fd = open_regular(path, os.O_RDWR | os.O_CREAT, LOCK_MODE)
    try:
        info = os.fstat(fd)
        if info.st_mode & 0o777 != LOCK_MODE and info.st_uid == os.geteuid():
            os.fchmod(fd, LOCK_MODE)
        return os.fdopen(fd, "r+b")
    except BaseException:
        os.close(fd)
        raise


def _padded(metadata: dict[str, Any]) -> bytes:
    """Return the metadata's JSON padded with spaces to :data:`RESERVED_BYTES` (valid JSON)."""
    raw = json.dumps(metadata, sort_keys=True).encode()
    return raw + b" " * max(0, RESERVED_BYTES - len(raw) - 1) + b"\n"


class SessionLock:
    """An exclusive lock on one session's lock file.

    The descriptor is opened non-inheritable, so agent processes never hold it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[bytes] | None = None
        self._metadata: dict[str, Any] = {}

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._handle is not None

    def acquire(self, timeout: float = 0.0) -> bool:
        """Try to take the lock, waiting up to ``timeout`` seconds; return whether taken."""
        if self._handle is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + timeout
        while True:
            handle = _open_lock_file(self.path)
            try:
                _lock(handle)
            except LockException:
                handle.close()
            else:
                if _same_file(handle, self.path):
                    self._handle = handle
                    return True
                handle.close()  # the holder removed the file as we locked it: retry
                continue
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)

    def write_metadata(self, metadata: dict[str, Any]) -> None:
        """Record who holds the lock, for ``status`` and ``cleanup`` to show.

        The JSON is padded with spaces to :data:`RESERVED_BYTES` and written over the
        file's first bytes, never truncated first: the block stays allocated, so a fault
        marker (:meth:`record_fault`) can be written in place on a full disk, and a
        failed write leaves what was there.
        """
        if self._handle is None:
            raise RuntimeError("write_metadata() needs the lock held")
        self._write_in_place(metadata)
        self._metadata = dict(metadata)

    def record_fault(self, fault: dict[str, Any]) -> None:
        """Add ``fault`` to the metadata, in place: how the session ended, when state cannot.

        Raises
        ------
        OSError
            The lock file cannot be written either (a file system gone read-only).
        """
        if self._handle is None:
            raise RuntimeError("record_fault() needs the lock held")
        metadata = {**self._metadata, "fault": dict(fault)}
        if len(_padded(metadata)) > RESERVED_BYTES:  # keep to the block already there
            message = str(fault.get("message", ""))
            over = len(_padded(metadata)) - RESERVED_BYTES
            metadata["fault"]["message"] = message[: max(0, len(message) - over - 3)] + "..."
        self._write_in_place(metadata)

    def _write_in_place(self, metadata: dict[str, Any]) -> None:
        assert self._handle is not None
        raw = _padded(metadata)
        fd = self._handle.fileno()
        written = 0
        while written < len(raw):
            written += os.pwrite(fd, raw[written:], written)
        if os.fstat(fd).st_size > len(raw):
            os.ftruncate(fd, len(raw))
        os.fsync(fd)

    def metadata(self) -> dict[str, Any]:
        """Read the metadata of the lock file we hold, through our own descriptor.

        What the previous holder left there: a launcher's launch record, say, which the
        engine it started must find (:mod:`looprunner.store.holders`).
        """
        if self._handle is None:
            raise RuntimeError("metadata() needs the lock held")
        self._handle.seek(0)
        raw = self._handle.read()
        try:
            data = json.loads(raw or b"{}")
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    def still_ours(self) -> bool:
        """Tell whether the lock file at the path is still the one we hold.

        False means someone deleted (or replaced) the lock file while we held it.
        """
        return self._handle is not None and _same_file(self._handle, self.path)

    def reassert(self) -> bool:
        """Put our lock back at the path after someone deleted the lock file.

        Returns True if the lock at the path is ours (again), False if another process
        already holds a new lock file there, in which case this holder must stop.
        """
        if self._handle is None:
            return False
        if self.still_ours():
            return True
        stale, self._handle = self._handle, None
        # a refused start or a cleanup may hold the new file for an instant: wait that out
        taken = self.acquire(timeout=REASSERT_WAIT)
        if not taken:
            self._handle = stale
            return False
        _unlock(stale)
        stale.close()
        return True

    def release(self, *, remove: bool = False) -> None:
        """Release the lock; with ``remove``, unlink the file first, while still holding it."""
        handle, self._handle = self._handle, None
        if handle is None:
            return
        if remove and _same_file(handle, self.path):
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        _unlock(handle)
        handle.close()

    def __enter__(self) -> SessionLock:
        if not self.acquire():
            raise LockException(f"{self.path} is held")
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def read_metadata(path: Path) -> dict[str, Any]:
    """Return the metadata in a lock file, or {} if missing, empty or being rewritten."""
    try:
        fd = open_regular(path, os.O_RDONLY)
    except (OSError, UnsafeFileError):
        return {}
    with os.fdopen(fd, "rb") as handle:
        raw = handle.read()
    try:
        data = json.loads(raw or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def probe(path: Path) -> LockProbe:
    """Look at a lock without taking it for longer than an instant.

    A shared, non-blocking lock attempt fails exactly when an engine holds the exclusive
    lock; it never blocks an engine for more than the instant it is held.
    """
    try:
        handle = os.fdopen(open_regular(path, os.O_RDONLY), "rb")
    except FileNotFoundError:
        return LockProbe(present=False, held=False)
    except (OSError, UnsafeFileError):  # a symlink is nobody's lock: cleanup reports it
        return LockProbe(present=True, held=False)
    with handle:
        held = not _try_shared(handle)
        raw = handle.read()
    try:
        metadata = json.loads(raw or b"{}")
    except ValueError:
        metadata = {}
    return LockProbe(
        present=True, held=held, metadata=metadata if isinstance(metadata, dict) else {}
    )
