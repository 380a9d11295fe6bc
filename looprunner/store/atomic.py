"""Atomic file writes: readers see the old file or the new one, never a torn one.

Files looprunner creates follow the process umask, as ``open()`` would make them
(``0666 & ~umask``: 0600 under ``umask 077``): the temporary file is created 0666 and the
kernel takes the umask off. :func:`current_umask` (for a launcher that hands the umask
on) reads it without changing it from ``/proc/self/status`` (its ``Umask:`` line, Linux
4.7+): ``os.umask`` can only be read by setting it, which is process-wide and races with
any thread creating a file at that instant. Where ``/proc`` does not say, it is read
once, with ``os.umask``, when this module is imported (before the engine starts threads).
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from looprunner.store.swap import put_in_place

TEMP_PREFIX = ".tmp-"
#: names tried for a temporary file before giving up (as many as ``tempfile`` tries)
_TEMP_ATTEMPTS = 100
_PROC_STATUS = Path("/proc/self/status")


def _proc_umask() -> int | None:
    try:
        with _PROC_STATUS.open(encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        return None
    return None


def _umask_at_import() -> int:
    found = _proc_umask()
    if found is not None:
        return found
    found = os.umask(0o022)
    os.umask(found)
    return found


_UMASK_AT_IMPORT = _umask_at_import()


def current_umask() -> int:
    """Return the process umask without changing it (see the module docstring)."""
    found = _proc_umask()
    return _UMASK_AT_IMPORT if found is None else found


def file_mode() -> int:
    """Return the mode a new file gets under the current umask (``0666 & ~umask``)."""
    return 0o666 & ~current_umask()


def write_atomic(
    path: Path, data: str | bytes, *, mode: int | None = None, durable: bool = True
) -> None:
    """Replace ``path`` with ``data`` atomically and durably.

    Writes a temporary file in the same folder, fsyncs it, puts it in place of ``path``
    (:func:`~looprunner.store.swap.put_in_place`: an exchange of the two names, or
    :func:`os.replace`), then fsyncs the folder so the change survives a power cut. A
    crash at any point leaves the previous file intact; a temporary file left behind by
    a crash is removed by :func:`sweep_temp_files`.

    ``durable=False`` skips both fsyncs: still atomic (never torn), but a power cut may
    bring back the previous version. For files that are rewritten when lost (an
    iteration's context.json is written again when the iteration re-runs).

    The file gets ``mode``, by default what the umask gives a new file (:func:`file_mode`).
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = _create_temp(path, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(raw)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        put_in_place(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            Path(tmp).unlink()
        # name the file being replaced, not its temporary file (or none, for a write)
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
    except BaseException:
        with contextlib.suppress(OSError):
            Path(tmp).unlink()
        raise
    if durable:
        fsync_dir(path.parent)


def _create_temp(path: Path, mode: int | None) -> tuple[int, Path]:
    """Create the temporary file next to ``path``: a new name, never through a symlink.

    Without ``mode`` it is created 0666 and the kernel takes the umask off, as ``open()``
    does: nothing to read from ``/proc`` and no ``chmod`` per write.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    for _ in range(_TEMP_ATTEMPTS):
        tmp = path.parent / f"{TEMP_PREFIX}{path.name}.{os.urandom(6).hex()}"
        try:
            fd = os.open(tmp, flags, 0o666 if mode is None else 0o600)
        except FileExistsError:
            continue
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        if mode is not None:
            try:
                os.fchmod(fd, mode)
            except BaseException:
                os.close(fd)
                tmp.unlink(missing_ok=True)
                raise
        return fd, tmp
    raise FileExistsError(errno.EEXIST, "no free temporary file name", str(path))


def write_new(path: Path, data: str | bytes) -> None:
    """Create ``path`` with ``data`` in one write: neither atomic nor fsynced.

    For a file in a folder the engine has just made, that nothing reads before this
    returns: an iteration's ``context.json``, read by the agent started after it. A crash
    mid-write leaves a short file in a folder the iteration's re-run removes first; so
    the file needs no temporary name and rename (two journal updates on ext4) of
    :func:`write_atomic`. Never through a symlink, never over an existing file
    (:class:`FileExistsError`); the mode is what the umask gives a new file.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(path, flags, 0o666)
    try:
        view = memoryview(raw)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries to disk (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def sweep_temp_files(folder: Path) -> list[Path]:
    """Remove temporary files crashed writers left in ``folder`` and below it.

    Only the holder of the session's lock calls this, so no live writer's file is taken.
    Returns what was removed.
    """
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for leftover in folder.rglob(TEMP_PREFIX + "*"):
        with contextlib.suppress(OSError):
            leftover.unlink()
            removed.append(leftover)
    return removed
