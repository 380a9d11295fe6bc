"""Reading the end of a log, and following it, in work bounded by what is returned.

A log line can be arbitrarily long (an agent printing a minified bundle on one line), so
the readers from the end cap what one line may keep: :data:`MAX_LINE_BYTES`. A longer
line is returned as its last ``MAX_LINE_BYTES`` bytes behind :data:`TRUNCATED`, and the
look back stops at it, so ``last_lines(path, n)`` reads at most about
``n * (MAX_LINE_BYTES + BLOCK)`` bytes whatever the size of the file.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from looprunner.errors import UnsafeFileError
from looprunner.store.safe import open_regular

BLOCK = 65536
#: the most of one line ``last_lines`` keeps (1 MiB); see the module docstring
MAX_LINE_BYTES = 1 << 20
#: put in front of a line cut to its last ``MAX_LINE_BYTES`` bytes
TRUNCATED = "[looprunner: line truncated, its last {kept} bytes follow] "
#: the most ``follow`` reads at once, so a huge append is yielded in pieces
FOLLOW_CHUNK = 1 << 20


def rotated(path: Path) -> Path:
    """Where a rotated log keeps its previous part (``engine.log`` → ``engine.log.1``)."""
    return path.with_name(path.name + ".1")


def _open_parts(path: Path, previous: Path | None) -> list[BinaryIO]:
    """Open the log and the part before it, newest first, as one stream read backwards.

    The log is opened first: rotated in between, the older part opened second is the
    same file (it is skipped), never one that misses what was just rotated. The older
    part is opened through :func:`~looprunner.store.safe.open_regular`, and left out
    when it is a symlink or not a regular file.
    """
    parts: list[BinaryIO] = []
    with contextlib.suppress(FileNotFoundError):
        parts.append(path.open("rb"))
    if previous is not None:
        try:
            older = os.fdopen(open_regular(previous, os.O_RDONLY), "rb")
        except (OSError, UnsafeFileError):
            return parts
        same = parts and _same(os.fstat(parts[0].fileno()), os.fstat(older.fileno()))
        if same:
            older.close()
        else:
            parts.append(older)
    return parts


def _same(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def read_tail(
    path: Path,
    count: int,
    *,
    max_line: int | None = MAX_LINE_BYTES,
    previous: Path | None = None,
) -> list[bytes]:
    """Return the last ``count`` lines of a file as bytes, without their newlines.

    Reads backwards in blocks, kept in a list and joined once, so the work is linear in
    the bytes read. With ``max_line``, a line longer than that is cut to its last
    ``max_line`` bytes (prefixed with :data:`TRUNCATED`) and ends the look back, even if
    fewer than ``count`` lines were found; ``max_line=None`` reads whole lines (the event
    log, whose lines are only useful whole). ``previous`` is the older part of a rotated
    log (:func:`rotated`): the look back goes on into it, as if the two were one file.
    """
    if count <= 0:
        return []
    parts = _open_parts(path, previous)
    blocks: list[bytes] = []
    newlines = 0
    open_line = 0  # bytes read of the oldest line, whose start is not found yet
    more = False  # whether bytes are left unread before the oldest block read
    try:
        for index, handle in enumerate(parts):
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
            more = position > 0 or any(_size_of(h) for h in parts[index + 1 :])
            if newlines > count or (max_line is not None and open_line > max_line):
                break
    finally:
        for handle in parts:
            handle.close()
    cut_short = more and newlines <= count  # the look back stopped inside a line
    lines = b"".join(reversed(blocks)).split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the file ends with a newline
    if more and not cut_short and lines:
        lines.pop(0)  # the partial line before the first newline read
    lines = lines[-count:]
    if max_line is not None:
        lines = [_cut(line, max_line) for line in lines]
    return lines


def _size_of(handle: BinaryIO) -> int:
    return os.fstat(handle.fileno()).st_size


def _cut(line: bytes, max_line: int) -> bytes:
    if len(line) <= max_line:
        return line
    return TRUNCATED.format(kept=max_line).encode() + line[-max_line:]


def last_lines(path: Path, count: int, *, previous: Path | None = None) -> list[str]:
    """Return the last ``count`` lines of a file as text (see :func:`read_tail`)."""
    text: list[str] = []
    for raw in read_tail(path, count, previous=previous):
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
    of at most :data:`FOLLOW_CHUNK` bytes. The file is kept open between looks: when
    another file takes its name (a rotated log), what was written to the old one before
    it was renamed is read to its end first, then the new one from its start.
    """
    handle: BinaryIO | None = None
    try:
        while True:
            finished = done()
            if handle is None:
                handle = _open_at(path, offset)
            if handle is not None:
                yield from _read_on(handle)
                if _replaced(handle, path):
                    yield from _read_on(handle)  # what came before the rename
                    handle.close()
                    handle = _open_at(path, 0)
                    if handle is not None:
                        yield from _read_on(handle)
            if finished:
                return
            time.sleep(interval)
    finally:
        if handle is not None:
            handle.close()


def _open_at(path: Path, offset: int) -> BinaryIO | None:
    """Open ``path`` at ``offset`` (at its start if it is shorter: it was replaced)."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return None
    handle.seek(offset if _size_of(handle) >= offset else 0)
    return handle


def _read_on(handle: BinaryIO) -> Iterator[bytes]:
    """Yield what the file holds past the handle's position, in bounded pieces."""
    if _size_of(handle) < handle.tell():  # truncated in place: start over
        handle.seek(0)
    while chunk := handle.read(FOLLOW_CHUNK):
        yield chunk


def _replaced(handle: BinaryIO, path: Path) -> bool:
    """Whether ``path`` now names another file than the one ``handle`` reads."""
    try:
        return not _same(os.fstat(handle.fileno()), path.stat())
    except FileNotFoundError:
        return False
