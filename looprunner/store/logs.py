"""Reading the end of a log, and following it, in work bounded by what is returned.

A log line can be arbitrarily long (an agent printing a minified bundle on one line), so
the readers from the end cap what one line may keep: :data:`MAX_LINE_BYTES`. A longer
line is returned as its last ``MAX_LINE_BYTES`` bytes behind :data:`TRUNCATED`, and the
look back stops at it, so ``last_lines(path, n)`` reads at most about
``n * (MAX_LINE_BYTES + BLOCK)`` bytes whatever the size of the file.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

BLOCK = 65536
#: the most of one line ``last_lines`` keeps (1 MiB); see the module docstring
MAX_LINE_BYTES = 1 << 20
#: put in front of a line cut to its last ``MAX_LINE_BYTES`` bytes
TRUNCATED = "[looprunner: line truncated, its last {kept} bytes follow] "
#: the most ``follow`` reads at once, so a huge append is yielded in pieces
FOLLOW_CHUNK = 1 << 20


def read_tail(path: Path, count: int, *, max_line: int | None = MAX_LINE_BYTES) -> list[bytes]:
    """Return the last ``count`` lines of a file as bytes, without their newlines.

    Reads backwards in blocks, kept in a list and joined once, so the work is linear in
    the bytes read. With ``max_line``, a line longer than that is cut to its last
    ``max_line`` bytes (prefixed with :data:`TRUNCATED`) and ends the look back, even if
    fewer than ``count`` lines were found; ``max_line=None`` reads whole lines (the event
    log, whose lines are only useful whole).
    """
    if count <= 0:
        return []
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return []
    blocks: list[bytes] = []
    newlines = 0
    open_line = 0  # bytes read of the oldest line, whose start is not found yet
    with handle:
        position = handle.seek(0, os.SEEK_END)
        # count + 1 newlines delimit count whole lines (a last line may end with one)
        while position > 0 and newlines <= count:
            step = min(BLOCK, position)
            position -= step
            handle.seek(position)
            block = handle.read(step)
            blocks.append(block)
            first = block.find(b"\n")
            if first < 0:
                open_line += len(block)
            else:
                newlines += block.count(b"\n")
                open_line = first
            if max_line is not None and open_line > max_line:
                break
    cut_short = position > 0 and newlines <= count  # the look back stopped inside a line
    lines = b"".join(reversed(blocks)).split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the file ends with a newline
    if position > 0 and not cut_short and lines:
        lines.pop(0)  # the partial line before the first newline read
    lines = lines[-count:]
    if max_line is not None:
        lines = [_cut(line, max_line) for line in lines]
    return lines


def _cut(line: bytes, max_line: int) -> bytes:
    if len(line) <= max_line:
        return line
    return TRUNCATED.format(kept=max_line).encode() + line[-max_line:]


def last_lines(path: Path, count: int) -> list[str]:
    """Return the last ``count`` lines of a file as text (see :func:`read_tail`)."""
    text: list[str] = []
    for raw in read_tail(path, count):
        text.extend(raw.decode("utf-8", "replace").splitlines() or [""])
    return text[-count:] if count > 0 else []


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
    catches what was written just before the end. A large append is yielded in pieces
    of at most :data:`FOLLOW_CHUNK` bytes.
    """
    while True:
        finished = done()
        current = size(path)
        if current < offset:  # the file was replaced: start over
            offset = 0
        if current > offset:
            with path.open("rb") as handle:
                handle.seek(offset)
                while offset < current:
                    chunk = handle.read(min(FOLLOW_CHUNK, current - offset))
                    if not chunk:
                        break
                    offset += len(chunk)
                    yield chunk
        if finished:
            return
        time.sleep(interval)
