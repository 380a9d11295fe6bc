"""Finding and ending what an agent left, with real processes.

The "agents" and their leftovers are ``sleep`` processes and small Python programs of the
tests' own. Everything that makes a process a child subreaper runs in a separate
interpreter, so the test process itself is never changed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from looprunner.engine import contain, proctree
from looprunner.engine.contain import MARK_ENV, Agent
from tests.conftest import wait_until

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").is_file(), reason="containment reads /proc"
)

IGNORES_SIGTERM = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); " + (
    "print('ready', flush=True); time.sleep(120)"
)


def started(pid: int) -> int:
    proc = proctree.read(pid)
    assert proc is not None
    return proc.started


def running(pid: int) -> bool:
    proc = proctree.read(pid)
    return proc is not None and not proc.zombie


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test starts, killed and collected at its end whatever happened."""
    started_here: list[subprocess.Popen[bytes]] = []
    yield started_here
    for proc in started_here:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def spawn(
    procs: list[subprocess.Popen[bytes]], argv: list[str], *, mark: str | None = None
) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    if mark is not None:
        env[MARK_ENV] = mark
    proc = subprocess.Popen(argv, env=env, start_new_session=True, stdout=subprocess.PIPE)
    procs.append(proc)
    return proc


def clock_ticks() -> int:
    """Clock ticks since boot now, as process start times count them."""
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    return int(uptime * os.sysconf("SC_CLK_TCK"))


def test_a_marked_process_in_a_session_of_its_own_is_the_agents(procs) -> None:
    mark = contain.new_mark()
    before = spawn(procs, ["sleep", "120"], mark=mark)  # older than the agent: not its own
    older = started(before.pid)
    wait_until(lambda: clock_ticks() > older + 1, what="a later clock tick")
    agent = spawn(procs, ["sleep", "120"], mark=mark)
    assert started(agent.pid) > older
    escaped = spawn(procs, ["sleep", "120"], mark=mark)
    stranger = spawn(procs, ["sleep", "120"], mark=contain.new_mark())
    unmarked = spawn(procs, ["sleep", "120"])
    found = {p.pid for p in contain.leftovers(Agent(agent.pid, started(agent.pid), mark))}
    assert escaped.pid in found and agent.pid in found
    assert not found & {before.pid, stranger.pid, unmarked.pid, os.getpid()}


def test_members_of_the_agents_session_are_found_unless_its_pid_is_someone_elses(procs) -> None:
    agent = spawn(procs, ["sh", "-c", "sleep 120 & echo $!; wait"])
    assert agent.stdout is not None
    child = int(agent.stdout.readline())
    try:
        identity = Agent(agent.pid, started(agent.pid), mark=None)
        assert {agent.pid, child} <= {p.pid for p in contain.leftovers(identity)}
        untrusted = Agent(agent.pid, started(agent.pid), mark=None, trust_groups=False)
        assert contain.leftovers(untrusted) == []
    finally:
        os.kill(child, 9)


def test_the_sweep_ends_a_leftover_that_ignores_sigterm(procs) -> None:
    mark = contain.new_mark()
    agent = spawn(procs, [sys.executable, "-c", "pass"], mark=mark)
    leftover = spawn(procs, [sys.executable, "-c", IGNORES_SIGTERM], mark=mark)
    bystander = spawn(procs, ["sleep", "120"])
    assert leftover.stdout is not None
    assert leftover.stdout.readline() == b"ready\n"
    agent_started = started(agent.pid)
    agent.wait()
    assert contain.sweep(Agent(agent.pid, agent_started, mark), 0.2) == 1
    assert leftover.wait(timeout=10) == -9, "SIGKILL after the grace"
    assert running(bystander.pid)


def test_nothing_is_ended_after_a_reboot_or_without_an_agent(procs) -> None:
    mark = contain.new_mark()
    leftover = spawn(procs, ["sleep", "120"], mark=mark)
    wait_until(lambda: proctree.read(leftover.pid), what="the leftover")
    assert contain.stop_leftovers(leftover.pid, None, "another-boot", mark, 0.1) == 0
    assert contain.stop_leftovers(None, None, None, mark, 0.1) == 0
    assert running(leftover.pid)


SUBREAPER = r"""
import json, os, sys, time
from looprunner.engine import contain, proctree

adopter = contain.adopt()
report = {"adopter": adopter is not None, "children_before": proctree.has_children()}
agent = os.fork()
if agent == 0:  # the "agent": double-forks a program with an empty environment, exits
    middle = os.fork()
    if middle == 0:
        os.setsid()
        if os.fork() == 0:
            os.execve("/bin/sleep", ["sleep", "120"], {})
        os._exit(0)
    os.waitpid(middle, 0)
    os._exit(0)
agent_started = proctree.read(agent).started
os.waitpid(agent, 0)
deadline = time.monotonic() + 30
while not [p for p in proctree.snapshot().values() if p.ppid == os.getpid() and not p.zombie]:
    assert time.monotonic() < deadline, "the orphan was never adopted"
    time.sleep(0.02)
report["children_after_agent"] = proctree.has_children()
identity = contain.Agent(agent, agent_started, mark=None)
report["swept"] = contain.sweep_after(identity, 0.5, adopter=adopter)
report["children_after_sweep"] = proctree.has_children()
print(json.dumps(report))
"""


def test_an_adopting_engine_finds_an_orphan_that_cleared_its_environment() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SUBREAPER], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    if not report["adopter"]:
        pytest.skip("this platform has no child subreaper")
    assert report == {
        "adopter": True,
        "children_before": False,
        "children_after_agent": True,  # the orphan came back to the engine
        "swept": 1,
        "children_after_sweep": False,  # ended and collected: nothing left, not even a zombie
    }
