"""A recorded pid that now names another process is never believed, and never signalled.

After a crash (or a reboot) the engine's and the agent's pids may be given to unrelated
processes. looprunner records a pid with its start time and the boot id, and must treat
a pid whose start time or boot differs as dead: health ``crashed``, and ``kill``,
``cleanup --fix`` and ``resume`` must leave that other process alone. Here the other
process is a ``sleep`` this test started, in a process group of its own, and state and
lock claim its pid — with a wrong start time, or a right one from another boot.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from looprunner import Session, procinfo
from looprunner.models import Health
from looprunner.names import ProjectPaths
from tests.faults.faultkit import is_live, no_traceback

pytestmark = pytest.mark.tmux


class Reuse(NamedTuple):
    test_id: str
    start_time_shift: int  # added to the sleep's real start time
    other_boot: bool
    detail: str


CASES = [
    Reuse("reused-pid-wrong-start-time", -1000, False, "died without recording an ending"),
    Reuse("changed-boot-id", 0, True, "rebooted"),
]


@pytest.fixture
def stranger() -> Iterator[subprocess.Popen[bytes]]:
    """An unrelated live process (group leader of its own group) whose pid gets reused."""
    proc = subprocess.Popen(["sleep", "600"], start_new_session=True)
    yield proc
    proc.kill()
    proc.wait(timeout=30)


def impersonate(project: Path, name: str, pid: int, case: Reuse) -> None:
    """Rewrite a finished run as a running one whose engine and agent claim ``pid``."""
    paths = ProjectPaths.of(project).session(name)
    started = procinfo.start_time(pid)
    assert started is not None
    boot = "00000000-0000-4000-8000-000000000000" if case.other_boot else procinfo.boot_id()
    state = json.loads(paths.state_file.read_text())
    state.update(
        status="running",
        finished_at=None,
        completion_reason=None,
        iteration=state["iteration_completed"] + 1,
        iteration_started=state["updated_at"],
        pid=pid,
        pid_start_time=started + case.start_time_shift,
        boot_id=boot,
        agent_pid=pid,
        agent_start_time=started + case.start_time_shift,
    )
    state["stages"][0]["status"] = "running"
    paths.state_file.write_text(json.dumps(state, indent=2))
    paths.lock_file.parent.mkdir(parents=True, exist_ok=True)
    paths.lock_file.write_text(  # a stale lock (free) naming the same pid
        json.dumps(
            {
                "session": name,
                "pid": pid,
                "pid_start_time": started + case.start_time_shift,
                "boot_id": boot,
                "host": procinfo.hostname(),
                "backend": "tmux",
            }
        )
    )


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.test_id)
def test_a_pid_that_names_another_process_is_never_signalled(
    project, make_stage, cli, stranger, case
):
    make_stage("work", termination={"type": "fixed", "iterations": 2})
    for name in ("by-kill", "by-cleanup", "by-resume"):
        assert cli("start", name, "--stage", "work", "-n", "1", "--foreground").returncode == 0
        impersonate(project, name, stranger.pid, case)

    for name in ("by-kill", "by-cleanup", "by-resume"):
        status = Session(name, project).status()
        assert status.health is Health.CRASHED, status
        assert case.detail in status.detail
        assert status.lock.present and not status.lock.held and status.lock.pid == stranger.pid
        assert status.lock.pid_alive is False, "the lock's pid is not believed either"
        shown = json.loads(cli("--json", "status", name).stdout)
        assert shown["health"] == "crashed"

    killed = cli("kill", "by-kill", "--yes")
    no_traceback(killed)
    assert killed.returncode == 0, killed.stderr
    assert Session("by-kill", project).status().health is Health.KILLED
    assert stranger.poll() is None and is_live(stranger.pid), "kill signalled a stranger"

    # resume first stops an agent the dead engine left running: not this one
    resumed = cli("resume", "by-resume", "--foreground")
    no_traceback(resumed)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert Session("by-resume", project).status().health is Health.COMPLETE
    assert stranger.poll() is None and is_live(stranger.pid), "resume signalled a stranger"

    fixed = cli("--json", "cleanup", "--fix", "--yes")
    no_traceback(fixed)
    report = json.loads(fixed.stdout)
    assert {(p["session"], p["kind"]) for p in report["problems"]} == {
        ("by-cleanup", "zombie_state"),
        ("by-cleanup", "stale_lock"),
    }
    assert all(p["fixed"] for p in report["problems"]), report
    assert stranger.poll() is None and is_live(stranger.pid), "cleanup signalled a stranger"
