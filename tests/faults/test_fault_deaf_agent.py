"""Agents that ignore SIGTERM, and the processes they start, are still ended.

The agent (a ``command``-provider program) ignores SIGTERM and starts a child that
ignores it too; both stay in the agent's process group. ``looprunner kill`` must end
them all within the kill grace (``LOOPRUNNER_KILL_GRACE``, 3 s in tests): the engine
sends SIGTERM to the group, waits the grace, then SIGKILLs it. Afterwards no live
(non-zombie) process of the group may exist — checked in ``/proc``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from looprunner import Session
from looprunner.models import Health
from looprunner.session.control import KILL_TIMEOUT
from looprunner.testing import wait_until
from tests.faults.faultkit import group_members, is_live, kill_if_live, no_traceback

pytestmark = pytest.mark.tmux

GRACE = 3.0  # tests/conftest.py sets LOOPRUNNER_KILL_GRACE=3

#: argv[1] the folder to report pids in; argv[2] "deaf" (the agent ignores SIGTERM too)
#: or "leaves-child" (the agent dies of SIGTERM, its child does not)
AGENT = r"""
import os, signal, subprocess, sys, time
from pathlib import Path

sys.stdin.read()
folder, mode = Path(sys.argv[1]), sys.argv[2]
if mode == "deaf":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c", (
    "import signal, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('child ready', flush=True)\n"
    "time.sleep(120)\n"
)], stdout=subprocess.PIPE, text=True)
child.stdout.readline()  # the child ignores SIGTERM from here on
session = os.environ["LOOPRUNNER_SESSION"]
(folder / f"{session}.tmp").write_text(f"{os.getpid()} {child.pid}")
(folder / f"{session}.tmp").replace(folder / session)
print("agent and child ignore SIGTERM", flush=True)
time.sleep(120)
"""


def deaf_stage(project: Path, folder: Path, mode: str) -> None:
    script = folder / "deaf_agent.py"
    script.write_text(AGENT)
    stage = project / ".looprunner" / "stages" / "work"
    stage.mkdir(parents=True)
    argv = [sys.executable, str(script), str(folder), mode]
    (stage / "stage.yaml").write_text(
        f"name: work\nprovider: command\ncommand: {json.dumps(argv)}\n"
        "termination:\n  type: fixed\n  iterations: 2\n"
    )
    (stage / "prompt.md").write_text("Work.\n")


def start_deaf(project, cli, tmp_path, name: str, mode: str) -> tuple[Session, int, int]:
    folder = tmp_path / "pids"
    folder.mkdir(exist_ok=True)
    deaf_stage(project, folder, mode)
    assert cli("start", name, "--stage", "work").returncode == 0
    raw = wait_until(
        lambda: (folder / name).is_file() and (folder / name).read_text(), what="the agent"
    )
    leader, child = (int(p) for p in raw.split())
    assert os.getpgid(child) == leader, "the child is in the agent's process group"
    return Session(name, project), leader, child


def test_kill_ends_an_agent_and_child_that_ignore_sigterm_within_the_grace(
    project, tmux_keeper, cli, tmp_path
):
    session, leader, child = start_deaf(project, cli, tmp_path, "deaf", "deaf")
    try:
        began = time.monotonic()
        killed = cli("kill", "deaf", "--yes")
        took = time.monotonic() - began
        no_traceback(killed)
        assert killed.returncode == 0, killed.stderr
        assert group_members(leader) == [], "a process of the agent's group is still alive"
        assert session.status().health is Health.KILLED
        # the engine itself stopped the agent (SIGTERM, the grace, SIGKILL) and recorded
        # it; had it hung, kill would have SIGKILLed it and recorded {"by": "kill"}
        [ending] = [e for e in session.events() if e.type == "session_killed"]
        assert ending.data == {}, ending
        assert GRACE <= took < KILL_TIMEOUT, f"kill took {took:.1f}s"
    finally:
        for pid in (leader, child):
            kill_if_live(pid)


def test_kill_after_an_engine_crash_ends_the_deaf_agent_it_left(
    project, tmux_keeper, cli, tmp_path
):
    session, leader, child = start_deaf(project, cli, tmp_path, "orphan", "deaf")
    try:
        engine = session.status().state.pid
        os.kill(engine, signal.SIGKILL)  # the agent gets SIGTERM (parent death) and ignores it
        wait_until(lambda: not is_live(engine), what="the engine to die")
        assert is_live(leader) and is_live(child), "the deaf agent outlived its engine"
        wait_until(lambda: session.status().health is Health.CRASHED, what="crashed")
        killed = cli("kill", "orphan", "--yes")
        no_traceback(killed)
        assert killed.returncode == 0, killed.stderr
        assert group_members(leader) == []
        assert session.status().health is Health.KILLED
    finally:
        for pid in (leader, child):
            kill_if_live(pid)


@pytest.mark.parametrize("how", ["kill", "cleanup"])
def test_a_child_left_by_an_agent_whose_engine_crashed_is_ended(
    project, tmux_keeper, cli, tmp_path, how
):
    session, leader, child = start_deaf(project, cli, tmp_path, f"left-{how}", "leaves-child")
    try:
        engine = session.status().state.pid
        os.kill(engine, signal.SIGKILL)
        wait_until(lambda: not is_live(engine) and not is_live(leader), what="engine and agent")
        assert is_live(child), "the agent's child outlived its engine and its agent"
        wait_until(lambda: session.status().health is Health.CRASHED, what="crashed")
        if how == "kill":
            done = cli("kill", f"left-{how}", "--yes")
        else:
            done = cli("cleanup", "--fix", "--yes", env={"LOOPRUNNER_ORPHAN_GRACE": "0"})
        no_traceback(done)
        assert done.returncode == 0, done.stderr
        assert group_members(leader) == [], f"{how} left the agent's child {child} running"
    finally:
        for pid in (leader, child):
            kill_if_live(pid)
