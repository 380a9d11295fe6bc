"""Atomic file writes: readers see the old file or the new one, never a torn one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

TEMP_PREFIX = ".tmp-"


def write_atomic(path: Path, data: str | bytes, *, mode: int = 0o644, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically and durably.

    Writes a temporary file in the same folder, fsyncs it, renames it over ``path`` with
    :func:`os.replace`, then fsyncs the folder so the rename survives a power cut. A
    crash at any point leaves the previous file intact; a temporary file left behind by
    a crash is removed by :func:`sweep_temp_files`.

    ``durable=False`` skips both fsyncs: still atomic (never torn), but a power cut may
    bring back the previous version. For files that are rewritten when lost (an
    iteration's context.json is written again when the iteration re-runs).
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=TEMP_PREFIX + path.name + ".")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(raw)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        Path(tmp).chmod(mode)
        Path(tmp).replace(path)
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
