"""What the engine writes: state.json, the event log, engine.log — and the lifecycle hooks.

One object per engine, so the rule "state before its event" and the redaction of
everything written live in one place. Only the engine holding the session's lock uses it.

The event log is the durable record: every event appended through a recorder carries
what changed in the state since the last one (:mod:`looprunner.store.projection`), and
state.json is written atomically but not fsynced. A state file lost or rolled back by a
power cut is rebuilt from the log by whoever reads it.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import sys
import threading
from collections.abc import Mapping
from typing import Any, TextIO

import attrs

from looprunner import convert, procinfo
from looprunner._version import __version__
from looprunner.engine import faults
from looprunner.engine.redact import Redactor, StreamRedactor
from looprunner.models import Event, RunError, RunState, RunStatus, events
from looprunner.names import SessionPaths
from looprunner.plugins.calls import call_lifecycle
from looprunner.plugins.registry import Registries
from looprunner.protocols import SessionView
from looprunner.store.endings import record_ending
from looprunner.store.enginelog import LogWriter
from looprunner.store.events import EventLog, TaggedEventLog, utc_now
from looprunner.store.projection import state_patch
from looprunner.store.state import write_state_data


class RecordingLog(EventLog):
    """The event log as one recorder appends to it: each event carries the state's change.

    The change is what the recorder last *wrote* to state.json (:attr:`Recorder.written`)
    against what the log already records for its stream (:attr:`Recorder.logged`): the
    state is written before the event that records it, so a crash never leaves the log
    ahead of the state file, and applying every event's change in order gives the state
    written last before the latest event.
    """

    def __init__(self, inner: EventLog, recorder: Recorder) -> None:
        super().__init__(inner.path, inner.session)
        self.inner = inner
        self.recorder = recorder

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
        """Append one event with what changed in the recorder's state since the last."""
        rec = self.recorder
        now = rec.written
        if state is None and now is not None and rec.logged is not None:
            state = state_patch(rec.logged, now)
        event = self.inner.append(
            type,
            stage=stage,
            iteration=iteration,
            data=data,
            durable=durable,
            state=state,
            wait=wait,
        )
        if now is not None:
            rec.logged = now
        return event

    def settle(self) -> None:
        """Wait for the log's flushes (see :meth:`EventLog.settle`)."""
        self.inner.settle()

    @property
    def last_seq(self) -> int:
        """The number of the session log's last event."""
        return self.inner.last_seq


class Recorder:
    """Writes one session's state, events and log, redacting secrets from all three."""

    def __init__(
        self,
        paths: SessionPaths,
        *,
        env: Mapping[str, str],
        registries: Registries,
        session_view: SessionView,
        out: TextIO | None = None,
    ) -> None:
        self.paths = paths
        self.redactor = Redactor(env)
        #: agents' output comes in chunks: a secret split over two is still caught
        self._stream = StreamRedactor(self.redactor)
        #: the session's event log itself, shared with the recorders of its branches
        self.raw_events = EventLog(paths.events_file, paths.name, redact=self.redactor.data)
        #: the state the log records for this recorder's stream, unstructured (None: the
        #: log carries no state for it — a session an older version started)
        self.logged: dict[str, Any] | None = {}
        #: the state as last written to state.json, unstructured (None: not yet)
        self.written: dict[str, Any] | None = None
        #: the log as this recorder's stream (a branch's events are tagged with it)
        self.stream_log: EventLog = self.raw_events
        self.events: EventLog = RecordingLog(self.stream_log, self)
        self.registries = registries
        self.session_view = session_view
        self.out = out if out is not None else sys.stdout
        self.state: RunState | None = None
        self._log = LogWriter(paths.engine_log)
        self._log_lock = threading.Lock()
        #: the branch this recorder writes for (None: the session itself)
        self.branch_name: str | None = None
        #: what every event this recorder appends says of its branch (empty: none)
        self.event_tags: dict[str, str] = {}

    def branch(self, paths: SessionPaths, name: str, block: str) -> Recorder:
        """Return a recorder for branch ``name`` of a block, for the branch's own thread.

        It writes the branch's ``state.json`` (under ``paths``), appends to the session's
        event log with ``data.provider`` and ``data.block`` set, and writes to the
        session's engine.log with lines marked ``[name]``; secrets are redacted as
        everywhere.
        """
        child = copy.copy(self)
        child.paths = paths
        child.state = None
        child._stream = StreamRedactor(self.redactor)
        child.event_tags = {"provider": name, "block": block}
        child.logged = {}
        child.written = None
        child.stream_log = TaggedEventLog(self.raw_events, child.event_tags)
        child.events = RecordingLog(child.stream_log, child)
        child.branch_name = name
        return child

    # ------------------------------------------------------------------ state

    @property
    def current(self) -> RunState:
        """The state as last recorded (the engine has always recorded one by now)."""
        assert self.state is not None, "the engine records its state first thing"
        return self.state

    def save(self, *, keep_previous: bool = False, **changes: Any) -> None:
        """Write ``changes`` to the state file (atomically, not fsynced).

        The next event appended through :attr:`events` records them in the log, and the
        state file names that event (``seq``: the log's next number), so a reader can
        tell it from a state the log has moved past.
        """
        self.state = attrs.evolve(
            self.current, updated_at=utc_now(), seq=self.events.last_seq + 1, **changes
        )
        written = convert.unstructure(self.state)
        write_state_data(self.paths.state_file, written, keep_previous=keep_previous)
        self.written = written

    def agent_started(self, pid: int, mark: str) -> None:
        """Record the running agent, so what it leaves can be found if this engine dies.

        Bookkeeping, not history: no event records it.
        """
        self.save(
            agent_pid=pid,
            agent_start_time=procinfo.start_time(pid),
            agent_mark=mark,
        )

    def agent_ended(self) -> None:
        """Forget the agent (in memory: the next save writes it)."""
        self.state = attrs.evolve(
            self.current, agent_pid=None, agent_start_time=None, agent_mark=None
        )

    def set_stage(self, index: int, **changes: Any) -> None:
        """Change node ``index``'s entry in memory (the next :meth:`save` writes it)."""
        stage = attrs.evolve(self.current.stages[index], **changes)
        self.state = self.current.with_stage(index, stage)

    def end(
        self,
        status: RunStatus,
        *,
        reason: str | None = None,
        error: RunError | None = None,
    ) -> RunState:
        """Finish the session as ``status`` (state, then its event); return the final state."""
        if error is not None:
            error = RunError(error.type, self.redactor.text(error.message), error.iteration)
        # the ending's own flush covers the whole log; a flush the disk refused before it
        # is the disk refusing this one too
        with contextlib.suppress(OSError):
            self.raw_events.settle()
        self.state = record_ending(
            self.paths.state_file,
            self.stream_log,
            self.current,
            status,
            reason=reason,
            error=error,
            logged=self.logged,
            between=lambda: faults.checkpoint("ending_written", self.current.iteration),
        )
        self.logged = self.written = convert.unstructure(self.state)
        return self.state

    # ------------------------------------------------------------------ identity

    def identity(self) -> dict[str, Any]:
        """Return the engine's pid, start time, host, boot and version."""
        pid = os.getpid()
        return {
            "pid": pid,
            "pid_start_time": procinfo.start_time(pid),
            "host": procinfo.hostname(),
            "boot_id": procinfo.boot_id(),
            "version": __version__,
        }

    def lock_metadata(self, backend: str) -> dict[str, Any]:
        """Return what the lock file says of the engine holding it."""
        identity = self.identity()
        return {
            "session": self.paths.name,
            "pid": identity["pid"],
            "pid_start_time": identity["pid_start_time"],
            "host": identity["host"],
            "boot_id": identity["boot_id"],
            "started_at": utc_now(),
            "backend": backend,
            "version": __version__,
        }

    # ------------------------------------------------------------------ hooks

    def hook(self, name: str, **kwargs: Any) -> None:
        """Call a lifecycle hook; a plugin that raises is reported, never fatal."""

        def report(plugin: str, hook: str, exc: BaseException) -> None:
            message = f"{type(exc).__name__}: {exc}"
            self.log(f"plugin {plugin} failed in {hook}: {message}")
            with contextlib.suppress(OSError):  # a disk that refuses it: engine.log says it
                self.events.append(
                    events.HOOK_ERROR, data={"plugin": plugin, "hook": hook, "error": message}
                )

        call_lifecycle(self.registries.pm, name, report, session=self.session_view, **kwargs)

    # ------------------------------------------------------------------ engine.log

    def open_log(self) -> None:
        """Open engine.log for appending (the run folder is made if missing).

        Never through a symlink, nor into a FIFO or device put in its place
        (:class:`~looprunner.errors.UnsafeFileError`). A log that cannot be written (a
        full disk, a read-only folder) does not stop the engine
        (:class:`~looprunner.store.enginelog.LogWriter`).
        """
        with contextlib.suppress(OSError):  # a folder that cannot be made: the log says why
            self.paths.run_dir.mkdir(parents=True, exist_ok=True)
        self._log.open()

    def close_log(self) -> None:
        """Close engine.log (after writing any output still held back)."""
        self.end_output()
        self._log.close()

    def write_out(self, text: str) -> None:
        """Write what an agent printed to engine.log and the engine's output, redacted.

        Redacted as a stream: the end of ``text`` that could be the start of a secret is
        held back until the next call decides it, or until :meth:`end_output`.
        """
        with self._log_lock:
            self._write(self._stream.feed(text))

    def end_output(self) -> None:
        """Write what :meth:`write_out` held back: an agent's output has ended."""
        with self._log_lock:
            self._write(self._stream.flush())

    def _write(self, text: str) -> None:
        if text:
            self._log.write(text.encode("utf-8", "replace"))
            with contextlib.suppress(OSError, ValueError):
                self.out.write(text)
                self.out.flush()

    def log(self, message: str) -> None:
        """Write one line of the engine's own to engine.log (whole, so redacted whole)."""
        stamp = utc_now()[11:19]
        where = f"[{self.branch_name}] " if self.branch_name else ""
        line = self.redactor.text(f"[looprunner {stamp}] {where}{message}\n")
        with self._log_lock:
            self._write(line)


class EngineLogHandler(logging.Handler):
    """Puts what plugins log (``logging``, level INFO and up) into engine.log, redacted."""

    def __init__(self, recorder: Recorder) -> None:
        super().__init__(level=logging.INFO)
        self.recorder = recorder

    def emit(self, record: logging.LogRecord) -> None:
        """Write one plugin log record to engine.log."""
        try:
            self.recorder.log(f"{record.name}: {record.getMessage()}")
        except Exception:  # logging must never break the engine
            self.handleError(record)
