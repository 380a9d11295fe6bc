"""Real sessions in real tmux (private socket), with the mock provider."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import pytest

from looprunner import Session, Stage
from looprunner.models import Health
from looprunner.names import ProjectPaths
from tests.conftest import tree, wait_until

pytestmark = pytest.mark.tmux


def tmux_has(socket: str, name: str) -> bool:
    result = subprocess.run(
        ["tmux", "-L", socket, "has-session", "-t", f"={name}"], capture_output=True, check=False
    )
    return result.returncode == 0


def test_three_iteration_loop_completes_in_tmux(project, make_stage, cli, tmux_socket):
    make_stage(
        "work",
        termination={"type": "fixed", "iterations": 3},
        outputs={"default": "did some work\n"},
    )
    started = cli("start", "auth", "--stage", "work", "-n", "3")
    assert started.returncode == 0, started.stderr
    assert "pipeline-auth" in started.stdout

    waited = cli("wait", "auth", "--timeout", "60")
    assert waited.returncode == 0, waited.stderr

    run = ProjectPaths.of(project).session("auth")
    state = json.loads(run.state_file.read_text())
    assert state["status"] == "complete"
    assert state["iteration_completed"] == 3
    assert state["completion_reason"] == "iterations_complete"
    for n in (1, 2, 3):
        folder = run.iteration_dir(0, "work", n)
        assert {p.name for p in folder.iterdir()} == {"context.json", "status.json", "output.md"}
        assert (folder / "output.md").read_text() == "did some work\n"
    assert not run.lock_file.exists(), "a finished engine frees and removes its lock"
    wait_until(lambda: not tmux_has(tmux_socket, "pipeline-auth"), what="tmux session to close")
    events = [json.loads(line) for line in run.events_file.read_text().splitlines()]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert [e["iteration"] for e in events if e["type"] == "iteration_complete"] == [1, 2, 3]
    assert events[-1]["type"] == "session_complete"

    status = json.loads(cli("--json", "status", "auth").stdout)
    assert status["health"] == "complete"
    assert status["resources"] == {"lock": False, "state": True, "tmux": False}


def test_stop_decision_ends_the_loop_early_with_the_agents_reason(project, make_stage, cli):
    make_stage(
        "work",
        termination={"type": "fixed", "iterations": 5},
        statuses={
            "default": {"decision": "continue", "reason": "more", "summary": "s"},
            2: {"decision": "stop", "reason": "queue empty", "summary": "all done"},
        },
    )
    assert cli("start", "s2", "--stage", "work").returncode == 0
    assert cli("wait", "s2", "--timeout", "60").returncode == 0
    status = json.loads(cli("--json", "status", "s2").stdout)
    assert status["iteration_completed"] == 2
    assert status["completion_reason"] == "agent_stop"
    assert status["stages"][0]["termination_reason"] == "agent_stop"
    events = list(Session("s2", project).events())
    assert events[-2].type == "stage_complete"
    assert events[-2].data["agent_reason"] == "queue empty"


def test_stop_on_the_last_allowed_iteration_reports_the_agent_not_the_budget(
    project, make_stage, cli
):
    make_stage(
        "work",
        termination={"type": "judgment", "consensus": 1, "max": 2},
        statuses={"default": {"decision": "continue"}, 2: {"decision": "stop", "reason": "done"}},
    )
    assert cli("start", "last", "--stage", "work").returncode == 0
    assert cli("wait", "last", "--timeout", "60").returncode == 0
    status = json.loads(cli("--json", "status", "last").stdout)
    assert status["completion_reason"] == "consensus"


def test_agent_crash_fails_the_session_with_a_typed_error(project, make_stage, cli):
    make_stage("work", statuses={"default": {"decision": "continue"}, 2: {"crash": True}})
    assert cli("start", "crashy", "--stage", "work").returncode == 0
    waited = cli("wait", "crashy", "--timeout", "60")
    assert waited.returncode == 1
    status = json.loads(cli("--json", "status", "crashy").stdout)
    assert status["health"] == "failed"
    assert status["error"]["type"] == "provider_exit"
    assert status["error"]["iteration"] == 2
    assert status["iteration_completed"] == 1


@pytest.mark.parametrize(
    ("fixture", "error_type"),
    [
        ("not json at all", "status_invalid"),
        (json.dumps({"decision": "maybe"}), "status_invalid"),
        (json.dumps({"decision": "error", "reason": "tests are red"}), "agent_error"),
    ],
    ids=["malformed", "bad-decision", "agent-error"],
)
def test_bad_or_error_status_fails_the_session(project, make_stage, cli, fixture, error_type):
    folder = make_stage("work")
    (folder / "fixtures" / "status.json").write_text(fixture)
    assert cli("start", "bad", "--stage", "work").returncode == 0
    assert cli("wait", "bad", "--timeout", "60").returncode == 1
    status = json.loads(cli("--json", "status", "bad").stdout)
    assert status["error"]["type"] == error_type
    assert status["status"] == "failed"


def test_missing_status_fails_with_status_missing(project, make_stage, cli):
    make_stage("work", provider="command", extra='command: ["true"]\n')
    assert cli("start", "nostatus", "--stage", "work").returncode == 0
    assert cli("wait", "nostatus", "--timeout", "60").returncode == 1
    status = json.loads(cli("--json", "status", "nostatus").stdout)
    assert status["error"]["type"] == "status_missing"


def test_stage_timeout_stops_the_agent_and_fails(project, make_stage, cli):
    make_stage("work", extra="mock_delay: 60\ntimeout: 0.5\n")
    assert cli("start", "slow", "--stage", "work").returncode == 0
    assert cli("wait", "slow", "--timeout", "60").returncode == 1
    status = json.loads(cli("--json", "status", "slow").stdout)
    assert status["error"]["type"] == "provider_timeout"


def test_kill_leaves_killed_state_no_tmux_and_no_agent(project, make_stage, cli, tmux_socket):
    make_stage("work", extra="mock_delay: 60\n")
    assert cli("start", "victim", "--stage", "work").returncode == 0
    session = Session("victim", project)
    state = wait_until(
        lambda: (s := session.status().state) and s.agent_pid and s, what="agent to start"
    )
    agent_pid = state.agent_pid

    killed = cli("kill", "victim", "--yes")
    assert killed.returncode == 0, killed.stderr
    after = session.status()
    assert after.health is Health.KILLED
    assert after.resources.tmux is False
    assert not tmux_has(tmux_socket, "pipeline-victim")
    with pytest.raises(ProcessLookupError):
        os.kill(agent_pid, 0)
    types = [e.type for e in session.events()]
    assert types[-1] == "session_killed"
    assert "iteration_start" in types, "history is kept"
    assert not ProjectPaths.of(project).session("victim").lock_file.exists()


def test_second_start_of_running_session_exits_3_and_changes_nothing(project, make_stage, cli):
    make_stage("work", extra="mock_delay: 60\n")
    assert cli("start", "dup", "--stage", "work").returncode == 0
    root = ProjectPaths.of(project).root
    before = tree(root / "pipeline-runs")
    again = cli("start", "dup", "--stage", "work")
    assert again.returncode == 3
    assert "already running" in again.stderr
    assert tree(root / "pipeline-runs").keys() == before.keys()
    cli("kill", "dup", "--yes")


def test_finished_session_refuses_restart_unless_forced_and_keeps_the_old_run(
    project, make_stage, cli
):
    make_stage("work", termination={"type": "fixed", "iterations": 1})
    assert cli("start", "again", "--stage", "work", "--foreground").returncode == 0
    refused = cli("start", "again", "--stage", "work")
    assert refused.returncode == 3
    assert "--force" in refused.stderr
    forced = cli("start", "again", "--stage", "work", "--force", "--foreground")
    assert forced.returncode == 0, forced.stderr
    runs = sorted(p.name for p in (project / ".claude" / "pipeline-runs").iterdir())
    assert runs[0] == "again" and runs[1].startswith("again.2")
    old = project / ".claude" / "pipeline-runs" / runs[1] / "state.json"
    assert json.loads(old.read_text())["status"] == "complete"


def test_sigkill_of_engine_leaves_parseable_state_and_crashed_health(project, make_stage, cli):
    make_stage("work", termination={"type": "fixed", "iterations": 50}, extra="mock_delay: 0.2\n")
    assert cli("start", "doomed", "--stage", "work").returncode == 0
    session = Session("doomed", project)
    wait_until(
        lambda: (s := session.status().state) and s.iteration_completed >= 2, what="two iterations"
    )
    state = session.status().state
    os.kill(state.pid, signal.SIGKILL)
    status = wait_until(
        lambda: (s := session.status()).health is Health.CRASHED and s, what="crashed health"
    )
    assert status.state is not None and status.state.iteration_completed >= 2
    completed = [e.iteration for e in session.events() if e.type == "iteration_complete"]
    assert completed == list(range(1, len(completed) + 1))
    assert "died" in (status.detail or "")


def test_list_json_shows_every_session(project, make_stage, cli):
    make_stage("work", termination={"type": "fixed", "iterations": 1})
    for name in ("one", "two"):
        assert cli("start", name, "--stage", "work", "--foreground").returncode == 0
    listed = json.loads(cli("--json", "list").stdout)
    assert [s["session"] for s in listed] == ["one", "two"]
    assert {s["health"] for s in listed} == {"complete"}
    assert all(set(s["resources"]) == {"lock", "state", "tmux"} for s in listed)


def test_python_api_start_wait_and_events(project, make_stage):
    make_stage("work", termination={"type": "fixed", "iterations": 2})
    stage = Stage.load("work", project=project)
    session = Session.start("api", stage.loop(), project)
    final = session.wait(timeout=60)
    assert final.health is Health.COMPLETE
    assert [e.type for e in session.events()][:2] == ["session_start", "stage_start"]
    assert [s.session for s in Session.list(project)] == ["api"]
