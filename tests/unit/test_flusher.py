"""The event log flushed on the flusher thread: what waits for it, and what its errors say.

An iteration's completion is flushed while the next iteration makes its folder and
context; nothing of that iteration's own (its start, its agent) comes before the flush.
The disk's refusal is injected by replacing ``os.fsync`` in the flusher thread only.
"""

from __future__ import annotations

import errno
import os
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from looprunner import Session, Stage
from looprunner.models import Health
from looprunner.store.events import EventLog, read_events
from tests.conftest import wait_until

AGENT = ("/bin/sh", "-c", 'printf \'{"decision":"continue"}\' > "$LOOPRUNNER_STATUS"')


def open_fds() -> set[str]:
    return {entry.name for entry in Path("/proc/self/fd").iterdir()}


def in_flusher() -> bool:
    return threading.current_thread().name == "looprunner-flusher"


@pytest.fixture
def held_disk(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """Hold every flush of the flusher thread until the event yielded is set."""
    release = threading.Event()
    real_fsync = os.fsync

    def slow_disk(fd: int) -> None:
        if in_flusher():
            assert release.wait(30), "the test released the disk"
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", slow_disk)
    yield release
    release.set()  # whatever the test did, the flusher is let go


def exit_code_in_child(action: Callable[[], None]) -> int:
    """Run ``action`` in a forked child; its exit code (0: it returned).

    A child that hangs (a settle waiting on a thread it does not have) is ended by an
    alarm, failing the test rather than hanging it.
    """
    pid = os.fork()
    if pid == 0:
        code = 1
        signal.alarm(30)
        try:
            action()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_an_event_appended_without_waiting_is_written_at_once_and_flushed_by_settle(
    tmp_path: Path,
) -> None:
    log = EventLog(tmp_path / "events.jsonl", "s")
    log.append("session_start")  # the log exists: later appends open it as usual
    before = open_fds()
    log.append("iteration_complete", iteration=1, wait=False)
    assert [e.type for e in read_events(log.path)] == ["session_start", "iteration_complete"]
    log.settle()
    assert open_fds() == before, "the flusher closed the log it was handed"
    log.settle()  # nothing left to wait for


def test_a_flush_the_disk_refuses_is_raised_by_settle_naming_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fsync = os.fsync

    def refusing(fd: int) -> None:
        if in_flusher():
            raise OSError(errno.EIO, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", refusing)
    log = EventLog(tmp_path / "events.jsonl", "s")
    log.append("iteration_complete", iteration=1, wait=False)
    log.append("iteration_complete", iteration=2, wait=False)
    with pytest.raises(OSError) as raised:
        log.settle()
    assert raised.value.errno == errno.EIO
    assert raised.value.filename == str(log.path)
    log.settle()  # said once; the lines themselves were written
    assert [e.iteration for e in read_events(log.path)] == [1, 2]


def test_the_next_iteration_waits_for_the_flush_of_the_last_one(
    tmp_path: Path, held_disk: threading.Event
) -> None:
    stage = Stage(
        name="cmd",
        provider="command",
        command=AGENT,
        prompt="x",
        termination={"type": "fixed", "iterations": 2},
    )
    session = Session.start("flush", stage, tmp_path, backend="inline", background=True)
    iterations = session.paths.stage_dir(0, "cmd") / "iterations"
    try:
        # the second iteration prepares while the first one's completion is being flushed
        wait_until(lambda: (iterations / "002" / "context.json").exists(), what="context")
        types = [(e.type, e.iteration) for e in read_events(session.paths.events_file)]
        assert ("iteration_complete", 1) in types
        assert ("iteration_start", 2) not in types, "iteration 2 began before the flush"
        assert not (iterations / "002" / "status.json").exists(), "its agent ran already"
    finally:
        held_disk.set()
    final = session.wait(timeout=60)
    assert final.health is Health.COMPLETE
    assert final.state is not None and final.state.iteration_completed == 2


def test_a_forked_child_flushes_with_a_flusher_of_its_own(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "events.jsonl", "s")
    log.append("iteration_complete", iteration=1, wait=False)
    log.settle()  # the parent's flusher is running now

    def child() -> None:  # a settle that waited on the parent's thread would hang
        child_log = EventLog(tmp_path / "child.jsonl", "c")
        child_log.append("iteration_complete", iteration=1, wait=False)
        child_log.settle()

    assert exit_code_in_child(child) == 0
    assert [e.type for e in read_events(tmp_path / "child.jsonl")] == ["iteration_complete"]
    # and the parent's own flusher still serves the parent
    log.append("iteration_complete", iteration=2, wait=False)
    log.settle()


def test_a_forked_child_does_not_wait_for_what_its_parent_is_flushing(
    tmp_path: Path, held_disk: threading.Event
) -> None:
    log = EventLog(tmp_path / "events.jsonl", "s")
    log.append("iteration_complete", iteration=1, wait=False)  # held by the slow disk
    try:
        # the parent's flusher is not in the child: that flush is the parent's
        code = exit_code_in_child(log.settle)
    finally:
        held_disk.set()
    assert code == 0
    log.settle()
