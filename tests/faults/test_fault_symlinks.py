"""Files under ``.claude/`` are never opened through a symlink or as a special file.

Anyone who can write the state folder (a shared project, a shared
``LOOPRUNNER_STATE_DIR``) could plant ``locks/NAME.lock`` as a symlink: ``start`` then
truncated its target and wrote the lock JSON into it (as root: any file), and a dangling
link created its target. After a crash, ``events.jsonl`` and ``engine.log`` replaced by
symlinks were appended through on ``resume``. Now each is refused with a one-line error
naming it (exit 1), nothing outside the project is touched, and ``cleanup`` reports it as
``unsafe_file`` (``--fix`` removes the link, never its target).

Every link points at a file in the test's own tmp dir.
"""

from __future__ import annotations

import json
import os

import pytest

from looprunner import Session
from looprunner.models import Health
from looprunner.names import ProjectPaths
from looprunner.testing import wait_until
from tests.faults.faultkit import Gate, engine_pids, kill_if_live, no_traceback

pytestmark = pytest.mark.tmux

PRECIOUS = "my notes: do not overwrite\n"


def test_start_refuses_a_lock_file_that_is_a_symlink_and_leaves_its_target_alone(
    project, tmux_keeper, tmp_path, cli
):
    gate = Gate(tmp_path / "gate")
    gate.stage(project)
    target = tmp_path / "notes.txt"
    target.write_text(PRECIOUS)
    lock_file = ProjectPaths.of(project).session("s1").lock_file
    lock_file.parent.mkdir(parents=True)
    lock_file.symlink_to(target)
    try:
        started = cli("start", "s1", "--stage", "work")
    finally:
        gate.release("s1")
    no_traceback(started)
    assert target.read_text() == PRECIOUS, "start wrote through the symlinked lock file"
    assert started.returncode == 1, started.stdout + started.stderr
    assert str(lock_file) in started.stderr and "symbolic link" in started.stderr
    assert len(started.stderr.strip().splitlines()) == 1, started.stderr
    assert lock_file.is_symlink(), "the link is reported, not silently replaced"


def test_a_dangling_lock_symlink_does_not_create_its_target(project, tmux_keeper, tmp_path, cli):
    gate = Gate(tmp_path / "gate")
    gate.stage(project)
    target = tmp_path / "created-by-looprunner"
    lock_file = ProjectPaths.of(project).session("s2").lock_file
    lock_file.parent.mkdir(parents=True)
    lock_file.symlink_to(target)
    try:
        started = cli("start", "s2", "--stage", "work")
    finally:
        gate.release("s2")
    no_traceback(started)
    assert not target.exists(), "start created the dangling link's target"
    assert started.returncode == 1, started.stdout + started.stderr


def crash_a_session(project, tmp_path, cli, name: str) -> Gate:
    """Start a gated session and SIGKILL its engine (and agent) mid-iteration."""
    gate = Gate(tmp_path / "gate")
    gate.stage(project, iterations=2)
    started = cli("start", name, "--stage", "work")
    assert started.returncode == 0, started.stderr
    agent = gate.wait_started(name, 1)
    for pid in engine_pids(project, name):
        kill_if_live(pid)
    kill_if_live(agent)
    session = Session(name, project)
    wait_until(
        lambda: session.status().health is Health.CRASHED, timeout=30, what="a crashed session"
    )
    return gate


def test_resume_refuses_a_symlinked_event_log_and_engine_log_and_cleanup_removes_them(
    project, tmux_keeper, tmp_path, cli
):
    gate = crash_a_session(project, tmp_path, cli, "s3")
    paths = ProjectPaths.of(project).session("s3")
    targets = {}
    for planted in (paths.events_file, paths.engine_log):
        target = tmp_path / f"target-of-{planted.name}"
        target.write_text(PRECIOUS)
        planted.unlink()
        planted.symlink_to(target)
        targets[planted] = target
    try:
        resumed = cli("resume", "s3")
    finally:
        gate.release("s3")
    no_traceback(resumed)
    for target in targets.values():
        assert target.read_text() == PRECIOUS, f"resume wrote into {target}"
    assert resumed.returncode == 1, resumed.stdout + resumed.stderr
    assert "symbolic link" in resumed.stderr
    assert any(str(planted) in resumed.stderr for planted in targets), resumed.stderr

    report = json.loads(cli("--json", "cleanup").stdout)
    unsafe = {p["detail"] for p in report["problems"] if p["kind"] == "unsafe_file"}
    assert any(str(paths.events_file) in d for d in unsafe), report
    assert any(str(paths.engine_log) in d for d in unsafe), report
    fixed = cli("cleanup", "--fix", "--yes")
    no_traceback(fixed)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    for planted, target in targets.items():
        # the zombie state's repair then records the crash in a fresh, regular events.jsonl
        assert not planted.is_symlink(), "--fix removes the link itself"
        assert target.read_text() == PRECIOUS, "--fix never touches the link's target"


def test_a_fifo_where_the_engine_log_should_be_is_refused_without_hanging(
    project, tmux_keeper, tmp_path, cli
):
    gate = crash_a_session(project, tmp_path, cli, "s4")
    paths = ProjectPaths.of(project).session("s4")
    paths.engine_log.unlink()
    os.mkfifo(paths.engine_log)
    try:
        resumed = cli("resume", "s4")
    finally:
        gate.release("s4")
    no_traceback(resumed)
    assert resumed.returncode == 1, resumed.stdout + resumed.stderr
    assert str(paths.engine_log) in resumed.stderr and "not a regular file" in resumed.stderr
