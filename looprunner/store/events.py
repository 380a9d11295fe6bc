"""``events.jsonl``: the append-only history, one JSON object a line.

The engine is the only writer (it holds the session lock), so sequence numbers are
assigned here without coordination. Readers never lock; a torn last line (the writer
died mid-line) is skipped, and the next append starts on a fresh line so the torn bytes
never merge into a good event.
"""

from __future__ import annotations

import errno
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from looprunner.models import Event
from looprunner.store.atomic import fsync_dir
from looprunner.store.flusher import Flush, flush_later
from looprunner.store.records import event_from_dict
from looprunner.store.safe import open_regular

Redact = Callable[[Any], Any]


def utc_now() -> str:
    """Return the current UTC time as ISO-8601 with milliseconds (``...T12:00:00.123Z``).

    Built from :func:`time.time` rather than a ``datetime``: the engine stamps several
    records an iteration, and this is a third of the cost.
    """
    now = time.time()
    seconds = int(now)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{stamp}.{int((now - seconds) * 1000):03d}Z"


def _ends_with_newline(path: Path) -> bool:
    """Whether the file is empty or ends with a newline (reads one byte, not the line)."""
    try:
        with os.fdopen(open_regular(path, os.O_RDONLY), "rb") as handle:
            end = handle.seek(0, os.SEEK_END)
            if end == 0:
                return True
            handle.seek(end - 1)
            return handle.read(1) == b"\n"
    except FileNotFoundError:
        return True


class EventLog:
    """Appends events for one session and reads them back."""

    def __init__(self, path: Path, session: str, *, redact: Redact | None = None) -> None:
        self.path = path
        self.session = session
        self._redact = redact
        self._seq: int | None = None
        self._checked_tail = False
        # the branches of a parallel block record from threads of one engine
        self._lock = threading.Lock()
        #: events appended with ``wait=False`` whose flush :meth:`settle` has not seen
        self._flushes: list[Flush] = []

    def _next_seq(self) -> int:
        if self._seq is None:
            last = last_events(self.path, 1)
            self._seq = last[-1].seq if last else 0
        self._seq += 1
        return self._seq

    def append(
        self,
        type: str,
        *,
        stage: str | None = None,
        iteration: int | None = None,
        data: dict[str, Any] | None = None,
        durable: bool = True,
        state: dict[str, Any] | None = None,
        wait: bool = True,
    ) -> Event:
        """Append one event, flushed to disk before returning unless ``durable=False``.

        A non-durable event is still written whole (one ``write``), and reaches the disk
        with the next durable one at the latest. A durable one appended with
        ``wait=False`` is flushed by the flusher thread (:mod:`looprunner.store.flusher`)
        while the caller goes on; :meth:`settle` waits for it. ``state`` is what the
        event changed in state.json (:mod:`looprunner.store.projection`).
        """
        payload = dict(data or {})
        if self._redact is not None:
            payload = self._redact(payload)
            if state is not None:
                state = self._redact(state)
        with self._lock:
            return self._append(type, stage, iteration, payload, durable, state or None, wait)

    def settle(self) -> None:
        """Return once every event appended with ``wait=False`` is on disk.

        Raises the first flush's error (an :class:`OSError` naming the log), after
        waiting for them all.
        """
        # Every caller waits for every flush handed over before its call, and only then
        # forgets them: the branches of a parallel block settle from threads of their
        # own, and one branch taking the flushes away would let another start early.
        with self._lock:
            flushes = list(self._flushes)
        error: OSError | None = None
        for flush in flushes:
            try:
                flush.wait()
            except OSError as exc:
                error = error or exc
        done = set(flushes)
        with self._lock:
            self._flushes = [flush for flush in self._flushes if flush not in done]
        if error is not None:
            raise error

    @property
    def last_seq(self) -> int:
        """The number of the last event in the log (0: none yet)."""
        with self._lock:
            if self._seq is None:
                last = last_events(self.path, 1)
                self._seq = last[-1].seq if last else 0
            return self._seq

    def _append(
        self,
        type: str,
        stage: str | None,
        iteration: int | None,
        payload: dict[str, Any],
        durable: bool,
        state: dict[str, Any] | None = None,
        wait: bool = True,
    ) -> Event:
        event = Event(
            ts=utc_now(),
            seq=self._next_seq(),
            type=type,
            session=self.session,
            stage=stage,
            iteration=iteration,
            data=payload,
            state=state,
        )
        from looprunner import convert  # the engine's: commands that only read never load it

        line = convert.event_to_json(event).encode() + b"\n"
        if not self._checked_tail:
            # Only the first append can follow a torn line (a previous engine's crash, or
            # a write the disk cut short); after that this object always ends lines itself.
            if not _ends_with_newline(self.path):
                line = b"\n" + line  # the torn line stays on its own and readers skip it
            self._checked_tail = True
        self._write(line, seq=event.seq, durable=durable, wait=wait)
        return event

    def _write(self, line: bytes, *, seq: int, durable: bool, wait: bool = True) -> None:
        """Append ``line`` in one write, or raise (naming the file) if the disk refuses it.

        A line the disk refused, or took only part of, is not logged: its number goes to
        the next event, which starts on a fresh line.
        """
        # 0o666: the umask decides what others may read, as for every file we create
        # never through a symlink or into a FIFO someone put in its place
        new = durable and not self.path.exists()
        try:
            fd = open_regular(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        except OSError:
            self._seq = seq - 1
            raise
        try:
            try:
                _write_whole(fd, line)
            except OSError:
                self._seq = seq - 1
                self._checked_tail = False  # part of the line may be there: end it first
                raise
            if durable and not wait:
                self._flushes.append(flush_later(fd, self.path))  # it closes the file
                fd = -1
            elif durable:
                os.fsync(fd)
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, str(self.path)) from exc
        finally:
            if fd >= 0:
                os.close(fd)
        if new:  # the log's own entry in its folder: once, when the log is made
            fsync_dir(self.path.parent)


def _write_whole(fd: int, line: bytes) -> None:
    """Write ``line`` in one ``write``; a full disk that takes only part of it is an error."""
    if os.write(fd, line) < len(line):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class TaggedEventLog(EventLog):
    """The session's event log as one branch writes it: every event names the branch.

    It appends through the session's :class:`EventLog`, so sequence numbers stay one
    series however many branches record at once.
    """

    def __init__(self, inner: EventLog, tags: dict[str, str]) -> None:
        super().__init__(inner.path, inner.session)
        self.inner = inner
        self.tags = dict(tags)

    def append(
        self,
        type: str,
        *,
        stage: str | None = None,
        iteration: int | None = None,
        data: dict[str, Any] | None = None,
        durable: bool = True,
        state: dict[str, Any] | None = None,
        wait: bool = True,
    ) -> Event:
        """Append one event with the branch's tags added to its data."""
        return self.inner.append(
            type,
            stage=stage,
            iteration=iteration,
            data={**(data or {}), **self.tags},
            durable=durable,
            state=state,
            wait=wait,
        )

    def settle(self) -> None:
        """Wait for the session log's flushes (see :meth:`EventLog.settle`)."""
        self.inner.settle()

    @property
    def last_seq(self) -> int:
        """The number of the session log's last event."""
        return self.inner.last_seq


def parse_event_line(raw: bytes) -> Event | None:
    """Parse one line; None for a torn or foreign line."""
    try:
        data = json.loads(raw)
        return event_from_dict(data) if isinstance(data, dict) else None
    except Exception:
        return None


def iter_events(path: Path) -> Iterator[Event]:
    """Yield the events in the log, skipping lines that do not parse (a torn last line)."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return
    with handle:
        for raw in handle:
            if not raw.strip():
                continue
            event = parse_event_line(raw)
            if event is not None:
                yield event


def last_events(path: Path, count: int) -> list[Event]:
    """Return the last ``count`` readable events, reading from the end of the file.

    Costs the same for a log of a thousand lines or of a gigabyte: the work is linear in
    the bytes of the lines read. Event lines are read whole, however long (an event is
    only useful whole, and the next sequence number is read from the last one).
    """
    from looprunner.store.logs import read_tail

    if count <= 0:
        return []
    wanted = count
    while True:
        # one line more than wanted tells whether the file holds more lines than these
        lines = read_tail(path, wanted + 1, max_line=None)
        events: list[Event] = []
        for raw in reversed(lines):  # from the end: parse only the lines that are needed
            event = parse_event_line(raw)
            if event is not None:
                events.append(event)
                if len(events) == count:
                    return events[::-1]
        if len(lines) <= wanted:
            return events[::-1]
        wanted *= 2  # torn or foreign lines were among them: read a little further back


def read_events(path: Path) -> list[Event]:
    """Return every readable event in order."""
    return list(iter_events(path))


def count_bad_lines(path: Path) -> int:
    """Count lines that are not valid events (torn writes), for reporting."""
    try:
        with path.open("rb") as handle:
            return sum(1 for raw in handle if raw.strip() and parse_event_line(raw) is None)
    except FileNotFoundError:
        return 0
