"""Real sessions in real tmux (a private server), with the plugin installed by pip.

The agent is ``bead_agent.py`` (a ``command`` provider) working the fake bd's queue.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
from pathlib import Path

import pytest
from looprunner.testing import wait_until

pytestmark = [
    pytest.mark.tmux,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]


def state_json(project: Path, name: str) -> dict:
    path = project / ".claude" / "pipeline-runs" / name / "state.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def test_a_session_works_its_queue_until_no_bead_is_ready(
    with_beads, beads, bead_stage, lr_cli, lr_project, status_of
):
    beads.add("auth", "bd-1", "bd-2", "bd-3")
    beads.add("billing", "bd-9")
    bead_stage()
    started = lr_cli("start", "auth", "--stage", "beadwork")
    assert started.returncode == 0, started.stderr
    waited = lr_cli("wait", "auth", "--timeout", "90")
    assert waited.returncode == 0, waited.stdout + waited.stderr

    status = status_of("auth")
    assert (status["health"], status["status"]) == ("complete", "complete")
    assert status["completion_reason"] == "queue_empty"
    assert status["iteration_completed"] == 3
    assert status["queue_remaining"] == 0
    assert beads.statuses() == {
        "bd-1": "closed",
        "bd-2": "closed",
        "bd-3": "closed",
        "bd-9": "open",  # another session's bead: untouched
    }
    # the termination asked bd before each of the 3 iterations and once more at the end,
    # and `status` once, all in the project folder, with an argv (no shell)
    asks = [c for c in beads.calls() if c["argv"][:1] == ["ready"] and "--limit" in c["argv"]]
    assert len(asks) == 5
    assert {Path(c["cwd"]) for c in asks} == {lr_project}
    assert {tuple(c["argv"]) for c in asks} == {
        ("ready", "--label", "pipeline/auth", "--limit", "0", "--json")
    }
    progress = (lr_project / ".claude" / "pipeline-runs" / "auth" / "progress-auth.md").read_text()
    assert "closed bd-3" in progress


def test_status_counts_the_beads_left_and_a_crashed_sessions_claims_are_reopened(
    with_beads, beads, bead_stage, lr_cli, lr_project, status_of
):
    beads.add("crash", "bd-1", "bd-2")
    beads.add("other", "bd-7", status="in_progress")  # someone else's claim
    bead_stage(hang=True)
    assert lr_cli("start", "crash", "--stage", "beadwork").returncode == 0
    wait_until(lambda: beads.statuses()["bd-1"] == "in_progress", what="the agent's claim")
    state = wait_until(
        lambda: (s := state_json(lr_project, "crash")).get("agent_pid") and s,
        what="the agent pid in state.json",
    )
    agent_pid = state["agent_pid"]

    running = status_of("crash")
    assert running["health"] == "running"
    assert running["queue_remaining"] == 2  # bd's ready lists the claimed bead too
    human = lr_cli("status", "crash")
    assert "queue" in human.stdout and "2 item(s) remaining" in human.stdout

    os.kill(state["pid"], signal.SIGKILL)  # the engine dies; its agent is left behind
    try:
        wait_until(lambda: status_of("crash")["health"] == "crashed", what="health crashed")
        fixed = lr_cli("cleanup", "--fix", "--yes")
        assert fixed.returncode == 0, fixed.stdout + fixed.stderr
        assert "marked crashed" in fixed.stdout, fixed.stdout
        assert "plugin beads failed" not in fixed.stdout

        assert beads.statuses() == {"bd-1": "open", "bd-2": "open", "bd-7": "in_progress"}
        reopened = [c for c in beads.calls() if c["argv"][:1] == ["update"]]
        assert reopened[-1]["argv"] == ["update", "bd-1", "--status", "open"]
        after = status_of("crash")
        assert after["health"] == "crashed"
        assert after["error"]["type"] == "crashed"
        assert after["queue_remaining"] == 2
        # cleanup also stopped the agent the dead engine had left running
        wait_until(lambda: not _agent_running(agent_pid), what="the orphaned agent to end")
    finally:
        _end(agent_pid)


def test_cleanup_leaves_the_beads_of_a_session_without_a_beads_termination(
    with_beads, beads, lr_stage, lr_cli, lr_project, lr_fake_agent, status_of
):
    beads.add("plain", "bd-1", status="in_progress")
    agent = lr_fake_agent({"default": {"sleep": 120, "decision": "continue"}})
    lr_stage(
        "slow",
        provider="command",
        termination={"type": "fixed", "iterations": 2},
        extra=f"command: {json.dumps(agent)}\n",
    )
    assert lr_cli("start", "plain", "--stage", "slow").returncode == 0
    state = wait_until(
        lambda: (s := state_json(lr_project, "plain")).get("agent_pid") and s,
        what="the agent pid in state.json",
    )
    os.kill(state["pid"], signal.SIGKILL)
    try:
        wait_until(lambda: status_of("plain")["health"] == "crashed", what="health crashed")
        fixed = lr_cli("cleanup", "--fix", "--yes")
        assert fixed.returncode == 0, fixed.stdout + fixed.stderr
        assert "marked crashed" in fixed.stdout
        assert beads.statuses() == {"bd-1": "in_progress"}
        assert not [c for c in beads.calls() if c["argv"][:1] in (["list"], ["update"])]
        wait_until(lambda: not _agent_running(state["agent_pid"]), what="the agent to end")
    finally:
        _end(state["agent_pid"])


def test_a_failing_bd_fails_the_session_with_a_termination_error_and_resume_goes_on(
    with_beads, beads, bead_stage, lr_cli, status_of
):
    # the project has no beads database: bd exits 1 with "Error: no beads database found"
    bead_stage()
    assert lr_cli("start", "broken", "--stage", "beadwork").returncode == 0
    waited = lr_cli("wait", "broken", "--timeout", "60")
    assert waited.returncode != 0
    status = status_of("broken")
    assert (status["health"], status["status"]) == ("failed", "failed")
    assert status["error"]["type"] == "termination_error"
    assert "no beads database found" in status["error"]["message"]
    assert status["iteration_completed"] == 0
    assert status["queue_remaining"] is None  # the queue cannot be asked

    beads.add("broken", "bd-1")  # bd works now: the session resumes and finishes
    resumed = lr_cli("resume", "broken")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert lr_cli("wait", "broken", "--timeout", "60").returncode == 0
    status = status_of("broken")
    assert (status["status"], status["completion_reason"]) == ("complete", "queue_empty")
    assert beads.statuses() == {"bd-1": "closed"}


def test_without_bd_the_session_fails_with_a_termination_error(
    with_beads, bead_stage, lr_cli, status_of
):
    bead_stage()
    no_bd = {"PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"])}
    if any((Path(p) / "bd").exists() for p in no_bd["PATH"].split(os.pathsep)):
        pytest.skip("a real bd is installed here")
    assert lr_cli("lint").returncode == 0  # bd is a fact about the machine, not the stage
    assert lr_cli("start", "nobd", "--stage", "beadwork", env=no_bd).returncode == 0
    assert lr_cli("wait", "nobd", "--timeout", "60").returncode != 0
    status = status_of("nobd")
    assert status["error"]["type"] == "termination_error"
    assert "bd is not installed (not on PATH)" in status["error"]["message"]


def test_the_work_stage_ships_with_the_plugin(with_beads, lr_cli):
    stages = {s["name"]: s for s in json.loads(lr_cli("--json", "stages").stdout)}
    assert stages["work"]["origin"] == "plugin beads"
    linted = lr_cli("lint", stages["work"]["path"])
    assert linted.returncode == 0, linted.stdout + linted.stderr
    preview = lr_cli("dry-run", "--stage", "work", "--name", "auth")
    assert preview.returncode == 0, preview.stderr
    assert "beads, up to 50 iteration(s)" in preview.stdout
    assert "provider claude" in preview.stdout
    for line in (
        "bd ready --label=pipeline/auth",
        "bd update ID --status=in_progress",
        "bd close ID",
    ):
        assert line in preview.stdout
    rows = {row["name"]: row for row in json.loads(lr_cli("--json", "plugins").stdout)}
    assert rows["beads"]["distribution"] == "looprunner-beads"
    assert rows["beads"]["registers"] == {"stages": ["work"], "terminations": ["beads"]}
    assert rows["beads"]["hooks"] == ["on_cleanup"]


def _agent_running(pid: int) -> bool:
    """Tell whether ``pid`` is still one of our agent scripts, running (not a zombie)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    ours = b"bead_agent.py" in cmdline or b"fake_agent.py" in cmdline
    return ours and state != "Z"


def _end(pid: int) -> None:
    """Make sure the agent a killed engine left behind is gone (cleanup should stop it).

    Only the agent this test started is signalled: its pid, while that pid is still one
    of our agent scripts.
    """
    if _agent_running(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
