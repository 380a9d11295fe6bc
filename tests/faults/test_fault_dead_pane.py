"""An engine SIGKILLed under tmux's ``remain-on-exit``: its session stays with a dead pane.

launch turns ``remain-on-exit`` off for the engine's window, but a user's configuration
can turn it on again (a hook, a later ``set-option``); these tests do so on the window
itself, as such a hook would. ``status`` then says ``orphaned``. One ``cleanup --fix``
must repair all of it — the dead tmux session, the state and the lock (the sweep of what
its agent left is ``test_fault_escaped_children.py``'s) — and ``resume`` must clear a
dead pane by itself. A ``resume`` that is
refused must leave the project exactly as it found it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from looprunner import Session
from looprunner.models import Health
from looprunner.names import ProjectPaths
from looprunner.testing import wait_until
from tests.faults.faultkit import kill_if_live, no_traceback

pytestmark = pytest.mark.tmux


def tmux(socket: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["tmux", "-L", socket, *args], capture_output=True, text=True, check=False
    )


def tmux_sessions(socket: str) -> set[str]:
    return set(tmux(socket, "list-sessions", "-F", "#{session_name}").stdout.split())


def everything(folder: Path) -> dict[str, bytes | str]:
    """Every entry under ``folder`` (FIFOs and empty files included) with its bytes."""
    found: dict[str, bytes | str] = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            found[key] = "special"
        elif path.is_file():
            found[key] = path.read_bytes()
    return found


def dead_pane_orphan(project: Path, make_stage, cli, socket: str, name: str) -> int:
    """Start a slow session, keep its pane on exit, SIGKILL its engine; return the agent pid."""
    make_stage("work", termination={"type": "fixed", "iterations": 50}, extra="mock_delay: 60\n")
    assert cli("start", name, "--stage", "work").returncode == 0
    session = Session(name, project)
    state = wait_until(lambda: (s := session.status().state) and s.agent_pid and s, what="agent")
    tmux(socket, "set-option", "-g", "remain-on-exit", "on")
    tmux(socket, "set-option", "-w", "-t", f"=pipeline-{name}:", "remain-on-exit", "on")
    os.kill(state.pid, signal.SIGKILL)
    wait_until(
        lambda: (
            tmux(
                socket, "list-panes", "-t", f"=pipeline-{name}:", "-F", "#{pane_dead}"
            ).stdout.strip()
            == "1"
        ),
        what="the pane to be dead",
    )
    assert session.status().health is Health.ORPHANED
    return state.agent_pid


def test_one_cleanup_repairs_a_dead_pane_orphan_state_lock_and_agent(
    project, make_stage, cli, tmux_keeper
):
    agent = dead_pane_orphan(project, make_stage, cli, tmux_keeper, "orphan")
    try:
        # no LOOPRUNNER_ORPHAN_GRACE: the tmux session is seconds old
        fixed = cli("--json", "cleanup", "--fix", "--yes")
        assert fixed.returncode == 0, fixed.stderr
        kinds = {p["kind"]: p for p in json.loads(fixed.stdout)["problems"]}
        assert set(kinds) == {"orphaned_tmux", "zombie_state", "stale_lock"}, kinds
        assert all(p["fixed"] for p in kinds.values()), kinds
        assert "pipeline-orphan" not in tmux_sessions(tmux_keeper)
        assert not ProjectPaths.of(project).session("orphan").lock_file.exists()
        after = Session("orphan", project).status()
        assert after.health is Health.CRASHED
        assert after.resources.tmux is False
        assert json.loads(cli("--json", "cleanup").stdout)["problems"] == []
        resumed = cli("resume", "orphan")
        assert resumed.returncode == 0, resumed.stderr
    finally:
        cli("kill", "orphan", "--yes")
        kill_if_live(agent)


def test_resume_clears_a_dead_pane_and_continues(project, make_stage, cli, tmux_keeper):
    agent = dead_pane_orphan(project, make_stage, cli, tmux_keeper, "dead")
    try:
        resumed = cli("resume", "dead")
        no_traceback(resumed)
        assert resumed.returncode == 0, resumed.stderr
        session = Session("dead", project)
        assert session.status().health is Health.RUNNING
        dead = tmux(tmux_keeper, "list-panes", "-t", "=pipeline-dead:", "-F", "#{pane_dead}")
        assert dead.stdout.split() == ["0"], "a live engine in a fresh pane"
    finally:
        cli("kill", "dead", "--yes")
        kill_if_live(agent)


def crashed(project: Path, cli, name: str) -> None:
    """Start a slow session and SIGKILL its engine and agent: it is ``crashed``."""
    assert cli("start", name, "--stage", "work").returncode == 0
    session = Session(name, project)
    state = wait_until(lambda: (s := session.status().state) and s.agent_pid and s, what="agent")
    os.kill(state.pid, signal.SIGKILL)
    wait_until(lambda: session.status().health is Health.CRASHED, what="crashed")
    kill_if_live(state.agent_pid)


def test_a_refused_resume_leaves_the_project_as_it_was(project, make_stage, cli, tmux_keeper):
    make_stage("work", termination={"type": "fixed", "iterations": 50}, extra="mock_delay: 60\n")
    make_stage("done", termination={"type": "fixed", "iterations": 1})
    crashed(project, cli, "crash")
    crashed(project, cli, "live-pane")
    assert cli("start", "finished", "--stage", "done", "--foreground").returncode == 0
    # a tmux session of the name that looprunner did not create is in the way
    tmux(tmux_keeper, "new-session", "-d", "-s", "pipeline-crash", "--", "sleep", "600")
    # an orphan whose pane still runs a process: not resume's to clear
    tmux(tmux_keeper, "new-session", "-d", "-s", "pipeline-live-pane", "--", "sleep", "600")
    tmux(tmux_keeper, "set-option", "-t", "=pipeline-live-pane:", "@looprunner", str(project))
    assert Session("live-pane", project).status().health is Health.ORPHANED
    before = everything(project / ".claude")
    cases = (("crash", 3), ("live-pane", 3), ("finished", 1), ("nope", 4), ("Bad.Name", 2))
    for name, code in cases:
        refused = cli("resume", name)
        no_traceback(refused)
        assert refused.returncode == code, (name, refused.stderr)
        assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
        assert everything(project / ".claude") == before, name
    assert {"pipeline-crash", "pipeline-live-pane"} <= tmux_sessions(tmux_keeper)
