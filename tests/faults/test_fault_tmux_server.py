"""The tmux server dies, or cannot be reached: health says so, and never lies.

* ``tmux kill-server`` under running sessions: every session ends ``killed`` (the engine
  got SIGHUP) or ``crashed`` — never ``running`` — and ``status``/``list`` answer cleanly;
* a server that cannot be reached, made so for real: tmux refuses to use a socket
  directory other users could write to, so ``chmod 777`` on it makes every tmux call
  fail ("directory ... has unsafe permissions"), root included. A session whose state
  says running and whose lock is free is then ``unknown``, never ``crashed``; a live
  engine (lock held) is still ``running``;
* a server that does not answer (SIGSTOP): ``status`` gives up after the backend's
  timeout and says ``unknown``, instead of hanging.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from looprunner import Session
from looprunner.models import Health
from looprunner.testing import tmux_socket_path, wait_until
from tests.faults.faultkit import Gate, is_live, no_traceback

pytestmark = pytest.mark.tmux


def tmux(socket: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["tmux", "-L", socket, *args], capture_output=True, text=True, check=False, timeout=30
    )


@pytest.fixture
def private_tmux_dir(tmux_socket: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A TMUX_TMPDIR of this test alone, so making it unusable affects no one else.

    Made directly under /tmp: a socket path must fit in 108 bytes, which pytest's
    tmp_path does not leave room for.
    """
    base = Path(tempfile.mkdtemp(prefix="lrtmux-", dir="/tmp"))
    monkeypatch.setenv("TMUX_TMPDIR", str(base))
    yield base
    with contextlib.suppress(OSError):
        (base / f"tmux-{os.getuid()}").chmod(0o700)
    tmux(tmux_socket, "kill-server")
    shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def unreachable(socket: str) -> Iterator[None]:
    """Make the tmux server of ``socket`` unreachable for every client, then reachable."""
    folder = tmux_socket_path(socket).parent
    folder.mkdir(mode=0o700, exist_ok=True)
    folder.chmod(0o777)
    try:
        refused = tmux(socket, "list-sessions")
        assert refused.returncode != 0 and "unsafe permissions" in refused.stderr, refused
        yield
    finally:
        folder.chmod(0o700)


def health_json(cli, name: str) -> dict:
    shown = cli("--json", "status", name)
    no_traceback(shown)
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)


def test_kill_server_under_running_sessions_ends_each_killed_or_crashed(
    project, cli, tmp_path, tmux_socket
):
    gate = Gate(tmp_path / "gate")
    gate.stage(project, iterations=3)
    names = ["srv-a", "srv-b", "srv-c"]
    for name in names:
        assert cli("start", name, "--stage", "work").returncode == 0
    gate.wait_started("srv-a", 1)
    gate.release("srv-b", 1)  # srv-b is between iterations or in its second one
    gate.wait_started("srv-b", 2)
    gate.wait_started("srv-c", 1)
    engines = {name: Session(name, project).status().state.pid for name in names}
    assert tmux(tmux_socket, "kill-server").returncode == 0
    for name, pid in engines.items():
        wait_until(lambda pid=pid: not is_live(pid), timeout=60, what=f"engine of {name} to end")
    for name in names:
        status = health_json(cli, name)
        assert status["health"] in ("killed", "crashed"), status
        assert status["resources"]["tmux"] is False
    listed = cli("--json", "list")
    no_traceback(listed)
    assert {s["health"] for s in json.loads(listed.stdout)} <= {"killed", "crashed"}
    human = cli("list")
    no_traceback(human)
    assert human.returncode == 0 and "running" not in human.stdout
    # and the history is intact: each one resumes to the end
    for name in names:
        gate.release(name)
        assert cli("resume", name).returncode == 0
    for name in names:
        assert cli("wait", name, "--timeout", "60").returncode == 0


def test_unreachable_tmux_server_is_unknown_never_crashed(
    project, cli, tmp_path, tmux_socket, private_tmux_dir, tmux_keeper
):
    gate = Gate(tmp_path / "gate")
    gate.stage(project, iterations=2)
    assert cli("start", "dead", "--stage", "work").returncode == 0
    assert cli("start", "alive", "--stage", "work").returncode == 0
    gate.wait_started("dead", 1)
    gate.wait_started("alive", 1)
    dead = Session("dead", project)
    pid = dead.status().state.pid
    os.kill(pid, signal.SIGKILL)  # state says running, the lock is free
    wait_until(lambda: not is_live(pid), what="the engine to die")
    wait_until(lambda: dead.status().health is Health.CRASHED, what="tmux to close its session")

    with unreachable(tmux_socket):
        status = dead.status()
        assert status.health is Health.UNKNOWN, status
        assert status.resources.tmux is None
        assert "cannot be reached" in status.detail
        assert Session("alive", project).status().health is Health.RUNNING, "the lock decides"
        shown = health_json(cli, "dead")
        assert shown["health"] == "unknown" and shown["resources"]["tmux"] is None
        assert health_json(cli, "alive")["health"] == "running"
        listed = cli("--json", "list")
        no_traceback(listed)
        assert {s["session"]: s["health"] for s in json.loads(listed.stdout)} == {
            "dead": "unknown",
            "alive": "running",
        }
        human = cli("list")
        no_traceback(human)
        assert "crashed" not in human.stdout and "unknown" in human.stdout
        text = cli("status", "dead")
        no_traceback(text)
        assert text.returncode == 0 and "dead: unknown" in text.stdout
        refused = cli("resume", "dead")
        no_traceback(refused)
        assert refused.returncode == 1 and "cannot be reached" in refused.stderr
        report = json.loads(cli("--json", "cleanup").stdout)
        assert report["tmux_reachable"] is False

    assert dead.status().health is Health.CRASHED, "reachable again: the crash shows"
    gate.release("dead")
    gate.release("alive")
    assert cli("resume", "dead").returncode == 0
    assert cli("wait", "dead", "--timeout", "60").returncode == 0
    assert cli("wait", "alive", "--timeout", "60").returncode == 0


@pytest.mark.slow
def test_a_stopped_tmux_server_makes_status_unknown_instead_of_hanging(
    project, cli, tmp_path, tmux_socket, tmux_keeper
):
    gate = Gate(tmp_path / "gate")
    gate.stage(project)
    assert cli("start", "stuck", "--stage", "work").returncode == 0
    gate.wait_started("stuck", 1)
    session = Session("stuck", project)
    pid = session.status().state.pid
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not is_live(pid), what="the engine to die")
    wait_until(lambda: session.status().health is Health.CRASHED, what="its tmux session to close")
    server = int(tmux(tmux_socket, "display-message", "-p", "#{pid}").stdout)
    os.kill(server, signal.SIGSTOP)
    try:
        shown = cli("--json", "status", "stuck", timeout=90)
        no_traceback(shown)
        assert shown.returncode == 0
        assert json.loads(shown.stdout)["health"] == "unknown"
    finally:
        os.kill(server, signal.SIGCONT)


def test_a_tmux_server_exiting_as_status_asks_is_not_reported_unreachable(
    project, cli, tmp_path, tmux_socket
):
    gate = Gate(tmp_path / "gate")
    gate.stage(project)
    assert cli("start", "exit", "--stage", "work").returncode == 0
    gate.wait_started("exit", 1)
    session = Session("exit", project)
    pid = session.status().state.pid
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not is_live(pid), what="the engine to die")
    wait_until(
        lambda: "no server running" in tmux(tmux_socket, "list-sessions").stderr,
        what="the tmux server to exit with its last session",
    )
    path = tmux_socket_path(tmux_socket)
    path.unlink()
    exiting = socket.socket(socket.AF_UNIX)
    exiting.bind(str(path))
    exiting.listen(1)
    exiting.settimeout(60)

    def exit_on_first_client() -> None:
        with contextlib.suppress(OSError):
            client, _ = exiting.accept()
            client.close()
        exiting.close()
        path.unlink(missing_ok=True)

    server = threading.Thread(target=exit_on_first_client)
    server.start()
    try:
        status = session.status()
    finally:
        server.join(timeout=60)
    assert status.health is Health.CRASHED, status
