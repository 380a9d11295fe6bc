"""How an agent is started: without copying the engine, and still ended when it dies.

Each test runs a small engine of its own (a Python process driving an ``AgentRunner``)
so it can be killed, or watched for forks, without touching the test process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from looprunner.engine import spawn, warden
from tests.conftest import wait_until

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's"
)

#: an engine of its own: runs one agent (argv from the command line) and prints its pid
ENGINE = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from looprunner.engine import spawn
    from looprunner.engine.process import AgentRunner
    from looprunner.models import AgentCommand

    forks = Path(sys.argv[1])
    os.register_at_fork(after_in_child=lambda: forks.write_text("forked"))
    if sys.argv[2] != "warden":  # as where no warden can be started
        spawn.use_warden = False
    if sys.argv[2] == "no-setpriv":  # as on a system without setpriv either
        spawn._probed, spawn._wrapper = True, None
    result = AgentRunner().run(
        AgentCommand(argv=tuple(sys.argv[3:])),
        cwd=Path.cwd(),
        env=os.environ,
        timeout=120,
        on_output=lambda chunk: None,
        on_start=lambda pid: print(pid, flush=True),
        grace=1,
    )
    print("exit", result.exit_code, result.spawn_error, flush=True)
    """
)


def _engine(tmp_path: Path, mode: str, *argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", ENGINE, str(tmp_path / "forks"), mode, *argv],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own group, as an engine in a tmux pane
    )


def _warden_of(engine: subprocess.Popen[str]) -> int:
    """The pid of the engine's warden: its child running the warden's script."""
    children = Path(f"/proc/{engine.pid}/task/{engine.pid}/children").read_text().split()
    shells = [int(c) for c in children if _cmdline(int(c))[2:] == [warden.SCRIPT]]
    assert len(shells) == 1, children
    return shells[0]


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode() for part in raw.split(b"\0") if part]


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting to be reaped is dead)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return raw[raw.rfind(b")") + 2 :].split()[0] != b"Z"


@pytest.mark.parametrize("mode", ["warden", "setpriv"])
def test_starting_an_agent_does_not_copy_the_engine(tmp_path: Path, mode: str) -> None:
    """No Python runs in a copy of the engine: a plugin's at-fork handler never fires."""
    if mode == "setpriv" and spawn.death_signal_wrapper() is None:
        pytest.skip("no setpriv with --pdeathsig here: agents start through preexec_fn")
    engine = _engine(tmp_path, mode, "/bin/sh", "-c", "echo hello")
    out, _ = engine.communicate(timeout=60)
    assert out.splitlines()[-1] == "exit 0 None"
    assert not (tmp_path / "forks").exists()


@pytest.mark.parametrize("mode", ["warden", "setpriv", "no-setpriv"])
def test_an_agent_is_ended_when_its_engine_is_killed(tmp_path: Path, mode: str) -> None:
    """SIGKILL the engine: its agent gets SIGTERM (docs/reliability.md)."""
    engine = _engine(tmp_path, mode, "/bin/sh", "-c", "exec sleep 120")
    try:
        assert engine.stdout is not None
        agent = int(engine.stdout.readline())
        assert _alive(agent)
        engine.send_signal(signal.SIGKILL)
        engine.wait(timeout=30)
        wait_until(lambda: not _alive(agent), timeout=30, what="the agent to end")
    finally:
        engine.kill()
        engine.communicate(timeout=30)


def test_a_program_found_through_the_agents_path_runs_in_its_folder(tmp_path: Path) -> None:
    """A bare name is looked up on the agent's PATH, relative entries from its folder."""
    tools = tmp_path / "tools"
    tools.mkdir()
    program = tools / "agent-here"
    program.write_text('#!/bin/sh\necho found "$0"\n')
    program.chmod(0o755)
    env = {**os.environ, "PATH": f"tools{os.pathsep}{os.environ.get('PATH', '')}"}
    assert spawn.findable("agent-here", cwd=tmp_path, env=env)
    assert spawn.findable("./tools/agent-here", cwd=tmp_path, env=env)
    assert not spawn.findable("agent-here", cwd=tools, env=env)
    proc = spawn.start(["agent-here"], cwd=tmp_path, env=env)
    out, _ = proc.communicate(b"", timeout=60)
    assert proc.returncode == 0
    assert out.decode().strip() == "found tools/agent-here"


def test_the_warden_ends_the_agents_group_when_the_engines_group_is_killed(
    tmp_path: Path,
) -> None:
    """tmux closing a pane, or ``kill -9 -PGID``: the engine's whole group dies at once.

    The warden lives in a session of its own, so it outlives the engine's group and ends
    the agent's: the agent and the child it started in its group.
    """
    child = tmp_path / "child"
    engine = _engine(
        tmp_path, "warden", "/bin/sh", "-c", f"sleep 120 & echo $! > {child}; exec sleep 121"
    )
    try:
        assert engine.stdout is not None
        agent = int(engine.stdout.readline())
        wait_until(lambda: child.exists() and child.read_text().strip(), timeout=30)
        grandchild = int(child.read_text())
        keeper = _warden_of(engine)
        assert os.getsid(keeper) != os.getsid(engine.pid)
        os.killpg(engine.pid, signal.SIGHUP)  # what a closing terminal sends first
        os.killpg(engine.pid, signal.SIGKILL)
        engine.wait(timeout=30)
        for pid in (agent, grandchild, keeper):
            wait_until(lambda p=pid: not _alive(p), timeout=30, what=f"pid {pid} to end")
    finally:
        engine.kill()
        engine.communicate(timeout=30)


def test_the_warden_holds_no_file_and_no_secret_of_the_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lock file the warden kept open would outlive the engine; so would a secret."""
    monkeypatch.setenv("EXAMPLE_API_KEY", "sk-not-for-the-warden")
    engine = _engine(tmp_path, "warden", "/bin/sh", "-c", "exec sleep 120")
    try:
        assert engine.stdout is not None
        int(engine.stdout.readline())
        keeper = _warden_of(engine)
        fds = {int(fd.name) for fd in Path(f"/proc/{keeper}/fd").iterdir()}
        assert fds <= {0, 1, 2, 10, 255}, fds  # its pipe, /dev/null, a shell's own copies
        environ = Path(f"/proc/{keeper}/environ").read_bytes()
        assert b"sk-not-for-the-warden" not in environ
        assert sorted(environ.split(b"\0"))[1:] == [b"LC_ALL=C", b"PATH=/usr/bin:/bin"]
    finally:
        engine.kill()
        engine.communicate(timeout=30)


def test_an_engine_that_ends_normally_leaves_no_warden_behind(tmp_path: Path) -> None:
    go = tmp_path / "go"
    waits = f"for i in $(seq 1200); do [ -e {go} ] && break; sleep 0.05; done"  # at most 60 s
    engine = _engine(tmp_path, "warden", "/bin/sh", "-c", waits)
    assert engine.stdout is not None
    int(engine.stdout.readline())
    keeper = _warden_of(engine)
    go.touch()
    out, _ = engine.communicate(timeout=60)
    assert out.splitlines()[-1] == "exit 0 None"
    wait_until(lambda: not _alive(keeper), timeout=30, what="the warden to exit")
