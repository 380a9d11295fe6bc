"""A stranger's flock on a session's lock file: named, the same way by every command.

Another local user holding a shared flock on a stale 0644 lock file (as lock files were
before they were made 0600) made ``resume`` and ``start --force`` say "already
running", ``kill`` say "did not stop", while ``status`` said crashed. The same came of
a program of the same user holding it. Now every command names the holder — "the lock
file ... is held by pid N (user X), not by a looprunner engine of this session" — with
exit 3, ``status`` says the same in its detail, and once the holder lets go the session
resumes as before.

The holders are real processes: a python that opens the lock file read-only and holds
``flock`` on it, as this test's user (shared and exclusive) and, when the test runs as
root with ``setpriv``, as user ``nobody`` (uid 65534) on a file left 0644.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from looprunner import Pipeline, Session, Stage
from looprunner.models import Health
from looprunner.names import ProjectPaths
from looprunner.testing import wait_until, write_stage
from tests.faults.faultkit import kill_if_live, no_traceback

pytestmark = pytest.mark.tmux

NOBODY = 65534
HOLDER = (
    "import fcntl, os, sys\n"
    "fd = os.open(sys.argv[1], os.O_RDONLY)\n"
    "fcntl.flock(fd, fcntl.LOCK_SH if sys.argv[2] == 'shared' else fcntl.LOCK_EX)\n"
    "print('held', flush=True)\n"
    "sys.stdin.read()\n"
)


@pytest.fixture
def shared_project(isolated_env: str) -> Iterator[Path]:
    """A project another user can read: the test's own tmp_path is private to root."""
    folder = Path(tempfile.mkdtemp(prefix="looprunner-foreign-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def crashed(project: Path, name: str) -> Path:
    """A session whose engine died mid-run, leaving its lock file; return that file."""
    write_stage(project, "work", termination={"type": "fixed", "iterations": 2})
    env = {**os.environ, "LOOPRUNNER_CRASH_AT": "before_agent:2"}
    Session.start(name, Pipeline.loop(Stage.load("work", project=project)), project, env=env)
    session = Session(name, project)
    wait_until(lambda: session.status().health is Health.CRASHED, what="the crash")
    lock = ProjectPaths.of(project).session(name).lock_file
    assert lock.exists()
    return lock


def hold(argv_prefix: list[str], python: str, lock: Path, mode: str) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [*argv_prefix, python, "-c", HOLDER, str(lock), mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def let_go(holder: subprocess.Popen[str]) -> None:
    assert holder.stdin is not None and holder.stdout is not None
    holder.stdin.close()
    holder.wait(timeout=30)
    holder.stdout.close()


def run(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "looprunner", "--project", str(project), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def check_every_command_names(project: Path, name: str, lock: Path, pid: int, user: str) -> None:
    """status, resume, kill, start --force and cleanup all name the holder, nothing moves."""
    sentence = (
        f"the lock file {lock} is held by pid {pid} (user {user}), "
        "not by a looprunner engine of this session"
    )
    status = run(project, "--json", "status", name)
    no_traceback(status)
    shown = json.loads(status.stdout)
    assert shown["health"] == "crashed", shown
    assert sentence in shown["detail"], shown["detail"]
    assert shown["lock_info"]["foreign"] is True
    assert (shown["lock_info"]["foreign_pid"], shown["lock_info"]["foreign_user"]) == (pid, user)
    human = run(project, "status", name)
    assert sentence in human.stdout, human.stdout
    runs = ProjectPaths.of(project).runs
    before = sorted(p.name for p in runs.iterdir())
    for args in (
        ("resume", name),
        ("kill", name, "--yes"),
        ("start", name, "--stage", "work", "--force"),
    ):
        refused = run(project, *args)
        no_traceback(refused)
        assert refused.returncode == 3, (args, refused.stdout, refused.stderr)
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("looprunner: error: "), (args, lines)
        assert sentence in lines[0], (args, lines[0])
        assert "already running" not in lines[0] and "did not stop" not in lines[0]
    assert sorted(p.name for p in runs.iterdir()) == before, "nothing moved aside"
    assert json.loads(run(project, "--json", "status", name).stdout)["health"] == "crashed"
    tidy = json.loads(run(project, "--json", "cleanup", "--fix", "--yes").stdout)
    mine = [p for p in tidy["problems"] if p["session"] == name]
    assert mine and all(sentence in (p["action"] or "") for p in mine), mine


def resumes_once_free(project: Path, name: str) -> None:
    resumed = run(project, "resume", name)
    assert resumed.returncode == 0, resumed.stderr
    assert run(project, "wait", name, "--timeout", "60").returncode == 0


@pytest.mark.parametrize("mode", ["shared", "exclusive"])
def test_a_program_of_the_same_user_holding_the_lock_is_named(project, tmux_keeper, mode):
    lock = crashed(project, "held")
    holder = hold([], sys.executable, lock, mode)
    try:
        user = subprocess.run(["id", "-un"], capture_output=True, text=True, check=True)
        check_every_command_names(project, "held", lock, holder.pid, user.stdout.strip())
    finally:
        let_go(holder)
    resumes_once_free(project, "held")


def test_another_users_shared_flock_on_an_old_lock_file_is_named(shared_project, tmux_keeper):
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to hold the lock as another user")
    lock = crashed(shared_project, "other")
    lock.chmod(0o644)  # as an older looprunner left its lock files: readable by anyone
    as_nobody = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    holder = hold(as_nobody, "/usr/bin/python3", lock, "shared")
    try:
        check_every_command_names(shared_project, "other", lock, holder.pid, "nobody")
    finally:
        let_go(holder)
        kill_if_live(holder.pid)
    resumes_once_free(shared_project, "other")
