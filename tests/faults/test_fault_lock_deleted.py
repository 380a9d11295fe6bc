"""The lock file of a running session deleted by hand: still one engine, still running.

The engine keeps its lock descriptor, so deleting ``.claude/locks/NAME.lock`` frees
nothing it holds, but the next ``start`` would find no lock to conflict with. What must
hold: ``status`` still says running; ``start NAME`` and ``start NAME --force`` are
refused with exit 3 (and move nothing aside); the engine puts its lock back before its
next iteration; and only one engine ever runs.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest

from looprunner import Session
from looprunner.models import Health
from looprunner.names import ProjectPaths
from looprunner.store import lock as lockmod
from looprunner.store.lock import SessionLock
from looprunner.testing import wait_until
from tests.faults.faultkit import Gate, engine_pids, is_live, no_traceback

pytestmark = pytest.mark.tmux


def only_engine(project: Path, name: str, pid: int) -> None:
    assert engine_pids(project, name) == [pid], "one engine, and it is the first one"


def test_deleted_lock_file_keeps_one_engine_and_refuses_every_second_start(
    project, tmux_keeper, cli, tmp_path
):
    gate = Gate(tmp_path / "gate")
    gate.stage(project, iterations=2)
    assert cli("start", "held", "--stage", "work").returncode == 0
    gate.wait_started("held", 1)
    session = Session("held", project)
    paths = ProjectPaths.of(project).session("held")
    engine = session.status().state.pid

    paths.lock_file.unlink()
    status = session.status()
    assert status.health is Health.RUNNING, status
    assert "lock file is missing" in status.detail
    shown = json.loads(cli("--json", "status", "held").stdout)
    assert shown["health"] == "running" and shown["resources"]["lock"] is False

    for args in (
        ("start", "held", "--stage", "work"),
        ("start", "held", "--stage", "work", "--force"),
    ):
        refused = cli(*args)
        no_traceback(refused)
        assert refused.returncode == 3, (args, refused.stdout, refused.stderr)
        only_engine(project, "held", engine)
    assert sorted(p.name for p in paths.run_dir.parent.iterdir()) == ["held"], "nothing moved"
    tidy = cli("cleanup", "--fix", "--yes")
    no_traceback(tidy)
    assert tidy.returncode == 0
    assert session.status().health is Health.RUNNING
    only_engine(project, "held", engine)

    gate.release("held", 1)
    gate.wait_started("held", 2)  # the engine checked its lock before starting iteration 2
    probe = lockmod.probe(paths.lock_file)
    assert probe.present and probe.held, "the engine put its lock back"
    assert probe.metadata["pid"] == engine
    assert session.status().detail is None
    only_engine(project, "held", engine)
    refused = cli("start", "held", "--stage", "work", "--force")
    assert refused.returncode == 3 and "already running" in refused.stderr

    gate.release("held", 2)
    assert cli("wait", "held", "--timeout", "60").returncode == 0
    events = list(session.events())
    assert [e.iteration for e in events if e.type == "iteration_complete"] == [1, 2]
    assert [e.type for e in events].count("session_start") == 1
    assert "lock file was deleted" in paths.engine_log.read_text()


def test_a_launcher_briefly_holding_the_recreated_lock_does_not_stop_the_engine(
    project, tmux_keeper, cli, tmp_path
):
    gate = Gate(tmp_path / "gate")
    gate.stage(project, iterations=2)
    assert cli("start", "brief", "--stage", "work").returncode == 0
    gate.wait_started("brief", 1)
    session = Session("brief", project)
    paths = ProjectPaths.of(project).session("brief")
    engine = session.status().state.pid
    paths.lock_file.unlink()
    # what a refused 'start' or a 'cleanup --fix' does for a moment: hold the lock file
    launcher = SessionLock(paths.lock_file)
    assert launcher.acquire()
    try:
        gate.release("brief", 1)  # the engine finishes iteration 1 and checks its lock
        wait_until(
            lambda: any(
                e.iteration == 1 for e in session.events() if e.type == "iteration_complete"
            ),
            what="iteration 1 to be recorded",
        )
        # give the engine up to 2 s to (wrongly) give up while the lock is held
        with contextlib.suppress(AssertionError):
            wait_until(lambda: not is_live(engine), timeout=2, what="the engine to give up")
    finally:
        launcher.release()
    assert is_live(engine), "the engine gave up its session because a launcher held the lock"
    gate.release("brief", 2)
    assert cli("wait", "brief", "--timeout", "60").returncode == 0
