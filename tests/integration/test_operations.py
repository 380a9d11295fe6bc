"""Operating sessions for real: monitor, tail, attach, kill confirmation, cleanup, front door."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from looprunner import Session
from looprunner.models import Health
from looprunner.names import ProjectPaths
from tests.conftest import wait_until

pytestmark = pytest.mark.tmux


def tmux(socket: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["tmux", "-L", socket, *args], capture_output=True, text=True, check=False
    )


def running_session(project: Path, make_stage, cli, name: str = "busy", **stage) -> Session:
    make_stage(
        "work",
        termination={"type": "fixed", "iterations": 3},
        outputs={"default": "MARKER-OUTPUT\n"},
        extra="mock_delay: 60\n",
        **stage,
    )
    assert cli("start", name, "--stage", "work").returncode == 0
    session = Session(name, project)
    wait_until(lambda: (s := session.status().state) and s.agent_pid, what="agent running")
    return session


class Terminal:
    """A program on a pseudo-terminal, read until an expected text appears."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # pragma: no cover - child
            os.execvpe(argv[0], argv, env)
        self.seen = ""

    def expect(self, text: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"did not see {text!r}; screen so far:\n{self.seen[-2000:]}")
            ready, _, _ = select.select([self.fd], [], [], remaining)
            if ready:
                try:
                    self.seen += os.read(self.fd, 65536).decode("utf-8", "replace")
                except OSError:
                    break
        if text not in self.seen:
            raise AssertionError(f"did not see {text!r}; screen so far:\n{self.seen[-2000:]}")
        return self.seen

    def send(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def wait(self, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return os.waitstatus_to_exitcode(status)
            try:
                if select.select([self.fd], [], [], 0.1)[0]:
                    self.seen += os.read(self.fd, 65536).decode("utf-8", "replace")
            except OSError:
                pass
        os.kill(self.pid, signal.SIGKILL)
        raise AssertionError(f"program did not exit; screen:\n{self.seen[-1500:]!r}")


def looprunner_argv(project: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "looprunner", "--project", str(project), *args]


def test_monitor_shows_the_live_pane_then_the_engine_log_after_the_end(project, make_stage, cli):
    session = running_session(project, make_stage, cli)
    live = json.loads(cli("--json", "monitor", "busy", "--lines", "20").stdout)
    assert live["source"] == "tmux"
    assert any("MARKER-OUTPUT" in line for line in live["lines"])
    human = cli("monitor", "busy", "-n", "5")
    assert "busy: running" in human.stdout and "iteration 1/3" in human.stdout
    assert cli("kill", "busy", "--yes").returncode == 0
    after = json.loads(cli("--json", "monitor", "busy").stdout)
    assert after["source"] == "engine.log"
    assert any("MARKER-OUTPUT" in line for line in after["lines"])
    assert any("session killed" in line for line in after["lines"])
    assert session.status().health is Health.KILLED


def test_monitor_follow_streams_until_the_session_ends(project, make_stage, cli):
    make_stage("work", termination={"type": "fixed", "iterations": 3}, extra="mock_delay: 0.3\n")
    assert cli("start", "f", "--stage", "work").returncode == 0
    followed = cli("monitor", "f", "--follow", timeout=60)
    assert followed.returncode == 0
    assert "session complete" in followed.stdout


def test_tail_prints_readable_events_raw_json_and_follows(project, make_stage, cli):
    make_stage("work", termination={"type": "fixed", "iterations": 2}, extra="mock_delay: 0.3\n")
    assert cli("start", "t", "--stage", "work").returncode == 0
    followed = cli("tail", "t", "--follow", timeout=60)
    assert followed.returncode == 0
    lines = followed.stdout.splitlines()
    assert any("iteration_complete" in line and "continue" in line for line in lines)
    assert "session_complete" in lines[-1]
    raw = [json.loads(line) for line in cli("--json", "tail", "t").stdout.splitlines()]
    assert [e["seq"] for e in raw] == list(range(1, len(raw) + 1))
    assert raw[-1]["type"] == "session_complete"
    last_two = cli("tail", "t", "-n", "2").stdout.splitlines()
    assert len(last_two) == 2


def test_attach_through_a_terminal_and_detach_leaves_it_running(
    project, make_stage, cli, tmux_socket
):
    running_session(project, make_stage, cli, name="att")
    term = Terminal(looprunner_argv(project, "attach", "att"), dict(os.environ, TERM="xterm"))
    term.expect("MARKER-OUTPUT")
    # detach as another terminal would (a key press races tmux's start-up terminal queries)
    wait_until(
        lambda: tmux(tmux_socket, "list-clients", "-t", "=pipeline-att").stdout.strip(),
        what="client",
    )
    tmux(tmux_socket, "detach-client", "-s", "=pipeline-att")
    assert term.wait() == 0
    assert Session("att", project).status().health is Health.RUNNING
    cli("kill", "att", "--yes")


def test_attach_without_a_terminal_or_a_live_session_says_what_to_do_instead(
    project, make_stage, cli
):
    running_session(project, make_stage, cli, name="att2")
    no_tty = cli("attach", "att2")
    assert no_tty.returncode == 1
    assert "monitor" in no_tty.stderr and "Traceback" not in no_tty.stderr
    cli("kill", "att2", "--yes")
    gone = cli("attach", "att2")
    assert gone.returncode == 1
    assert "no live tmux session" in gone.stderr


def test_kill_without_yes_outside_a_terminal_refuses_and_changes_nothing(project, make_stage, cli):
    session = running_session(project, make_stage, cli, name="keep")
    refused = cli("kill", "keep")
    assert refused.returncode == 2
    assert "--yes" in refused.stderr
    assert session.status().health is Health.RUNNING
    cli("kill", "keep", "--yes")


def test_kill_asks_in_a_terminal(project, make_stage, cli):
    session = running_session(project, make_stage, cli, name="ask")
    term = Terminal(looprunner_argv(project, "kill", "ask"), dict(os.environ))
    term.expect("Kill session ask")
    term.send("y\n")
    assert term.wait() == 0
    assert session.status().health is Health.KILLED


def test_unknown_session_exits_4_naming_the_sessions_that_exist(project, make_stage, cli):
    make_stage("work", termination={"type": "fixed", "iterations": 1})
    assert cli("start", "real-one", "--stage", "work", "--foreground").returncode == 0
    for command in ("status", "monitor", "tail", "kill", "wait", "resume", "attach"):
        result = cli(command, "nope")
        assert result.returncode == 4, command
        assert "real-one" in result.stderr, command


def test_cleanup_finds_and_fixes_each_problem_and_touches_nothing_else(
    project, make_stage, cli, tmux_socket
):
    # a zombie state and a stale lock, made for real: SIGKILL an engine
    make_stage("work", termination={"type": "fixed", "iterations": 50}, extra="mock_delay: 60\n")
    assert cli("start", "zombie", "--stage", "work").returncode == 0
    zombie = Session("zombie", project)
    state = wait_until(lambda: (s := zombie.status().state) and s.agent_pid and s, what="agent")
    os.kill(state.pid, signal.SIGKILL)
    wait_until(lambda: zombie.status().health is Health.CRASHED, what="crashed")
    # an orphaned tmux session: ours (marked) but with no engine
    tmux(tmux_socket, "new-session", "-d", "-s", "pipeline-ghost", "--", "sleep", "600")
    tmux(tmux_socket, "set-option", "-t", "=pipeline-ghost:", "@looprunner", str(project))
    # tmux sessions that are not ours must survive
    tmux(tmux_socket, "new-session", "-d", "-s", "pipeline-notours", "--", "sleep", "600")
    tmux(tmux_socket, "new-session", "-d", "-s", "work", "--", "sleep", "600")
    # and a live session must not be touched
    running_session(project, make_stage, cli, name="alive")

    env = {"LOOPRUNNER_ORPHAN_GRACE": "0"}
    report = json.loads(cli("--json", "cleanup", env=env).stdout)
    found = {(p["session"], p["kind"]) for p in report["problems"]}
    assert found == {
        ("zombie", "zombie_state"),
        ("zombie", "stale_lock"),
        ("ghost", "orphaned_tmux"),
    }
    assert all(p["fixed"] is False for p in report["problems"]), "a dry run changes nothing"
    assert zombie.status().health is Health.CRASHED

    fixed = json.loads(cli("--json", "cleanup", "--fix", "--yes", env=env).stdout)
    assert all(p["fixed"] for p in fixed["problems"]), fixed
    assert not ProjectPaths.of(project).session("zombie").lock_file.exists()
    after = zombie.status()
    assert after.health is Health.CRASHED and after.state.error.type == "crashed"
    sessions = tmux(tmux_socket, "list-sessions", "-F", "#{session_name}").stdout.split()
    assert "pipeline-ghost" not in sessions
    assert {"pipeline-notours", "work", "pipeline-alive"} <= set(sessions)
    assert Session("alive", project).status().health is Health.RUNNING
    assert json.loads(cli("--json", "cleanup", env=env).stdout)["problems"] == []
    # the repaired zombie is resumable
    assert cli("resume", "zombie").returncode == 0
    cli("kill", "zombie", "--yes")
    cli("kill", "alive", "--yes")


def test_two_cleanups_at_once_and_a_cleanup_racing_a_start_break_nothing(project, make_stage, cli):
    make_stage("work", termination={"type": "fixed", "iterations": 2}, extra="mock_delay: 0.2\n")
    procs = [
        subprocess.Popen(
            looprunner_argv(project, "cleanup", "--fix", "--yes"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(3)
    ]
    started = cli("start", "racer", "--stage", "work")
    more = [
        subprocess.Popen(
            looprunner_argv(project, "cleanup", "--fix", "--yes"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(3)
    ]
    for proc in procs + more:
        proc.communicate(timeout=60)
        assert proc.returncode == 0
    assert started.returncode == 0, started.stderr
    assert cli("wait", "racer", "--timeout", "60").returncode == 0


def test_tmux_server_killed_under_a_running_session_is_recorded_not_misreported(
    project, make_stage, cli, tmux_socket
):
    session = running_session(project, make_stage, cli, name="hup")
    tmux(tmux_socket, "kill-server")
    final = wait_until(
        lambda: (s := session.status()).health is not Health.RUNNING and s, what="engine to stop"
    )
    assert final.health in (Health.KILLED, Health.CRASHED)
    assert final.resources.tmux is False
    assert (
        not ProjectPaths.of(project).session("hup").lock_file.exists()
        or final.health is Health.CRASHED
    )


def test_front_door_in_a_terminal_lists_and_shows_status(project, make_stage, cli):
    make_stage("work", termination={"type": "fixed", "iterations": 1})
    assert cli("start", "door", "--stage", "work", "--foreground").returncode == 0
    term = Terminal(looprunner_argv(project), dict(os.environ))
    term.expect("What would you like to do?")
    term.send("2\n")  # list
    term.expect("door")
    term.expect("What would you like to do?")
    term.send("3\n")  # status
    term.expect("Session number")
    term.send("1\n")
    term.expect("run dir")
    term.send("\n")  # quit
    assert term.wait() == 0


def test_bare_command_outside_a_terminal_prints_help(cli):
    result = cli()
    assert result.returncode == 0
    assert "Usage:" in result.stdout and "start" in result.stdout


def test_stages_and_pipelines_list_where_each_comes_from(project, make_stage, cli):
    make_stage("mine")
    (project / "scripts" / "stages" / "work").mkdir(parents=True)  # a folder that is not a stage
    (project / ".looprunner" / "pipelines").mkdir(parents=True)
    (project / ".looprunner" / "pipelines" / "flow.yaml").write_text(
        "nodes:\n  - id: a\n    stage: mine\n"
    )
    stages = {s["name"]: s for s in json.loads(cli("--json", "stages").stdout)}
    assert stages["mine"]["origin"] == "project" and stages["mine"]["problem"] is None
    assert "not a stage" in stages["work"]["problem"]
    pipelines = json.loads(cli("--json", "pipelines").stdout)
    assert pipelines == [
        {
            "name": "flow",
            "path": str(project / ".looprunner" / "pipelines" / "flow.yaml"),
            "origin": "project",
        }
    ]


def test_shell_completion_offers_commands_and_session_names(project, make_stage, cli):
    make_stage("work", termination={"type": "fixed", "iterations": 1})
    assert cli("start", "alpha", "--stage", "work", "--foreground").returncode == 0
    env = {
        "_LOOPRUNNER_COMPLETE": "bash_complete",
        "COMP_WORDS": f"looprunner --project {project} status al",
        "COMP_CWORD": "4",
    }
    result = subprocess.run(
        [sys.executable, "-m", "looprunner"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert "alpha" in result.stdout
    assert "_looprunner_completion" in cli("completion", "bash").stdout
