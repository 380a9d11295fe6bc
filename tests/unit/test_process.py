"""AgentRunner with real child processes: output, exit codes, timeouts, stops, big prompts.

The agents here are the tests' own small programs (``sh -c`` snippets and Python
one-liners), never user text.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import attrs
import pytest

from looprunner.engine.process import AgentRunner, ProcessResult, kill_grace
from looprunner.models import AgentCommand
from tests.conftest import wait_until

HAVE_PROC = Path("/proc/self/stat").is_file()


@attrs.define
class Run:
    """One agent run in a background thread, observed from the test."""

    runner: AgentRunner
    output: bytearray = attrs.field(factory=bytearray)
    pids: list[int] = attrs.field(factory=list)
    result: ProcessResult | None = None
    error: BaseException | None = None
    thread: threading.Thread | None = None
    lock: threading.Lock = attrs.field(factory=threading.Lock)

    def text(self) -> str:
        with self.lock:
            return self.output.decode()

    def on_output(self, chunk: bytes) -> None:
        with self.lock:
            self.output.extend(chunk)

    @property
    def pid(self) -> int:
        assert self.pids, "the agent was started"
        return self.pids[0]

    def finish(self, timeout: float = 60) -> ProcessResult:
        assert self.thread is not None
        self.thread.join(timeout)
        if self.thread.is_alive():
            self.runner.request_stop()  # do not leave it running behind a failed test
            self.thread.join(30)
            raise AssertionError(f"the agent run did not return within {timeout}s")
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


@pytest.fixture
def runner() -> Iterator[AgentRunner]:
    agent_runner = AgentRunner()
    yield agent_runner
    agent_runner.close()


def start(
    runner: AgentRunner,
    argv: list[str],
    cwd: Path,
    *,
    stdin: str = "",
    timeout: float | None = None,
    grace: float = 5.0,
    env: dict[str, str] | None = None,
    unset_env: tuple[str, ...] = (),
    extra_env: dict[str, str] | None = None,
) -> Run:
    run = Run(runner)
    command = AgentCommand(argv=tuple(argv), stdin=stdin, env=extra_env or {}, unset_env=unset_env)

    def target() -> None:
        try:
            run.result = runner.run(
                command,
                cwd=cwd,
                env=dict(os.environ) if env is None else env,
                timeout=timeout,
                on_output=run.on_output,
                on_start=run.pids.append,
                grace=grace,
            )
        except BaseException as exc:
            run.error = exc

    run.thread = threading.Thread(target=target, daemon=True)
    run.thread.start()
    return run


def sh(script: str) -> list[str]:
    return ["sh", "-c", script]


def live_members(pgid: int) -> list[int]:
    """Processes of group ``pgid`` that are running (zombies waiting for init excluded)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_bytes()
        except OSError:
            continue
        fields = raw[raw.rfind(b")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != b"Z":
            found.append(int(entry.name))
    return found


def pid_running(pid: int) -> bool:
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return raw[raw.rfind(b")") + 2 :].split()[0] != b"Z"


def test_output_is_streamed_while_the_agent_runs(runner: AgentRunner, tmp_path: Path) -> None:
    run = start(
        runner, sh("echo first; while [ ! -e go ]; do sleep 0.02; done; echo second"), tmp_path
    )
    wait_until(lambda: "first" in run.text(), what="the first line before the agent exits")
    assert "second" not in run.text()
    (tmp_path / "go").touch()
    result = run.finish()
    assert run.text() == "first\nsecond\n"
    assert result.exit_code == 0
    assert (result.timed_out, result.stopped, result.spawn_error) == (False, False, None)


def test_stderr_is_captured_with_stdout(runner: AgentRunner, tmp_path: Path) -> None:
    run = start(runner, sh("echo out; echo err >&2"), tmp_path)
    run.finish()
    assert sorted(run.text().splitlines()) == ["err", "out"]


@pytest.mark.parametrize("code", [0, 1, 7, 255])
def test_exit_code_is_reported(runner: AgentRunner, tmp_path: Path, code: int) -> None:
    result = start(runner, sh(f"exit {code}"), tmp_path).finish()
    assert result.exit_code == code
    assert not result.timed_out
    assert not result.stopped


def test_death_by_signal_is_a_negative_exit_code(runner: AgentRunner, tmp_path: Path) -> None:
    result = start(runner, sh("kill -9 $$"), tmp_path).finish()
    assert result.exit_code == -signal.SIGKILL


def test_prompt_goes_to_stdin_and_env_is_applied(runner: AgentRunner, tmp_path: Path) -> None:
    run = start(
        runner,
        sh('cat; echo "[$LOOPRUNNER_SESSION] [${HIDE_ME-unset}] $(pwd)"'),
        tmp_path,
        stdin="the prompt: ${CTX} $HOME `id`\n",
        env={**os.environ, "HIDE_ME": "visible"},
        unset_env=("HIDE_ME",),
        extra_env={"LOOPRUNNER_SESSION": "auth"},
    )
    assert run.finish().exit_code == 0
    assert run.text() == f"the prompt: ${{CTX}} $HOME `id`\n[auth] [unset] {tmp_path}\n"


def test_agent_leads_its_own_process_group(runner: AgentRunner, tmp_path: Path) -> None:
    code = "import os; print(os.getpgid(0) == os.getpid(), os.getsid(0) == os.getpid())"
    run = start(runner, [sys.executable, "-c", code], tmp_path)
    run.finish()
    assert run.text() == "True True\n"
    assert os.getpgid(0) != run.pid


@pytest.mark.skipif(not HAVE_PROC, reason="needs /proc to see the process group")
def test_timeout_ends_the_agent_and_everything_it_started(
    runner: AgentRunner, tmp_path: Path
) -> None:
    run = start(
        runner,
        sh("sleep 300 & echo $! > grandchild.pid; wait"),
        tmp_path,
        timeout=0.5,
        grace=0.3,
    )
    result = run.finish()
    assert result.timed_out
    assert not result.stopped
    assert result.exit_code == -signal.SIGTERM
    grandchild = int((tmp_path / "grandchild.pid").read_text())
    # Not os.killpg(pgid, 0): the orphaned grandchild is a zombie until PID 1 reaps it,
    # which some containers' init does only seconds later. What matters is that nothing
    # of the group still runs.
    wait_until(lambda: not live_members(run.pid), timeout=10, what="the group to die")
    assert not pid_running(grandchild)


@pytest.mark.skipif(not HAVE_PROC, reason="needs /proc to see the process group")
def test_timeout_kills_a_grandchild_that_ignores_sigterm(
    runner: AgentRunner, tmp_path: Path
) -> None:
    run = start(
        runner,
        sh("(trap '' TERM; exec sleep 300) & echo $! > grandchild.pid; wait"),
        tmp_path,
        timeout=0.5,
        grace=0.2,
    )
    result = run.finish()
    assert result.timed_out
    grandchild = int((tmp_path / "grandchild.pid").read_text())
    # SIGKILL was sent before run() returned; the kernel finishes it off at once
    wait_until(lambda: not pid_running(grandchild), timeout=10, what="the grandchild to die")
    assert live_members(run.pid) == []


def test_request_stop_from_another_thread(runner: AgentRunner, tmp_path: Path) -> None:
    run = start(runner, sh("echo started; sleep 300"), tmp_path, grace=0.3)
    wait_until(lambda: "started" in run.text(), what="the agent to start")
    runner.request_stop()
    result = run.finish()
    assert result.stopped
    assert not result.timed_out
    assert result.exit_code == -signal.SIGTERM
    assert runner.stop_requested


def test_after_a_stop_request_no_agent_starts(runner: AgentRunner, tmp_path: Path) -> None:
    runner.request_stop()
    result = start(runner, sh("touch ran"), tmp_path).finish()
    assert result.stopped
    assert result.exit_code is None
    assert not (tmp_path / "ran").exists()


def test_agent_ignoring_sigterm_is_killed_after_the_grace(
    runner: AgentRunner, tmp_path: Path
) -> None:
    run = start(
        runner, sh("trap '' TERM; echo ready; while :; do sleep 1; done"), tmp_path, grace=0.3
    )
    wait_until(lambda: "ready" in run.text(), what="the agent to ignore SIGTERM")
    runner.request_stop()
    result = run.finish()
    assert result.stopped
    assert result.exit_code == -signal.SIGKILL
    if HAVE_PROC:
        wait_until(lambda: not live_members(run.pid), timeout=10, what="the group to die")


def test_missing_program_is_a_spawn_error(runner: AgentRunner, tmp_path: Path) -> None:
    result = start(runner, [str(tmp_path / "no-such-agent")], tmp_path).finish()
    assert result.spawn_error is not None
    assert "no-such-agent" in result.spawn_error or "No such file" in result.spawn_error
    assert result.exit_code is None
    assert not result.timed_out


def test_program_that_is_not_executable_is_a_spawn_error(
    runner: AgentRunner, tmp_path: Path
) -> None:
    program = tmp_path / "agent.sh"
    program.write_text("#!/bin/sh\necho hi\n")
    program.chmod(0o644)
    result = start(runner, [str(program)], tmp_path).finish()
    assert result.spawn_error is not None
    assert result.exit_code is None


def test_big_prompt_with_a_chatty_agent_does_not_deadlock(
    runner: AgentRunner, tmp_path: Path
) -> None:
    prompt = "".join(f"line {n:07d} of a very large prompt ✓\n" for n in range(200_000))
    assert len(prompt.encode()) >= 8_000_000
    run = start(runner, ["cat"], tmp_path, stdin=prompt)
    result = run.finish(timeout=120)
    assert result.exit_code == 0
    assert run.text() == prompt


def test_agent_that_never_reads_its_prompt(runner: AgentRunner, tmp_path: Path) -> None:
    prompt = "x" * 4_000_000
    run = start(runner, [sys.executable, "-c", "print('y' * 3_000_000)"], tmp_path, stdin=prompt)
    result = run.finish(timeout=120)
    assert result.exit_code == 0
    assert run.text() == "y" * 3_000_000 + "\n"


@pytest.mark.skipif(not HAVE_PROC, reason="needs /proc to see the process group")
def test_output_before_exit_is_kept_and_leftover_children_are_ended(
    runner: AgentRunner, tmp_path: Path
) -> None:
    # the background sleep keeps the output pipe open after the agent itself exits
    run = start(runner, sh("echo bye; sleep 300 & echo $! > leftover.pid"), tmp_path, grace=0.3)
    result = run.finish()
    assert result.exit_code == 0
    assert run.text() == "bye\n"
    leftover = int((tmp_path / "leftover.pid").read_text())
    wait_until(lambda: not pid_running(leftover), timeout=10, what="the leftover to be ended")


def test_runner_runs_agents_one_after_another(runner: AgentRunner, tmp_path: Path) -> None:
    first = start(runner, sh("echo one"), tmp_path)
    first.finish()
    second = start(runner, sh("echo two; exit 3"), tmp_path)
    assert second.finish().exit_code == 3
    assert (first.text(), second.text()) == ("one\n", "two\n")


class GraceCase(NamedTuple):
    test_id: str
    value: str
    expected: float


GRACES = [
    GraceCase("seconds", "3", 3.0),
    GraceCase("fraction", "0.5", 0.5),
    GraceCase("negative-is-zero", "-2", 0.0),
    GraceCase("not-a-number-is-default", "soon", 10.0),
]


@pytest.mark.parametrize("case", GRACES, ids=[c.test_id for c in GRACES])
def test_kill_grace_from_the_environment(monkeypatch: pytest.MonkeyPatch, case: GraceCase) -> None:
    monkeypatch.setenv("LOOPRUNNER_KILL_GRACE", case.value)
    assert kill_grace() == case.expected


def test_kill_grace_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOOPRUNNER_KILL_GRACE", raising=False)
    assert kill_grace() == 10.0


def test_an_error_while_watching_ends_the_agent(runner: AgentRunner, tmp_path: Path) -> None:
    """The engine's own failure mid-run (here: handling output) stops the agent it ran.

    The agent would sleep for an hour: a run that did not stop it would still be waiting
    at the deadline below (and the test then ends the agent itself).
    """
    pids: list[int] = []
    raised: list[BaseException] = []

    def broken(chunk: bytes) -> None:
        raise RuntimeError("the engine failed while the agent ran")

    def run() -> None:
        try:
            runner.run(
                AgentCommand(argv=tuple(sh("echo hi; exec sleep 3600"))),
                cwd=tmp_path,
                env=dict(os.environ),
                timeout=7200,
                on_output=broken,
                on_start=pids.append,
                grace=1,
            )
        except BaseException as exc:
            raised.append(exc)

    watcher = threading.Thread(target=run)
    watcher.start()
    watcher.join(timeout=30)
    stopped = not watcher.is_alive()
    if not stopped:  # the run waits on an agent nobody stopped: end it, then fail
        os.kill(pids[0], signal.SIGKILL)
        watcher.join()
    assert stopped, "the agent ran on after the engine's error"
    assert len(raised) == 1 and isinstance(raised[0], RuntimeError)
    assert "engine failed" in str(raised[0])
    assert pids and not pid_running(pids[0])
