"""``looprunner top``: one frame as text and JSON, tmux asked once, the live view in a pane."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from looprunner import Session
from looprunner.models import Health
from looprunner.testing.kit import tmux_socket_path
from tests.conftest import wait_until
from tests.fakes import paying_claude

pytestmark = pytest.mark.tmux

CONTINUE = {"decision": "continue", "reason": "more", "summary": "did one"}


def healthy(project: Path, name: str, health: Health) -> None:
    wait_until(
        lambda: Session(name, project).status().health is health, what=f"{name} {health.value}"
    )


@pytest.fixture
def sessions(project: Path, make_stage, cli, tmp_path, monkeypatch) -> Path:
    """Two running sessions, one failed, one complete (whose agent reported its cost)."""
    folder = paying_claude.install(tmp_path / "agents")
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    make_stage("slow", termination={"type": "fixed", "iterations": 5}, extra="mock_delay: 60\n")
    make_stage("paid", provider="claude", termination={"type": "fixed", "iterations": 3})
    make_stage("broken", statuses={"default": CONTINUE, 2: {"crash": True}})
    for name, stage in (("alpha", "slow"), ("beta", "slow"), ("done", "paid"), ("oops", "broken")):
        assert cli("start", name, "--stage", stage).returncode == 0
    healthy(project, "done", Health.COMPLETE)
    healthy(project, "oops", Health.FAILED)
    for name in ("alpha", "beta"):
        wait_until(lambda n=name: Session(n, project).status().state.agent_pid, what="agent")
    return project


def test_top_once_prints_every_session_with_health_cost_and_last_decision(sessions, cli):
    """One frame as plain text, then the same rows as JSON."""
    shown = cli("top", "--once")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert "4 sessions: 1 complete, 1 failed, 2 running" in lines[0]
    assert lines[2].split() == [
        "NAME", "HEALTH", "STAGE", "ITER", "COST", "DECISION", "DECIDED", "EV/MIN", "AGE",
    ]  # fmt: skip
    rows = {line.split()[0]: line.rstrip() for line in lines[4:] if line.strip()}
    assert sorted(rows) == ["alpha", "beta", "done", "oops"]
    # the finished ones: cost summed from what the agent reported, the last decision
    ago = r"\d+s ago\s+\d+\s+\d+s"  # DECIDED, EV/MIN, AGE
    assert re.fullmatch(rf"done\s+complete\s+paid\s+3/3\s+\$0\.7500\s+stop\s+{ago}", rows["done"])
    assert re.fullmatch(rf"oops\s+failed\s+broken\s+2/3\s+failed\s+{ago}", rows["oops"])
    # running, first iteration under way: no cost reported, so none shown (not $0), no decision
    for name in ("alpha", "beta"):
        assert re.fullmatch(rf"{name}\s+running\s+slow\s+1/5\s+\d+\s+\d+s", rows[name]), rows[name]
    assert "\x1b[" not in shown.stdout  # not a terminal: plain text

    # the same rows as JSON
    shown = cli("--json", "top", "--once")
    assert shown.returncode == 0, shown.stderr
    rows = {row["session"]: row for row in json.loads(shown.stdout)}
    assert {name: row["health"] for name, row in rows.items()} == {
        "alpha": "running", "beta": "running", "done": "complete", "oops": "failed",
    }  # fmt: skip
    done, oops, alpha = rows["done"], rows["oops"], rows["alpha"]
    assert done["cost_usd"] == pytest.approx(0.75)
    assert (done["decision"], done["iteration"], done["max_iterations"]) == ("stop", 3, 3)
    assert done["events_per_minute"] >= 8  # start, 3 x (start, complete), stage and session ends
    assert oops["decision"] == "failed" and oops["cost_usd"] is None
    assert alpha["cost_usd"] is None and alpha["decision"] is None  # unknown, never zero
    assert alpha["decided_at"] is None and alpha["iteration"] == 1


def test_top_asks_tmux_once_per_refresh(sessions, cli, tmp_path):
    """A ``tmux`` first on PATH that logs each call, then runs the real one."""
    real = shutil.which("tmux")
    folder = tmp_path / "bin"
    folder.mkdir()
    log = tmp_path / "tmux-calls.log"
    wrapper = folder / "tmux"
    wrapper.write_text(
        f'#!/bin/sh\nprintf "%s\\n" "$*" >> {log}\nexec {real} "$@"\n', encoding="utf-8"
    )
    wrapper.chmod(0o755)
    env = {"PATH": f"{folder}{os.pathsep}{os.environ['PATH']}"}
    assert cli("top", "--once", env=env).returncode == 0
    calls = log.read_text().splitlines()
    assert len(calls) == 1 and "list-sessions" in calls[0], calls  # four sessions, one call
    log.unlink()
    assert cli("--json", "top", env=env).returncode == 0
    assert len(log.read_text().splitlines()) == 1


def test_top_without_a_terminal_says_how_to_get_one_frame(project, cli):
    shown = cli("top", input="")
    assert shown.returncode == 2
    assert "top --once" in shown.stderr and shown.stdout == ""


class Pane:
    """A program in a pane of a tmux server of the test's own (not looprunner's)."""

    def __init__(self, argv: list[str]) -> None:
        self.socket = f"lrtop-{uuid.uuid4().hex[:10]}"
        self.tmux("new-session", "-d", "-s", "view", "-x", "120", "-y", "30", "--", *argv)
        self.tmux("set-option", "-t", "view", "remain-on-exit", "on")

    def tmux(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=False
        )
        return done.stdout

    def screen(self, *, escapes: bool = False) -> str:
        return self.tmux("capture-pane", "-p", *(["-e"] if escapes else []), "-t", "view")

    def expect(self, text: str) -> str:
        def seen() -> str:
            screen = self.screen()
            return screen if text in screen else ""

        try:  # a generous deadline: a loaded machine starts Python slowly
            return wait_until(seen, timeout=90, what=f"{text!r} in the pane")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the pane shows:\n{self.screen()}") from None

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "view", *keys)

    def exit_status(self) -> int:
        """The program's exit status, once it has exited.

        From tmux's ``pane_dead_status``, or, while tmux has not reaped it yet (seen on a
        loaded machine), from the exit code Linux keeps for a zombie in /proc/PID/stat.
        """
        pid = self.tmux("display-message", "-p", "-t", "view", "#{pane_pid}").strip()

        def ended() -> str:
            dead = self.tmux("display-message", "-p", "-t", "view", "#{pane_dead_status}")
            if dead.strip():
                return dead.strip()
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                return ""
            fields = stat.rsplit(")", 1)[1].split()
            zombie = fields[0] == "Z"
            return str(os.waitstatus_to_exitcode(int(fields[-1]))) if zombie else ""

        try:
            return int(wait_until(ended, timeout=90, what="the program to exit"))
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the pane shows:\n{self.screen()}") from None

    def close(self) -> None:
        self.tmux("kill-server")
        tmux_socket_path(self.socket).unlink(missing_ok=True)


def top_argv(project: Path, *env: str) -> list[str]:
    looprunner = [sys.executable, "-m", "looprunner", "--project", str(project)]
    return ["env", "-u", "TMUX", *env, *looprunner, "top", "--interval", "0.5"]


def test_the_live_view_selects_asks_before_killing_kills_and_quits_on_q(sessions, tmux_socket):
    pane = Pane(top_argv(sessions, "NO_COLOR=1", f"LOOPRUNNER_TMUX_SOCKET={tmux_socket}"))
    try:
        pane.expect("q quit")
        pane.keys("Down")  # beta
        pane.keys("k")
        pane.expect("kill beta? y/N")
        pane.keys("n")
        pane.expect("beta left running")
        assert Session("beta", sessions).status().health is Health.RUNNING
        pane.keys("m")
        pane.expect("beta: engine.log")
        pane.keys("Up", "k")  # alpha, the first row
        pane.expect("kill alpha? y/N")
        pane.keys("y")
        pane.expect("alpha is killed")
        assert Session("alpha", sessions).status().health is Health.KILLED
        assert Session("beta", sessions).status().health is Health.RUNNING
        pane.keys("q")
        assert pane.exit_status() == 0
    finally:
        pane.close()


COLOUR = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-7]|9[0-7]|38;[0-9;]+)m")


def test_the_live_view_has_colour_unless_no_color_is_set(sessions, tmux_socket):
    for env, coloured in ((["-u", "NO_COLOR"], True), (["NO_COLOR=1"], False)):
        pane = Pane(top_argv(sessions, *env, f"LOOPRUNNER_TMUX_SOCKET={tmux_socket}"))
        try:
            pane.expect("q quit")
            assert bool(COLOUR.search(pane.screen(escapes=True))) is coloured, env
            pane.keys("q")
            assert pane.exit_status() == 0
        finally:
            pane.close()
