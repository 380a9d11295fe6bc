"""Reading the end of a log, and following it, in time independent of its size."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

BLOCK = 65536


def last_lines(path: Path, count: int) -> list[str]:
    """Return the last ``count`` lines of a file, reading backwards from its end."""
    if count <= 0:
        return []
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return []
    with handle:
        handle.seek(0, os.SEEK_END)
        position = handle.tell()
        data = b""
        while position > 0 and data.count(b"\n") <= count:
            step = min(BLOCK, position)
            position -= step
            handle.seek(position)
            data = handle.read(step) + data
    lines = data.decode("utf-8", "replace").splitlines()
    return lines[-count:]


def size(path: Path) -> int:
    """Return the file's size, 0 if it does not exist."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def follow(
    path: Path,
    *,
    offset: int,
    done: Callable[[], bool],
    interval: float = 0.25,
) -> Iterator[bytes]:
    """Yield what is appended to ``path`` after ``offset`` until ``done()`` says stop.

    Waits between looks instead of spinning; the last look after ``done()`` turns true
    catches what was written just before the end.
    """
    while True:
        finished = done()
        current = size(path)
        if current < offset:  # the file was replaced: start over
            offset = 0
        if current > offset:
            with path.open("rb") as handle:
                handle.seek(offset)
                chunk = handle.read(current - offset)
            offset += len(chunk)
            yield chunk
        if finished:
            return
        time.sleep(interval)
