"""Flushing a file to disk on a thread of its own, while its writer goes on.

The engine fsyncs the event log once an iteration, when the iteration is recorded as
complete. The flush waits for the disk (a journal commit on ext4: a few tenths of a
millisecond on a quiet disk, more on a busy one) while the engine has the next
iteration's folder and ``context.json`` to make, files that are made again if lost. So
that write is handed to a flusher thread, and the writer waits for it — :meth:`Flush.wait`
— before anything that must come after it on disk: the next iteration's start, any
agent's start, the session's ending. A crash of the process loses nothing either way
(what was written is in the kernel); a power cut before the flush ends can lose the
iteration's completion, and then the iteration is run again, as if the cut had come a
moment earlier.

One flusher thread serves the whole process, started when first needed; a child made by
``fork`` starts its own.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from pathlib import Path


class Flush:
    """One file handed to the flusher: wait for it, then learn whether the disk took it."""

    __slots__ = ("_done", "error", "path")

    def __init__(self, path: Path) -> None:
        self.path = path
        self._done = threading.Event()
        #: what the disk said, naming the file (None: flushed)
        self.error: OSError | None = None

    def wait(self) -> None:
        """Return once the file is on disk; raise the flush's error, naming the file."""
        self._done.wait()
        if self.error is not None:
            raise self.error


_requests: queue.SimpleQueue[tuple[int, Flush]] = queue.SimpleQueue()
_started = False
_start_lock = threading.Lock()
#: flushes handed over and not done yet (a forked child is told they are the parent's)
_pending: set[Flush] = set()


def flush_later(fd: int, path: Path) -> Flush:
    """Hand ``fd`` (an open file of ``path``) to the flusher, which fsyncs and closes it.

    The caller gives up ``fd``: it must not use or close it again. Where no thread can be
    started (the process is at its limit), the file is flushed and closed here.
    """
    global _started
    flush = Flush(path)
    if not _started:
        with _start_lock:
            if not _started:
                try:
                    threading.Thread(target=_serve, name="looprunner-flusher", daemon=True).start()
                except RuntimeError:  # no thread to be had: flush now, as before
                    _flush(fd, flush)
                    return flush
                _started = True
    _pending.add(flush)
    _requests.put((fd, flush))
    return flush


def _flush(fd: int, flush: Flush) -> None:
    try:
        os.fsync(fd)
    except OSError as exc:
        flush.error = OSError(exc.errno, exc.strerror, str(flush.path))
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
        flush._done.set()


def _serve() -> None:
    while True:
        fd, flush = _requests.get()
        _flush(fd, flush)
        _pending.discard(flush)


def _after_fork() -> None:
    """Forget the parent's flusher in a forked child (it has no such thread).

    What the parent handed over is the parent's to flush: the child's copies of those
    flushes are done (with fresh events: the old ones' locks may be held by the parent's
    thread, which the child does not have).
    """
    global _requests, _started, _start_lock, _pending
    for flush in _pending:
        flush._done = threading.Event()
        flush._done.set()
    _requests = queue.SimpleQueue()
    _started = False
    _start_lock = threading.Lock()
    _pending = set()


os.register_at_fork(after_in_child=_after_fork)
