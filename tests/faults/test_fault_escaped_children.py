"""Processes an agent moves out of its process group are still ended with it.

The agent (a ``command``-provider program) starts two long-lived programs the way real
agent CLIs start their tool commands, so that signalling the agent's process group
misses them:

- ``setsid``: a double fork; the grandchild is the leader of a session of its own and
  its parent exits at once, so it is nobody's child but the kernel's adopter's;
- ``setpgid``: a child moved to a process group of its own (same session), which also
  ignores SIGTERM, so only SIGKILL ends it.

Each writes its pid to a file. After the iteration completes, after the stage timeout,
after ``looprunner kill`` and after a SIGKILL of the engine followed by ``cleanup --fix``
or ``kill``, neither may be alive (polled with a deadline); a process the test started
itself is never touched.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from looprunner import Session
from looprunner.models import Health
from looprunner.testing import wait_until
from tests.faults.faultkit import is_live, kill_if_live, no_traceback

pytestmark = pytest.mark.tmux

#: argv[1] the folder for pid files; argv[2] "finish" (write a status and exit once its
#: programs run) or "hang" (then block, for timeout and kill); argv[3] the programs
AGENT = r"""
import json, os, sys, time
from pathlib import Path

sys.stdin.read()
folder, mode, kinds = Path(sys.argv[1]), sys.argv[2], sys.argv[3].split(",")
session = os.environ["LOOPRUNNER_SESSION"]
SLEEPER = (
    "import os, signal, sys, time\n"
    "from pathlib import Path\n"
    "if sys.argv[2] == 'deaf':\n"
    "    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "path = Path(sys.argv[1])\n"
    "path.with_suffix('.tmp').write_text(str(os.getpid()))\n"
    "path.with_suffix('.tmp').replace(path)\n"
    "time.sleep(120)\n"  # never outlive a test that forgot it
)


def start(name, setup, deaf, env=None):
    pid = os.fork()
    if pid == 0:
        try:
            setup()
            argv = [sys.executable, "-c", SLEEPER, str(folder / f"{session}-{name}.pid"), deaf]
            os.execve(sys.executable, argv, os.environ if env is None else env)
        finally:
            os._exit(1)
    return pid


def double_fork():
    os.setsid()
    if os.fork() != 0:
        os._exit(0)  # the grandchild goes on, orphaned at once


if "setsid" in kinds:
    os.waitpid(start("setsid", double_fork, "hears"), 0)
if "setpgid" in kinds:
    start("setpgid", lambda: os.setpgid(0, 0), "deaf")
if "bare" in kinds:  # a double fork that also clears its environment
    os.waitpid(start("bare", double_fork, "hears", env={}), 0)
deadline = time.monotonic() + 60
while not all((folder / f"{session}-{n}.pid").exists() for n in kinds):
    if time.monotonic() > deadline:
        sys.exit(9)
    time.sleep(0.02)
print(f"started {kinds} outside my process group", flush=True)
if mode == "hang":
    time.sleep(120)
Path(os.environ["LOOPRUNNER_STATUS"]).write_text(
    json.dumps({"decision": "continue", "reason": "done", "summary": "left two programs"})
)
"""

#: how long an escaped program may take to be gone (the kill grace is 3 s in tests)
GONE_WITHIN = 30.0


KINDS = ("setsid", "setpgid")


def escaping_stage(
    project: Path,
    folder: Path,
    mode: str,
    *,
    timeout: float | None = None,
    kinds: tuple[str, ...] = KINDS,
) -> None:
    script = folder / "escaping_agent.py"
    script.write_text(AGENT)
    stage = project / ".looprunner" / "stages" / "work"
    stage.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, str(script), str(folder), mode, ",".join(kinds)]
    extra = f"timeout: {timeout}\n" if timeout is not None else ""
    (stage / "stage.yaml").write_text(
        f"name: work\nprovider: command\ncommand: {json.dumps(argv)}\n"
        f"termination:\n  type: fixed\n  iterations: 1\n{extra}"
    )
    (stage / "prompt.md").write_text("Work.\n")


def escaped_pids(folder: Path, name: str) -> dict[str, int]:
    """The pids of the two programs the agent of session ``name`` started, once both run."""

    def read() -> dict[str, int] | None:
        found = {}
        for how in KINDS:
            path = folder / f"{name}-{how}.pid"
            if not path.is_file():
                return None
            found[how] = int(path.read_text())
        return found

    pids = wait_until(read, timeout=60, what="the agent's two programs")
    assert all(is_live(pid) for pid in pids.values())
    # the setpgid program stays in the agent's session; the setsid one left it
    assert os.getsid(pids["setsid"]) != os.getsid(pids["setpgid"]), "a session of its own"
    assert os.getpgid(pids["setpgid"]) == pids["setpgid"], "a process group of its own"
    return pids


def assert_all_gone(pids: dict[str, int], when: str) -> None:
    def gone() -> bool:
        return not any(is_live(pid) for pid in pids.values())

    try:
        wait_until(gone, timeout=GONE_WITHIN, what=f"the agent's programs to end {when}")
    except AssertionError:
        alive = {how: pid for how, pid in pids.items() if is_live(pid)}
        raise AssertionError(f"still alive {when}: {alive}") from None


@pytest.fixture
def pid_folder(tmp_path: Path):
    folder = tmp_path / "pids"
    folder.mkdir()
    yield folder
    for path in folder.glob("*.pid"):
        kill_if_live(int(path.read_text()))


@pytest.fixture
def bystander():
    """A process of the test's own, in a session of its own: never the agent's."""
    proc = subprocess.Popen(["sleep", "120"], start_new_session=True)
    yield proc
    proc.kill()
    proc.wait()


@pytest.mark.parametrize("where", ["tmux", "foreground"])
def test_programs_an_agent_left_end_with_its_iteration(
    project, tmux_keeper, cli, pid_folder, bystander, where
):
    escaping_stage(project, pid_folder, "finish")
    name = f"done-{where}"
    args = ["start", name, "--stage", "work"] + (["--foreground"] if where == "foreground" else [])
    started = cli(*args)
    no_traceback(started)
    assert started.returncode == 0, started.stderr
    session = Session(name, project)
    wait_until(lambda: session.status().health is Health.COMPLETE, what="complete")
    pids = {how: int((pid_folder / f"{name}-{how}.pid").read_text()) for how in KINDS}
    assert_all_gone(pids, "after the iteration completed")
    assert bystander.poll() is None, "a process that is not the agent's was signalled"
    log = session.paths.engine_log.read_text()
    assert "stopped 2 process(es) the agent left running" in log, log[-2000:]


def test_a_detached_program_without_the_agents_environment_ends_with_a_tmux_engine(
    project, tmux_keeper, cli, pid_folder, bystander
):
    """A program that leaves the agent's session and clears its environment carries no
    mark; the engine, which owns its process under tmux, adopted it when its parent
    exited, and that is how it is recognised."""
    kinds = ("setsid", "bare")
    escaping_stage(project, pid_folder, "finish", kinds=kinds)
    assert cli("start", "bare", "--stage", "work").returncode == 0
    session = Session("bare", project)
    wait_until(lambda: session.status().health is Health.COMPLETE, what="complete")
    pids = {how: int((pid_folder / f"bare-{how}.pid").read_text()) for how in kinds}
    assert_all_gone(pids, "after the iteration completed")
    assert bystander.poll() is None, "a process that is not the agent's was signalled"


def test_programs_an_agent_left_end_at_the_stage_timeout(project, tmux_keeper, cli, pid_folder):
    escaping_stage(project, pid_folder, "hang", timeout=2)
    assert cli("start", "slow", "--stage", "work").returncode == 0
    pids = escaped_pids(pid_folder, "slow")
    session = Session("slow", project)
    wait_until(lambda: session.status().health is Health.FAILED, what="failed", timeout=60)
    assert session.status().state.error.type == "provider_timeout"
    assert_all_gone(pids, "after the stage timeout")


def test_kill_ends_programs_an_agent_moved_out_of_its_group(
    project, tmux_keeper, cli, pid_folder, bystander
):
    escaping_stage(project, pid_folder, "hang")
    assert cli("start", "victim", "--stage", "work").returncode == 0
    pids = escaped_pids(pid_folder, "victim")
    killed = cli("kill", "victim", "--yes")
    no_traceback(killed)
    assert killed.returncode == 0, killed.stderr
    assert Session("victim", project).status().health is Health.KILLED
    assert_all_gone(pids, "after kill")
    assert bystander.poll() is None, "a process that is not the agent's was signalled"


@pytest.mark.parametrize("how", ["kill", "cleanup"])
def test_programs_left_by_an_agent_whose_engine_was_sigkilled_are_ended(
    project, tmux_keeper, cli, pid_folder, bystander, how
):
    name = f"crash-{how}"
    escaping_stage(project, pid_folder, "hang")
    assert cli("start", name, "--stage", "work").returncode == 0
    pids = escaped_pids(pid_folder, name)
    session = Session(name, project)
    engine = session.status().state.pid
    os.kill(engine, signal.SIGKILL)
    wait_until(lambda: not is_live(engine), what="the engine to die")
    wait_until(lambda: session.status().health is Health.CRASHED, what="crashed")
    assert all(is_live(pid) for pid in pids.values()), "they outlived their engine"
    if how == "kill":
        done = cli("kill", name, "--yes")
    else:
        done = cli("cleanup", "--fix", "--yes", env={"LOOPRUNNER_ORPHAN_GRACE": "0"})
    no_traceback(done)
    assert done.returncode == 0, done.stderr
    assert_all_gone(pids, f"after the engine's SIGKILL and {how}")
    assert bystander.poll() is None, "a process that is not the agent's was signalled"
