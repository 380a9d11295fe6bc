"""Crude edges (issue 10, item 10): each gives one clear line and its exit code.

* ``.claude/pipeline-runs/NAME`` a symlink to nowhere: ``start`` (and ``start --force``)
  ended "internal error: FileExistsError", exit 1. Now: exit 3, one line naming the link
  and where it points, the link left alone; ``status`` says why there is no session.
* ``kill`` of a session whose engine belongs to another user: "internal error:
  PermissionError", exit 1. Reproduced for real: the engine runs as root (this test's
  user) and ``kill`` runs as ``nobody`` (``setpriv``), which may read the project but
  not signal the engine. Now: exit 1, one line saying the engine belongs to another
  user, and the engine runs on.
* a stopped (SIGSTOP) engine was shown ``running`` with no hint. Now ``status`` says
  health ``running`` with detail "stopped (SIGSTOP)" (state letter ``T`` in
  ``/proc/PID/stat``); after SIGCONT the detail is gone.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from looprunner.names import ProjectPaths
from looprunner.testing import wait_until
from tests.faults.faultkit import Gate, is_live, kill_if_live, no_traceback

NOBODY = 65534


def test_start_over_a_dangling_run_folder_link_says_so(project, make_stage, cli):
    make_stage("work")
    runs = ProjectPaths.of(project).runs
    runs.mkdir(parents=True)
    link = runs / "dang"
    link.symlink_to("/nonexistent/looprunner-target")
    for extra in ([], ["--force"]):
        result = cli("start", "dang", "--stage", "work", "-n", "1", "--foreground", *extra)
        no_traceback(result)
        assert result.returncode == 3, (result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, lines
        assert str(link) in lines[0] and "symbolic link" in lines[0], lines[0]
        assert "/nonexistent/looprunner-target" in lines[0], lines[0]
        assert link.is_symlink() and str(link.readlink()) == "/nonexistent/looprunner-target"
        assert not ProjectPaths.of(project).session("dang").lock_file.exists()
    status = cli("status", "dang")
    no_traceback(status)
    assert status.returncode == 4
    assert "symbolic link" in status.stderr and "does not exist" in status.stderr


# --------------------------------------------------------------------------- another user


def other_user_python() -> list[str] | None:
    """A python that user ``nobody`` can run, importing this checkout; None if none."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        return None
    site = next(Path(sys.prefix).glob("lib/python*/site-packages"), None)
    checkout = Path(__file__).resolve().parents[2]
    for candidate in (sys.executable, "/usr/bin/python3"):
        argv = [
            "setpriv",
            f"--reuid={NOBODY}",
            f"--regid={NOBODY}",
            "--clear-groups",
            candidate,
            "-c",
            "import site, sys; site.addsitedir(sys.argv[1]); sys.path.insert(0, sys.argv[2]);"
            " from looprunner.cli import main; main(sys.argv[3:])",
            str(site),
            str(checkout),
        ]
        probe = subprocess.run([*argv, "--version"], capture_output=True, text=True, check=False)
        if probe.returncode == 0:
            return argv
    return None


@pytest.fixture
def shared_project(isolated_env: str) -> Iterator[Path]:
    """A project another user can read: the test's own tmp_path is private to root."""
    folder = Path(tempfile.mkdtemp(prefix="looprunner-shared-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.tmux
def test_kill_of_another_users_engine_says_so(shared_project, tmp_path, tmux_keeper):
    as_nobody = other_user_python()
    if as_nobody is None:
        pytest.skip("needs root, setpriv and a python user nobody can run")
    gate = Gate(tmp_path / "gate")
    gate.stage(shared_project)
    base = [sys.executable, "-m", "looprunner", "--project", str(shared_project)]
    started = subprocess.run(
        [*base, "start", "other", "--stage", "work"], capture_output=True, text=True, check=False
    )
    assert started.returncode == 0, started.stderr
    gate.wait_started("other", 1)
    paths = ProjectPaths.of(shared_project).session("other")
    engine = json.loads(paths.state_file.read_text())["pid"]
    try:
        result = subprocess.run(
            [*as_nobody, "--project", str(shared_project), "kill", "other", "--yes"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        no_traceback(result)
        assert result.returncode == 1, (result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, lines
        assert "another user" in lines[0] and str(engine) in lines[0], lines[0]
        assert is_live(engine), "the engine was not stopped"
        assert json.loads(paths.state_file.read_text())["status"] == "running"
    finally:
        gate.release("other")
    waited = subprocess.run(
        [*base, "wait", "other", "--timeout", "60"], capture_output=True, text=True, check=False
    )
    assert waited.returncode == 0, waited.stderr


# --------------------------------------------------------------------------- SIGSTOP


def test_a_stopped_engine_is_running_with_a_detail(project, tmp_path, cli):
    gate = Gate(tmp_path / "gate")
    gate.stage(project)
    argv = ["start", "halt", "--stage", "work", "--foreground"]
    engine = subprocess.Popen(
        [sys.executable, "-m", "looprunner", "--project", str(project), *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        gate.wait_started("halt", 1)
        os.kill(engine.pid, signal.SIGSTOP)
        wait_until(lambda: _state_letter(engine.pid) == "T", what="the engine to stop")

        def status() -> dict:
            result = cli("--json", "status", "halt")
            no_traceback(result)
            assert result.returncode == 0, result.stderr
            return json.loads(result.stdout)

        stopped = status()
        assert stopped["health"] == "running"
        assert "stopped (SIGSTOP)" in (stopped.get("detail") or ""), stopped.get("detail")
        human = cli("status", "halt")
        assert "stopped (SIGSTOP)" in human.stdout, human.stdout
        os.kill(engine.pid, signal.SIGCONT)
        wait_until(lambda: _state_letter(engine.pid) != "T", what="the engine to go on")
        going = status()
        assert going["health"] == "running"
        assert "stopped" not in (going.get("detail") or "")
        gate.release("halt")
        assert engine.wait(timeout=60) == 0
    finally:
        kill_if_live(engine.pid, signal.SIGCONT)
        gate.release("halt")
        kill_if_live(engine.pid)
        engine.wait(timeout=30)


def _state_letter(pid: int) -> str | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return raw[raw.rfind(b")") + 2 :].split()[0].decode()
