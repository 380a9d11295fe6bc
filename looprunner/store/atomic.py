"""Atomic file writes: readers see the old file or the new one, never a torn one.

Files looprunner creates follow the process umask, as ``open()`` would make them
(``0666 & ~umask``: 0600 under ``umask 077``). ``mkstemp`` always creates 0600, so the
mode is computed from the umask and set on the temp file. The umask is read without
changing it from ``/proc/self/status`` (its ``Umask:`` line, Linux 4.7+) on every write:
``os.umask`` can only be read by setting it, which is process-wide and races with any
thread creating a file at that instant. Where ``/proc`` does not say, it is read once,
with ``os.umask``, when this module is imported (before the engine starts threads).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

TEMP_PREFIX = ".tmp-"
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

    Writes a temporary file in the same folder, fsyncs it, renames it over ``path`` with
    :func:`os.replace`, then fsyncs the folder so the rename survives a power cut. A
    crash at any point leaves the previous file intact; a temporary file left behind by
    a crash is removed by :func:`sweep_temp_files`.

    ``durable=False`` skips both fsyncs: still atomic (never torn), but a power cut may
    bring back the previous version. For files that are rewritten when lost (an
    iteration's context.json is written again when the iteration re-runs).

    The file gets ``mode``, by default what the umask gives a new file (:func:`file_mode`).
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=TEMP_PREFIX + path.name + ".")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), file_mode() if mode is None else mode)
            handle.write(raw)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        Path(tmp).replace(path)
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
