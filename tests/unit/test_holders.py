"""Who holds a lock (store/holders.py) and the engine's claim on its launch record."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from looprunner import Pipeline, Stage, convert, procinfo
from looprunner.names import ProjectPaths
from looprunner.store import holders
from looprunner.store.lock import SessionLock, read_metadata
from looprunner.testing import write_stage

HOLD = (
    "import fcntl, os, sys\n"
    "fd = os.open(sys.argv[1], os.O_RDONLY)\n"
    "fcntl.flock(fd, fcntl.LOCK_SH)\n"
    "print('held', flush=True)\n"
    "sys.stdin.read()\n"
)


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A lock file and the pid of another process holding a shared flock on it."""
    lock = tmp_path / "s.lock"
    lock.write_text("{}")
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(lock)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    yield lock, proc.pid
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait(timeout=30)
    proc.stdout.close()


def test_proc_locks_names_the_holder_of_a_file_and_only_of_that_file(holder, tmp_path) -> None:
    lock, pid = holder
    info = lock.stat()
    assert procinfo.flock_holders(info.st_dev, info.st_ino) == [pid]
    other = tmp_path / "other.lock"
    other.write_text("")
    assert procinfo.flock_holders(other.stat().st_dev, other.stat().st_ino) == []


def test_a_stranger_holding_a_stale_lock_file_is_foreign_and_not_ours(holder) -> None:
    lock, pid = holder
    view = holders.look(lock)
    assert not view.ours and not view.probe.held  # a shared lock: the probe cannot see it
    assert view.foreign == holders.Foreign(pid, procinfo.owner(pid))
    assert f"held by pid {pid} (user " in view.foreign.sentence(lock)


def test_our_own_lock_is_never_foreign(tmp_path: Path) -> None:
    lock = SessionLock(tmp_path / "s.lock")
    assert lock.acquire()
    try:
        assert holders.foreign_holder(lock.path, {}) is None
    finally:
        lock.release()


def test_a_launch_record_of_a_live_launcher_is_pending_held_or_not(tmp_path: Path) -> None:
    lock = SessionLock(tmp_path / "s.lock")
    assert lock.acquire()
    token = holders.new_launch(lock, resumes=None)
    lock.release()  # the gap: the launcher let go, its engine has not taken it yet
    record = holders.launch_of(read_metadata(lock.path))
    assert record is not None and record["token"] == token
    view = holders.look(lock.path)
    assert view.ours and view.launching == record["pid"] and view.foreign is None


def test_a_launch_record_whose_launcher_died_or_that_is_old_is_not_pending(tmp_path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    now = datetime.now(UTC)
    record = {"token": "t", "pid": int(dead.stdout), "at": now.isoformat()}
    assert holders.pending_launch({"launch": record}) is None
    mine = procinfo.start_time(os.getpid())
    old = now - timedelta(seconds=holders.LAUNCH_PATIENCE + 1)
    stale = {"token": "t", "pid": os.getpid(), "pid_start_time": mine}
    assert holders.pending_launch({"launch": {**stale, "at": old.isoformat()}}) is None
    assert holders.pending_launch({"launch": {**stale, "at": now.isoformat()}}) is not None


# --------------------------------------------------------------------------- the engine


def engine(project: Path, name: str, *extra: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "looprunner", "--project", str(project), "engine"]
    argv += ["--session", name, "--backend", "inline", *extra]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


def prepared(project: Path, name: str) -> Path:
    """A run folder with its pipeline.yaml, as a launcher leaves it for its engine."""
    write_stage(project, "work", termination={"type": "fixed", "iterations": 1})
    paths = ProjectPaths.of(project).session(name)
    paths.run_dir.mkdir(parents=True)
    pipeline = Pipeline.loop(Stage.load("work", project=project))
    paths.pipeline_file.write_text(convert.dump_pipeline(pipeline))
    return paths.run_dir


def test_an_engine_whose_launch_record_is_gone_runs_nothing(tmp_path: Path) -> None:
    project = tmp_path / "p"
    run_dir = prepared(project, "gone")
    # what kill leaves after overtaking a launch: no lock file, so no record of it
    result = engine(project, "gone", "--launch-token", "0123")
    assert result.returncode == 3, result.stdout + result.stderr
    assert "its launch was overtaken" in result.stdout
    assert sorted(p.name for p in run_dir.iterdir()) == ["pipeline.yaml"], "nothing written"
    assert not ProjectPaths.of(project).session("gone").lock_file.exists()


def test_an_engine_refuses_a_state_changed_since_its_launch(tmp_path: Path) -> None:
    project = tmp_path / "p"
    prepared(project, "moved")
    assert engine(project, "moved").returncode == 0  # a run of its own: now complete
    paths = ProjectPaths.of(project).session("moved")
    before = paths.state_file.read_bytes(), paths.events_file.read_bytes()
    lock = SessionLock(paths.lock_file)
    assert lock.acquire()
    lock.write_metadata(
        {
            "launch": {
                "token": "abc",
                "pid": 1,
                "at": datetime.now(UTC).isoformat(),
                "resumes": {"status": "running", "updated_at": "2026-01-01T00:00:00.000Z"},
            }
        }
    )
    lock.release()
    result = engine(project, "moved", "--resume", "--launch-token", "abc")
    assert result.returncode == 3, result.stdout + result.stderr
    assert "its state changed since the launch (now complete)" in result.stdout
    assert (paths.state_file.read_bytes(), paths.events_file.read_bytes()) == before
    assert json.loads(paths.state_file.read_text())["status"] == "complete"
