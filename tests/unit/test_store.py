"""The on-disk store: atomic files, the append-only event log, the session lock.

Other processes (writers, lock holders) are real subprocesses; the test waits for a line
they print, never for a fixed time.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from looprunner.engine.redact import Redactor
from looprunner.store.atomic import sweep_temp_files, write_atomic
from looprunner.store.events import EventLog, count_bad_lines, read_events
from looprunner.store.lock import SessionLock, probe, read_metadata
from tests.conftest import REPO, wait_until


def child_env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path}


@contextlib.contextmanager
def child(script: str, *args: str) -> Iterator[subprocess.Popen[str]]:
    """Run ``python -c script args...``; kill it (by its pid) if it is still running after."""
    proc = subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


def expect_line(proc: subprocess.Popen[str], expected: str) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == expected, f"child said {line!r}, expected {expected!r}"
    return line


def tell(proc: subprocess.Popen[str], command: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(command + "\n")
    proc.stdin.flush()


# --------------------------------------------------------------------------- atomic writes

WRITER = """
import json, sys
from pathlib import Path
from looprunner.store.atomic import write_atomic
target = Path(sys.argv[1])
n = 0
while True:
    n += 1
    write_atomic(target, json.dumps({"n": n, "pad": "x" * ((n % 40) * 8192)}))
    if n == 1:
        print("ready", flush=True)
"""


def test_sigkilled_writer_never_leaves_a_torn_file(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    seen: set[int] = set()

    def read_one() -> bool:
        data = json.loads(target.read_text())  # a torn file would raise here
        assert data["pad"] == "x" * ((data["n"] % 40) * 8192)
        seen.add(data["n"])
        return len(seen) >= 25

    with child(WRITER, str(target)) as writer:
        expect_line(writer, "ready")
        wait_until(read_one, interval=0.001, what="25 versions of the file")
        writer.send_signal(signal.SIGKILL)
        assert writer.wait(timeout=30) == -signal.SIGKILL
    read_one()  # whatever the kill interrupted, the file is old or new, never torn
    sweep_temp_files(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]
    read_one()


CRASH_BEFORE_RENAME = """
import os, pathlib, signal, sys
from looprunner.store import atomic
def crash(new, target):  # the machine dies between fsync and putting the file in place
    os.kill(os.getpid(), signal.SIGKILL)
atomic.put_in_place = crash
atomic.write_atomic(pathlib.Path(sys.argv[1]), '{"n": 2}')
"""
CRASH_AFTER_EXCHANGE = """
import os, pathlib, signal, sys
from looprunner.store.atomic import write_atomic
def crash(self, missing_ok=False):  # the names are exchanged, the old file not removed
    os.kill(os.getpid(), signal.SIGKILL)
pathlib.Path.unlink = crash
write_atomic(pathlib.Path(sys.argv[1]), '{"n": 2}')
"""


def test_crash_before_rename_keeps_the_old_file_and_sweep_removes_the_temp(
    tmp_path: Path,
) -> None:
    target = tmp_path / "state.json"
    write_atomic(target, '{"n": 1}')
    (tmp_path / "events.jsonl").write_text("{}\n")
    with child(CRASH_BEFORE_RENAME, str(target)) as crasher:
        assert crasher.wait(timeout=30) == -signal.SIGKILL
    assert json.loads(target.read_text()) == {"n": 1}
    leftovers = sorted(set(tmp_path.iterdir()) - {target, tmp_path / "events.jsonl"})
    assert len(leftovers) == 1, "the crash left its temporary file"
    assert leftovers[0].read_text() == '{"n": 2}'
    assert sweep_temp_files(tmp_path) == leftovers
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.jsonl", "state.json"]
    assert json.loads(target.read_text()) == {"n": 1}


def test_crash_after_the_exchange_has_the_new_file_and_sweep_removes_the_old(
    tmp_path: Path,
) -> None:
    target = tmp_path / "state.json"
    write_atomic(target, '{"n": 1}')
    with child(CRASH_AFTER_EXCHANGE, str(target)) as crasher:
        assert crasher.wait(timeout=30) == -signal.SIGKILL
    assert json.loads(target.read_text()) == {"n": 2}
    leftovers = sorted(set(tmp_path.iterdir()) - {target})
    assert [p.read_text() for p in leftovers] == ['{"n": 1}'], "the old file, under a temp name"
    assert sweep_temp_files(tmp_path) == leftovers
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_sweep_removes_only_temp_files(tmp_path: Path) -> None:
    keep = ["state.json", "notes.tmp", ".hidden", "tmp-state.json"]
    for name in keep:
        (tmp_path / name).write_text("x")
    (tmp_path / ".tmp-state.json.k3j4h5").write_text("{")
    assert [p.name for p in sweep_temp_files(tmp_path)] == [".tmp-state.json.k3j4h5"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(keep)


def test_sweep_of_a_missing_folder_is_empty(tmp_path: Path) -> None:
    assert sweep_temp_files(tmp_path / "nope") == []


def test_failed_write_keeps_nothing_behind(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    target.mkdir()
    (target / "inside").write_text("x")  # os.replace cannot put a file over this
    with pytest.raises(OSError):
        write_atomic(target, "{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_atomic_write_replaces_content_and_sets_the_mode(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    write_atomic(target, "first, and longer than the second\n")
    write_atomic(target, b"second\n")
    assert target.read_bytes() == b"second\n"
    assert target.stat().st_mode & 0o777 == 0o644
    write_atomic(target, "private", mode=0o600)
    assert target.stat().st_mode & 0o777 == 0o600


# --------------------------------------------------------------------------- event log


def test_events_are_numbered_from_one(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    log = EventLog(path, "auth")
    log.append("session_start")
    log.append("iteration_start", stage="work", iteration=1)
    log.append("iteration_complete", stage="work", iteration=1, data={"decision": "stop"})
    events = read_events(path)
    assert [e.seq for e in events] == [1, 2, 3]
    assert [e.type for e in events] == ["session_start", "iteration_start", "iteration_complete"]
    assert events[2].data == {"decision": "stop"}
    assert (events[1].stage, events[1].iteration) == ("work", 1)
    assert (events[0].stage, events[0].iteration) == (None, None)
    assert {e.session for e in events} == {"auth"}


def test_each_line_is_one_json_object_with_the_contract_fields(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    EventLog(path, "auth").append("stage_start", stage="plan", data={"n": 1})
    [line] = path.read_text().splitlines()
    data = json.loads(line)
    assert set(data) == {"ts", "seq", "type", "session", "stage", "iteration", "data"}
    ts = data["ts"]
    assert ts.endswith("Z")
    assert datetime.fromisoformat(ts.replace("Z", "+00:00")).utcoffset() == timedelta(0)


def test_a_new_writer_continues_the_sequence(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    first = EventLog(path, "auth")
    first.append("session_start")
    first.append("session_killed")
    EventLog(path, "auth").append("session_resumed")
    assert [e.seq for e in read_events(path)] == [1, 2, 3]


def test_torn_last_line_is_skipped_and_the_log_continues(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    log = EventLog(path, "auth")
    for kind in ("session_start", "stage_start", "iteration_start"):
        log.append(kind, stage="work")
    raw = path.read_bytes()
    last_start = raw.rstrip(b"\n").rfind(b"\n") + 1
    cut = last_start + (len(raw) - last_start) // 2
    with path.open("r+b") as handle:  # the writer died in the middle of event 3
        handle.truncate(cut)
    assert not path.read_bytes().endswith(b"\n")

    assert [e.seq for e in read_events(path)] == [1, 2]
    assert count_bad_lines(path) == 1

    resumed = EventLog(path, "auth")
    resumed.append("session_resumed")
    resumed.append("iteration_start", stage="work", iteration=1)
    events = read_events(path)
    assert [e.seq for e in events] == [1, 2, 3, 4]
    assert [e.type for e in events][2:] == ["session_resumed", "iteration_start"]
    assert count_bad_lines(path) == 1, "the torn bytes stay on a line of their own"
    lines = path.read_bytes().split(b"\n")
    assert lines[2] == raw[last_start:cut]
    assert path.read_bytes().endswith(b"\n")


def test_a_torn_line_longer_than_the_read_block_is_still_found(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    log = EventLog(path, "auth")
    log.append("session_start")
    log.append("iteration_complete", data={"summary": "x" * 300_000})
    with path.open("r+b") as handle:
        handle.truncate(path.stat().st_size - 100_000)
    EventLog(path, "auth").append("session_resumed")
    assert [(e.seq, e.type) for e in read_events(path)] == [
        (1, "session_start"),
        (2, "session_resumed"),
    ]
    assert count_bad_lines(path) == 1


def test_a_log_that_is_only_a_torn_line_starts_at_one(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'{"ts": "2024-05-01T10:00:00.000Z", "seq": 1, "ty')
    EventLog(path, "auth").append("session_start")
    assert [e.seq for e in read_events(path)] == [1]
    assert count_bad_lines(path) == 1


def test_foreign_and_blank_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    EventLog(path, "auth").append("session_start")
    with path.open("a") as handle:
        handle.write('\n[1, 2]\n"text"\n{"seq": "x"}\n')
    EventLog(path, "auth").append("session_complete")
    assert [e.seq for e in read_events(path)] == [1, 2]
    assert count_bad_lines(path) == 3


def test_missing_log_reads_as_empty(tmp_path: Path) -> None:
    assert read_events(tmp_path / "events.jsonl") == []
    assert count_bad_lines(tmp_path / "events.jsonl") == 0


def test_redaction_hook_keeps_secrets_out_of_the_log(tmp_path: Path) -> None:
    secret = "sk-live-0123456789abcdef"
    redact = Redactor({"OPENAI_API_KEY": secret})
    path = tmp_path / "events.jsonl"
    event = EventLog(path, "auth", redact=redact.data).append(
        "iteration_failed",
        data={"message": f"bad key {secret}", "details": [{"argv": ["agent", secret]}]},
    )
    assert secret.encode() not in path.read_bytes()
    assert event.data == {
        "message": "bad key [redacted:OPENAI_API_KEY]",
        "details": [{"argv": ["agent", "[redacted:OPENAI_API_KEY]"]}],
    }
    assert read_events(path)[0].data == event.data


# --------------------------------------------------------------------------- lock

HOLDER = """
import os, sys
from pathlib import Path
from looprunner.store.lock import SessionLock
lock = SessionLock(Path(sys.argv[1]))
if not lock.acquire(timeout=10):
    print("busy", flush=True)
    sys.exit(1)
lock.write_metadata({"session": "auth", "pid": os.getpid()})
print("locked", flush=True)
command = sys.stdin.readline().strip()
lock.release(remove=command == "remove")
print("released", flush=True)
sys.stdin.readline()
"""


def test_second_acquire_fails_while_another_process_holds_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "locks" / "auth.lock"
    with child(HOLDER, str(path)) as holder:
        expect_line(holder, "locked")
        mine = SessionLock(path)
        assert mine.acquire() is False
        assert mine.acquire(timeout=0.1) is False
        assert not mine.held
        seen = probe(path)
        assert (seen.present, seen.held) == (True, True)
        assert seen.metadata == {"session": "auth", "pid": holder.pid}
        assert probe(path).held, "probing does not disturb the holder"
        tell(holder, "keep")
        expect_line(holder, "released")
        assert mine.acquire() is True
        mine.release()


def test_lock_of_a_sigkilled_holder_is_free(tmp_path: Path) -> None:
    path = tmp_path / "locks" / "auth.lock"
    with child(HOLDER, str(path)) as holder:
        expect_line(holder, "locked")
        holder.send_signal(signal.SIGKILL)
        assert holder.wait(timeout=30) == -signal.SIGKILL
    seen = probe(path)
    assert (seen.present, seen.held) == (True, False), "stale: present but free"
    assert seen.metadata["pid"] == holder.pid, "the dead holder's metadata is still readable"
    mine = SessionLock(path)
    assert mine.acquire() is True
    assert probe(path).held
    mine.release()


def test_waiting_acquire_gets_the_lock_once_released(tmp_path: Path) -> None:
    path = tmp_path / "auth.lock"
    with child(HOLDER, str(path)) as holder:
        expect_line(holder, "locked")
        mine = SessionLock(path)
        assert mine.acquire() is False
        tell(holder, "keep")
        assert mine.acquire(timeout=30) is True
        expect_line(holder, "released")
        mine.release()


def test_a_holder_that_removes_the_file_leaves_it_free_for_the_next(tmp_path: Path) -> None:
    path = tmp_path / "auth.lock"
    with child(HOLDER, str(path)) as holder:
        expect_line(holder, "locked")
        tell(holder, "remove")
        expect_line(holder, "released")
        assert not path.exists()
        mine = SessionLock(path)
        assert mine.acquire() is True
        mine.release()


def test_release_with_remove_deletes_the_file(tmp_path: Path) -> None:
    path = tmp_path / "locks" / "auth.lock"
    lock = SessionLock(path)
    assert lock.acquire()
    assert lock.held
    lock.release(remove=True)
    assert not lock.held
    assert not path.exists()
    assert probe(path).present is False


def test_release_without_remove_keeps_a_free_file(tmp_path: Path) -> None:
    path = tmp_path / "auth.lock"
    lock = SessionLock(path)
    assert lock.acquire()
    lock.write_metadata({"session": "auth"})
    lock.release()
    seen = probe(path)
    assert (seen.present, seen.held, seen.metadata) == (True, False, {"session": "auth"})
    lock.release()  # a second release is harmless


def test_release_never_deletes_a_lock_file_someone_else_now_holds(tmp_path: Path) -> None:
    path = tmp_path / "auth.lock"
    old = SessionLock(path)
    assert old.acquire()
    path.unlink()  # someone removed the file under the old holder ...
    new = SessionLock(path)
    assert new.acquire(), "... so a new holder got a new file"
    assert not old.still_ours()
    assert new.still_ours()
    old.release(remove=True)
    assert path.exists()
    assert probe(path).held
    new.release(remove=True)
    assert not path.exists()


def test_two_lock_objects_in_one_process_exclude_each_other(tmp_path: Path) -> None:
    path = tmp_path / "auth.lock"
    first, second = SessionLock(path), SessionLock(path)
    assert first.acquire()
    assert not second.acquire()
    first.release()
    assert second.acquire()
    second.release()


def test_probe_of_a_missing_lock_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "locks" / "auth.lock"
    seen = probe(path)
    assert (seen.present, seen.held, seen.metadata) == (False, False, {})
    assert not path.parent.exists()


def test_probe_of_a_free_lock_leaves_it_free(tmp_path: Path) -> None:
    path = tmp_path / "auth.lock"
    path.write_text("not json")
    seen = probe(path)
    assert (seen.present, seen.held, seen.metadata) == (True, False, {})
    lock = SessionLock(path)
    assert lock.acquire()
    lock.release()


def test_metadata_rewrite_leaves_no_trailing_bytes(tmp_path: Path) -> None:
    path = tmp_path / "auth.lock"
    lock = SessionLock(path)
    assert lock.acquire()
    lock.write_metadata({"session": "auth", "host": "a-very-long-host-name" * 10})
    lock.write_metadata({"session": "auth"})
    assert read_metadata(path) == {"session": "auth"}
    assert probe(path).metadata == {"session": "auth"}
    lock.release()


def test_metadata_needs_the_lock(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        SessionLock(tmp_path / "auth.lock").write_metadata({"session": "auth"})


HOLDER_WITH_CHILD = """
import subprocess, sys
from pathlib import Path
from looprunner.store.lock import SessionLock
lock = SessionLock(Path(sys.argv[1]))
assert lock.acquire()
agent = subprocess.Popen(
    [sys.executable, "-c", "import time; time.sleep(120)"], close_fds=False
)
print(agent.pid, flush=True)
print("locked", flush=True)
sys.stdin.readline()
"""


def test_lock_is_not_inherited_by_child_processes(tmp_path: Path) -> None:
    path = tmp_path / "auth.lock"
    agent_pid: int | None = None
    try:
        with child(HOLDER_WITH_CHILD, str(path)) as holder:
            assert holder.stdout is not None
            agent_pid = int(holder.stdout.readline())
            expect_line(holder, "locked")
            assert probe(path).held
            holder.send_signal(signal.SIGKILL)  # the engine dies; its agent lives on
            holder.wait(timeout=30)
        os.kill(agent_pid, 0)  # the agent is still running ...
        assert probe(path).held is False, "... and must not keep the session locked"
        mine = SessionLock(path)
        assert mine.acquire()
        mine.release()
    finally:
        if agent_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(agent_pid, signal.SIGKILL)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_lock_descriptor_is_not_inheritable(tmp_path: Path) -> None:
    lock = SessionLock(tmp_path / "auth.lock")
    assert lock.acquire()
    try:
        mine = [
            int(link.name)
            for link in Path("/proc/self/fd").iterdir()
            if _points_to(link, lock.path)
        ]
        assert mine, "the lock file is open while held"
        assert not any(os.get_inheritable(fd) for fd in mine)
    finally:
        lock.release()


def _points_to(link: Path, path: Path) -> bool:
    try:
        return link.readlink() == path
    except OSError:
        return False
