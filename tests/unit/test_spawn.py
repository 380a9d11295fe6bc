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

from looprunner.engine import spawn
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
    if sys.argv[2] == "no-setpriv":  # as on a system without setpriv
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
    )


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting to be reaped is dead)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return raw[raw.rfind(b")") + 2 :].split()[0] != b"Z"


def test_starting_an_agent_does_not_copy_the_engine(tmp_path: Path) -> None:
    """No Python runs in a copy of the engine: a plugin's at-fork handler never fires."""
    if spawn.death_signal_wrapper() is None:
        pytest.skip("no setpriv with --pdeathsig here: agents start through preexec_fn")
    engine = _engine(tmp_path, "setpriv", "/bin/sh", "-c", "echo hello")
    out, _ = engine.communicate(timeout=60)
    assert out.splitlines()[-1] == "exit 0 None"
    assert not (tmp_path / "forks").exists()


@pytest.mark.parametrize("mode", ["setpriv", "no-setpriv"])
def test_an_agent_is_ended_when_its_engine_is_killed(tmp_path: Path, mode: str) -> None:
    """SIGKILL the engine: the kernel sends its agent SIGTERM (docs/concepts.md)."""
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
