"""Disk faults under a running engine (issue 10, item 6): full, read-only, run folder deleted.

Before, each killed the engine with nothing recorded: ``status`` said "crashed — died
without recording an ending", ``error`` null, nothing in ``engine.log``; a deleted run
folder made the engine delete its lock file too, so the session vanished ("no session").
Now the engine ends the run ``failed`` with ``error.type`` ``disk_full``, ``read_only`` or
``run_folder_deleted``, in ``state.json`` when the disk takes it, else in the session's
lock file (rewritten in place, in a block kept allocated for it), and ``resume``
continues a full or read-only run once the disk is back, no iteration lost or repeated.

The faults are real: the state folder (``PROJECT/.claude``) is a 4 MiB tmpfs the test
fills, a read-only bind mount is put over the run folder, the run folder is ``rm -rf``'d
under an engine in tmux. Mounting needs root (CI runs as root in a container); each test
says why it is skipped where the machine cannot mount.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from looprunner.names import ProjectPaths, SessionPaths
from looprunner.store import lock as lockmod
from looprunner.testing import wait_until
from tests.faults.faultkit import Gate, engine_pids, no_traceback

#: a gated agent that writes its status first, then waits, then prints SIZE bytes
AGENT = r"""
import json, os, sys, time
from pathlib import Path

sys.stdin.read()
gate, size = Path(sys.argv[1]), int(sys.argv[2])
mine = f"{os.environ['LOOPRUNNER_SESSION']}-{os.environ['LOOPRUNNER_ITERATION']}"
Path(os.environ["LOOPRUNNER_STATUS"]).write_text(
    json.dumps({"decision": "continue", "summary": f"done {mine}"})
)
(gate / f"started-{mine}").write_text(str(os.getpid()))
deadline = time.monotonic() + 120  # never outlive a test that forgot us
while not (gate / f"go-{mine}").exists():
    if time.monotonic() > deadline:
        sys.exit(9)
    time.sleep(0.02)
sys.stdout.write(("o" * 99 + "\n") * (size // 100))
sys.stdout.flush()
"""


def _mount_problem() -> str | None:
    """Why this machine cannot mount a small tmpfs here, or None if it can."""
    if sys.platform != "linux":
        return "mounting a small tmpfs needs Linux"
    if os.geteuid() != 0:
        return "mounting a small tmpfs needs root (CI runs as root in a container)"
    if shutil.which("mount") is None or shutil.which("umount") is None:
        return "mount(8) and umount(8) are not installed"
    return None


def _mount(*args: str) -> None:
    result = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.skip(f"this machine cannot mount ({' '.join(args)}): {result.stderr.strip()}")


def _umount(where: Path) -> None:
    for attempt in (["umount", str(where)], ["umount", "-l", str(where)]):
        if subprocess.run(attempt, capture_output=True, check=False).returncode == 0:
            return


@pytest.fixture
def small_disk(project: Path) -> Iterator[Path]:
    """The project's state folder on a 4 MiB tmpfs of its own."""
    problem = _mount_problem()
    if problem is not None:
        pytest.skip(problem)
    state = project / ".claude"
    state.mkdir()
    _mount("-t", "tmpfs", "-o", "size=4m,mode=0755", "looprunner-test", str(state))
    yield state
    _umount(state)


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """Make ``folder`` read-only for every path lookup from now on (a ro bind mount)."""
    problem = _mount_problem()
    if problem is not None:
        pytest.skip(problem)
    _mount("--bind", str(folder), str(folder))
    try:
        _mount("-o", "remount,bind,ro", str(folder))
        yield
    finally:
        _umount(folder)


def fill(disk: Path) -> Path:
    """Write a file until the file system has not one byte left; return it."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    chunk = b"\0" * 65536
    try:
        while True:
            try:
                os.write(fd, chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
                break
    finally:
        os.close(fd)
    assert os.statvfs(disk).f_bavail == 0
    return filler


def stage(project: Path, gate: Path, *, output: int, iterations: int = 2) -> None:
    """Stage ``work``: the agent above, printing ``output`` bytes when released."""
    script = gate / "agent.py"
    script.write_text(AGENT)
    folder = project / ".looprunner" / "stages" / "work"
    folder.mkdir(parents=True)
    argv = [sys.executable, str(script), str(gate), str(output)]
    (folder / "stage.yaml").write_text(
        f"name: work\nprovider: command\ncommand: {json.dumps(argv)}\n"
        f"termination:\n  type: fixed\n  iterations: {iterations}\n"
    )
    (folder / "prompt.md").write_text("Iteration ${ITERATION}: write ${STATUS}.\n")


START = ("start", "--stage", "work", "--foreground")


def start_foreground(project: Path, name: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "looprunner", "--project", str(project), *START, name],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_started(gate: Path, name: str, iteration: int) -> None:
    wait_until(
        lambda: (gate / f"started-{name}-{iteration}").exists(),
        timeout=60,
        what=f"the agent of {name} iteration {iteration} to start",
    )


def release(gate: Path, name: str, *iterations: int) -> None:
    for iteration in iterations:
        (gate / f"go-{name}-{iteration}").write_text("go")


def status_json(cli: Any, name: str) -> dict[str, Any]:
    result = cli("--json", "status", name)
    no_traceback(result)
    assert result.returncode == 0, (result.stdout, result.stderr)
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def events(paths: SessionPaths) -> list[dict[str, Any]]:
    lines = paths.events_file.read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def assert_resumes_to_complete(cli: Any, paths: SessionPaths, gate: Path, error_type: str) -> None:
    """``resume`` runs to ``complete``; iterations 1 and 2 recorded once each, in order."""
    release(gate, paths.name, 1, 2)
    resumed = cli("resume", paths.name)
    no_traceback(resumed)
    assert resumed.returncode == 0, (resumed.stdout, resumed.stderr)
    final = status_json(cli, paths.name)
    assert final["health"] == "complete", final
    assert final["iteration_completed"] == 2 and final["error"] is None, final
    logged = events(paths)
    done = [e["iteration"] for e in logged if e["type"] == "iteration_complete"]
    assert done == [1, 2], f"iterations lost or repeated: {done}"
    failed = [e for e in logged if e["type"] == "session_failed"]
    assert [e["data"]["type"] for e in failed] == [error_type], failed
    assert [e["type"] for e in logged].count("session_resumed") == 1
    assert [e["seq"] for e in logged] == list(range(1, len(logged) + 1))


# --------------------------------------------------------------------------- a full disk


def test_a_full_disk_fails_the_session_disk_full_and_resume_completes_it(
    project, small_disk, tmp_path, cli
):
    gate = tmp_path / "gate"
    gate.mkdir()
    stage(project, gate, output=8000)  # more than engine.log has room for
    engine = start_foreground(project, "full")
    paths = ProjectPaths.of(project).session("full")
    try:
        wait_started(gate, "full", 1)
        filler = fill(small_disk)
        release(gate, "full", 1)
        out, err = engine.communicate(timeout=90)
    finally:
        if engine.poll() is None:
            engine.kill()
    assert "Traceback" not in err and "internal error" not in err, err
    assert engine.returncode == 1, (out, err)
    seen = status_json(cli, "full")
    assert seen["health"] == "failed", seen
    assert seen["status"] == "failed", seen
    assert seen["error"]["type"] == "disk_full", seen
    assert "no space left" in seen["error"]["message"], seen
    assert seen["error"]["iteration"] == 1, seen
    shown = cli("status", "full")
    assert "disk_full" in shown.stdout and "crashed" not in shown.stdout, shown.stdout

    filler.unlink()  # space again
    assert_resumes_to_complete(cli, paths, gate, "disk_full")


def test_a_disk_with_nothing_to_free_records_the_failure_in_the_lock_file(
    project, small_disk, tmp_path, cli
):
    """Nothing the engine replaces frees a block (another link holds the old state).

    The state cannot be written at all: the failure goes into the lock file, in place,
    with a line on the engine's stderr; ``status`` reads it, ``resume`` logs it.
    """
    gate = tmp_path / "gate"
    gate.mkdir()
    stage(project, gate, output=300)
    engine = start_foreground(project, "nospace")
    paths = ProjectPaths.of(project).session("nospace")
    keep = small_disk / "backup-of-state.prev.json"
    try:
        wait_started(gate, "nospace", 1)
        # a second name for the previous state, as a backup or snapshot tool keeps: the
        # engine's replacing it then frees nothing
        os.link(paths.run_dir / "state.prev.json", keep)
        filler = fill(small_disk)
        release(gate, "nospace", 1)
        out, err = engine.communicate(timeout=90)
    finally:
        if engine.poll() is None:
            engine.kill()
    assert "Traceback" not in err and "internal error" not in err, err
    assert engine.returncode == 1, (out, err)
    on_disk = json.loads(paths.state_file.read_text())
    assert on_disk["status"] == "running", "this test needs a disk that took no state"
    assert "disk_full" in err and str(paths.lock_file) in err, err
    marker = lockmod.read_metadata(paths.lock_file)["fault"]
    assert marker["type"] == "disk_full", marker

    seen = status_json(cli, "nospace")
    assert seen["health"] == "failed" and seen["status"] == "failed", seen
    assert seen["error"]["type"] == "disk_full", seen
    assert "lock file" in seen["detail"], seen
    listed = cli("--json", "list")
    assert [s["health"] for s in json.loads(listed.stdout)] == ["failed"], listed.stdout

    filler.unlink()
    keep.unlink()
    assert_resumes_to_complete(cli, paths, gate, "disk_full")
    assert not paths.lock_file.exists(), "a complete session leaves no lock file"


def test_the_lock_file_takes_a_fault_in_place_on_a_full_disk(small_disk):
    """The block the lock file keeps is what a full disk still lets the engine write."""
    lock = lockmod.SessionLock(small_disk / "locks" / "s.lock")
    assert lock.acquire()
    try:
        lock.write_metadata({"session": "s", "pid": os.getpid()})
        filler = fill(small_disk)
        with pytest.raises(OSError) as refused:  # a new file gets no byte...
            (small_disk / "new.json").write_text("{}")
        assert refused.value.errno == errno.ENOSPC
        fault = {"type": "disk_full", "message": "m" * 10_000, "iteration": 3, "at": "now"}
        lock.record_fault(fault)  # ...the lock file does, and keeps to its block
        metadata = lockmod.probe(lock.path).metadata
        assert metadata["session"] == "s" and metadata["pid"] == os.getpid()
        assert metadata["fault"]["type"] == "disk_full" and metadata["fault"]["iteration"] == 3
        assert lock.path.stat().st_size == lockmod.RESERVED_BYTES
        filler.unlink()
    finally:
        lock.release()


def test_engine_log_writes_the_disk_refuses_are_counted_and_said_later(small_disk):
    """engine.log is not the record: a refused write never stops the engine, and is said."""
    from looprunner.store.enginelog import LogWriter

    log = small_disk / "engine.log"
    writer = LogWriter(log)
    writer.open()
    writer.write(b"before\n")
    filler = fill(small_disk)
    refused = b"z" * 9000 + b"\n"  # more than the block engine.log has room left in
    writer.write(refused)  # no exception
    assert writer.missed > 0
    missed = writer.missed
    filler.unlink()
    writer.write(b"after\n")
    writer.close()
    text = log.read_text()
    assert text.startswith("before\n") and text.endswith("after\n"), text[-200:]
    assert f"[looprunner: {missed} bytes could not be written to engine.log: No space" in text


# --------------------------------------------------------------------------- read-only


def test_a_read_only_run_folder_fails_the_session_read_only_and_resume_completes_it(
    project, tmp_path, cli
):
    gate = tmp_path / "gate"
    gate.mkdir()
    stage(project, gate, output=300)
    engine = start_foreground(project, "ro")
    paths = ProjectPaths.of(project).session("ro")
    try:
        wait_started(gate, "ro", 1)
        with read_only(paths.run_dir):
            release(gate, "ro", 1)
            out, err = engine.communicate(timeout=90)
            assert "Traceback" not in err and "internal error" not in err, err
            assert engine.returncode == 1, (out, err)
            seen = status_json(cli, "ro")
            assert seen["health"] == "failed" and seen["status"] == "failed", seen
            assert seen["error"]["type"] == "read_only", seen
            assert "read-only" in seen["error"]["message"], seen
            assert "read_only" in err and str(paths.lock_file) in err, err
            refused = cli("resume", "ro")  # still read-only: fails again, says so
            no_traceback(refused)
            assert refused.returncode == 1, refused.stdout + refused.stderr
            assert "read_only" in refused.stderr, refused.stderr
            assert status_json(cli, "ro")["error"]["type"] == "read_only"
    finally:
        if engine.poll() is None:
            engine.kill()
    assert_resumes_to_complete(cli, paths, gate, "read_only")


# --------------------------------------------------------------------------- deleted


@pytest.mark.tmux
def test_a_run_folder_deleted_under_a_running_engine_is_reported_never_as_no_session(
    project, tmp_path, tmux_keeper, cli
):
    gate = Gate(tmp_path / "gate")
    gate.stage(project, iterations=2)
    started = cli("start", "gone", "--stage", "work")
    assert started.returncode == 0, started.stderr
    paths = ProjectPaths.of(project).session("gone")
    try:
        gate.wait_started("gone", 1)
        shutil.rmtree(paths.run_dir)
    finally:
        gate.release("gone")
    wait_until(lambda: not engine_pids(project, "gone"), timeout=60, what="the engine to end")

    assert not paths.run_dir.exists(), "the engine made the deleted run folder again"
    assert paths.lock_file.exists(), "the engine deleted the lock file that says what happened"
    seen = status_json(cli, "gone")
    assert seen["health"] == "failed" and seen["status"] == "failed", seen
    assert seen["error"]["type"] == "run_folder_deleted", seen
    assert str(paths.run_dir) in seen["error"]["message"], seen
    shown = cli("status", "gone")
    no_traceback(shown)
    assert shown.returncode == 0, shown.stderr
    assert "was deleted" in shown.stdout and "no session" not in shown.stdout, shown.stdout
    listed = cli("list")
    assert "gone" in listed.stdout and "failed" in listed.stdout, listed.stdout
    resumed = cli("resume", "gone")
    no_traceback(resumed)
    assert resumed.returncode == 1, resumed.stdout + resumed.stderr
    assert "was deleted" in resumed.stderr, resumed.stderr
    assert not paths.run_dir.exists()
