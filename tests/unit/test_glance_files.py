"""The quick look reads a session's files as the models do, or declines.

``looprunner.glance.files`` lays out paths with :mod:`os.path` and reads the lock, the
state and the end of the event log as plain data; each reader is checked here against
the models' own (``looprunner.names``, ``looprunner.store``) on the same files.
"""

from __future__ import annotations

import fcntl
import json
import os
import termios
import time

import pytest

from looprunner.glance import files
from looprunner.glance.backends import run, start
from looprunner.glance.look import Live
from looprunner.names import ProjectPaths
from looprunner.store.events import last_events
from looprunner.store.records import unstructure


@pytest.mark.parametrize("state_dir", [None, "state-here", "/abs/state", "~/home-state"])
def test_paths_are_laid_out_as_the_models_lay_them_out(tmp_path, monkeypatch, state_dir):
    if state_dir is None:
        monkeypatch.delenv("LOOPRUNNER_STATE_DIR", raising=False)
    else:
        monkeypatch.setenv("LOOPRUNNER_STATE_DIR", state_dir)
    models = ProjectPaths.of(tmp_path)
    plain = files.ProjectFiles(str(models.project))
    assert (plain.runs, plain.locks) == (str(models.runs), str(models.locks))
    session = models.session("auth")
    assert plain.run_dir("auth") == str(session.run_dir)
    assert plain.lock_file("auth") == str(session.lock_file)


def _event(seq: int, padding: int = 0) -> dict[str, object]:
    line: dict[str, object] = {
        "ts": "2026-11-30T00:00:00.000Z",
        "seq": seq,
        "type": "iteration_complete",
        "session": "s",
        "stage": "w",
        "iteration": seq,
        "data": {"summary": "x" * padding},
    }
    if seq % 2:
        line["state"] = {"iteration": seq}
    return line


def _as_recorded(event: dict[str, object]) -> dict[str, object]:
    return {"state": None, **event}


@pytest.mark.parametrize("lines", [0, 1, 3, 49, 50, 51, 400])
@pytest.mark.parametrize("padding", [0, 300, 5000])
@pytest.mark.parametrize("count", [1, 50])
def test_the_logs_last_events_are_the_models_last_events(tmp_path, lines, padding, count):
    log = tmp_path / "events.jsonl"
    log.write_text("".join(json.dumps(_event(n, padding)) + "\n" for n in range(1, lines + 1)))
    plain = files.last_events(str(log), count)
    assert [_as_recorded(e) for e in plain] == [unstructure(e) for e in last_events(log, count)]


def test_no_log_is_no_events(tmp_path):
    assert files.last_events(str(tmp_path / "events.jsonl"), 1) == []


@pytest.mark.parametrize(
    "ending",
    [b'{"ts": "2026-11-30T00:0', b"not json\n", b'{"seq": 9}\n', b"\n"],
    ids=["cut-by-a-crash", "not-json", "not-an-event", "blank-line"],
)
def test_a_log_that_does_not_end_in_whole_events_is_declined(tmp_path, ending):
    log = tmp_path / "events.jsonl"
    log.write_bytes(b"".join(json.dumps(_event(n)).encode() + b"\n" for n in (1, 2)) + ending)
    assert files.last_events(str(log), 1) is files.DECLINE


def test_no_lock_file_is_no_lock(tmp_path):
    assert files.read_lock(str(tmp_path / "s.lock")) is None


def test_a_lock_file_nobody_holds_is_declined(tmp_path):
    lock = tmp_path / "s.lock"
    lock.write_text('{"pid": 1}')
    assert files.read_lock(str(lock)) is files.DECLINE


def test_a_held_lock_gives_its_metadata(tmp_path):
    lock = tmp_path / "s.lock"
    lock.write_text('{"pid": 12, "session": "s"}' + " " * 100)
    with lock.open("rb") as holder:
        fcntl.flock(holder.fileno(), fcntl.LOCK_EX)
        assert files.read_lock(str(lock)) == {"pid": 12, "session": "s"}


def test_a_symlink_in_place_of_the_lock_is_declined(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("{}")
    (tmp_path / "s.lock").symlink_to(target)
    assert files.read_lock(str(tmp_path / "s.lock")) is files.DECLINE


def test_a_state_that_is_not_json_is_declined(tmp_path):
    state = tmp_path / "state.json"
    state.write_text("{not json")
    assert files.read_json(str(state)) is files.DECLINE
    assert files.read_json(str(tmp_path / "none.json")) is None


def test_a_program_gives_its_exit_code_and_both_outputs():
    code, out, err = run(["/bin/sh", "-c", "echo out; echo err >&2; exit 3"], 30) or (0, b"", b"")
    assert (code, out, err) == (3, b"out\n", b"err\n")


def test_a_program_that_outlives_the_timeout_is_killed(tmp_path):
    marker = tmp_path / "pid"
    assert run(["/bin/sh", "-c", f"echo $$ > {marker}; exec sleep 30"], 0.5) is None
    pid = int(marker.read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # reaped by run(): the pid no longer exists
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"pid {pid} still exists")


def test_a_program_that_cannot_start_is_no_answer(tmp_path):
    assert run([str(tmp_path / "no-such-program")], 5) is None


def test_a_large_output_is_read_whole():
    done = run(["/bin/sh", "-c", "head -c 300000 /dev/zero; head -c 70000 /dev/zero >&2"], 30)
    assert done is not None and (done[1], done[2]) == (b"\0" * 300000, b"\0" * 70000)


def test_a_started_program_runs_while_the_caller_works(tmp_path):
    """``start`` returns at once: the program waits for a file the caller makes after."""
    go = tmp_path / "go"
    waits = f'while [ ! -e "{go}" ]; do sleep 0.01; done; echo answered'
    started = start(["/bin/sh", "-c", waits], 30)
    assert started is not None
    go.touch()  # the caller's own work, done while the program runs
    assert started.finish() == (0, b"answered\n", b"")
    with pytest.raises(ChildProcessError):  # reaped
        os.waitpid(started.pid, os.WNOHANG)


def test_a_question_nobody_waited_for_is_collected(tmp_path, monkeypatch):
    """A listing that declines part way still reaps the tmux it asked (``Live.close``)."""
    monkeypatch.setenv("LOOPRUNNER_TMUX_SOCKET", f"lr-none-{os.getpid()}")  # no server
    live = Live(str(tmp_path))
    live.ask("tmux")
    live.ask("no-such-backend")  # only built-in backends are asked
    assert list(live.asked) == ["tmux"]
    live.close()
    assert live.asked == {}
    assert live.answers == {"tmux": set()}  # no server: no live session


def test_a_program_left_waiting_on_a_full_pipe_is_read_whole():
    """The timeout counts from the wait: a caller busier than it loses no answer."""
    started = start(["/bin/sh", "-c", "head -c 300000 /dev/zero"], 0.2)
    assert started is not None
    began, deadline = time.monotonic(), time.monotonic() + 30
    while time.monotonic() < deadline:  # the caller's work: longer than the timeout
        waiting = int.from_bytes(fcntl.ioctl(started.out, termios.FIONREAD, b"\0" * 4), "little")
        if waiting and time.monotonic() - began > 0.4:
            break  # the program has written, and the timeout has passed
        time.sleep(0.01)
    assert started.finish() == (0, b"\0" * 300000, b"")
