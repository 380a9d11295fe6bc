"""Files and folders under the state folder follow the umask (issue 10, item 9).

Prompts, outputs and progress are the user's work: under ``umask 077`` nobody else may
read them. ``write_atomic`` used to force 0644 on ``state.json``, ``pipeline.yaml``,
``context.json`` and the progress file whatever the umask, and the event log was created
0644 at most. Now every file looprunner creates is ``0666 & ~umask`` and every folder
``0777 & ~umask``, and lock files are always 0600 (nobody else needs to open them).
"""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from looprunner.store.lock import SessionLock
from tests.faults.faultkit import no_traceback

Cli = Callable[..., CompletedProcess[str]]


@contextmanager
def umask(mask: int) -> Iterator[None]:
    """Run the block (and the commands it starts) under ``mask``."""
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def modes(folder: Path) -> dict[str, int]:
    """The permission bits of every file and folder under ``folder``."""
    return {str(p.relative_to(folder)): stat.S_IMODE(p.lstat().st_mode) for p in folder.rglob("*")}


def wrong_modes(state: Path, mask: int) -> dict[str, str]:
    wrong = {}
    for name, mode in modes(state).items():
        path = state / name
        if path.is_dir():
            expected = 0o777 & ~mask
        elif name.endswith(".lock"):
            expected = 0o600
        else:
            expected = 0o666 & ~mask
        if mode != expected:
            wrong[name] = f"{mode:o}, expected {expected:o}"
    return wrong


@pytest.mark.parametrize("mask", [0o077, 0o002], ids=["umask-077", "umask-002"])
def test_a_foreground_run_follows_the_umask(
    cli: Cli, make_stage: Callable[..., Path], project: Path, mask: int
) -> None:
    make_stage("work")
    with umask(mask):
        result = cli("start", "um", "--stage", "work", "-n", "2", "--foreground")
    no_traceback(result)
    assert result.returncode == 0, result.stderr
    state = project / ".claude"
    names = modes(state)
    assert "pipeline-runs/um/state.json" in names
    assert "pipeline-runs/um/stage-00-work/iterations/001/context.json" in names
    assert wrong_modes(state, mask) == {}


@pytest.mark.tmux
def test_a_tmux_run_follows_the_launchers_umask_not_the_servers(
    cli: Cli, make_stage: Callable[..., Path], project: Path, tmux_socket: str
) -> None:
    make_stage("work")
    with umask(0o022):  # the tmux server, started earlier by a shell with another umask
        subprocess.run(
            ["tmux", "-L", tmux_socket, "new-session", "-d", "-s", "keeper", "--", "sleep", "600"],
            check=True,
            capture_output=True,
        )
    with umask(0o077):
        started = cli("start", "um", "--stage", "work", "-n", "2")
        assert started.returncode == 0, started.stderr
        assert cli("wait", "um", "--timeout", "60").returncode == 0
    state = project / ".claude"
    assert "pipeline-runs/um/engine.log" in modes(state)
    assert wrong_modes(state, 0o077) == {}


@pytest.mark.parametrize("mask", [0o077, 0o002, 0o000], ids=["umask-077", "umask-002", "umask-000"])
def test_a_lock_file_is_0600_whatever_the_umask(tmp_path: Path, mask: int) -> None:
    path = tmp_path / ".claude" / "locks" / "um.lock"
    lock = SessionLock(path)
    with umask(mask):
        assert lock.acquire()
    try:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o777 & ~mask
    finally:
        lock.release()
