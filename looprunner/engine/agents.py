"""The engine's one way of running an agent process, shared by stage types and the judge.

An agent run is: the provider turns an :class:`~looprunner.models.Invocation` into a
command; the command runs in its own process group under the stage's timeout and the
session's stop; what it prints is redacted and echoed to engine.log and kept; its exit
and ``status.json`` become an :class:`~looprunner.models.AgentStatus`, or an
:class:`~looprunner.errors.AgentFailed` naming what went wrong. Every caller gets the same
rules, so a plugin stage type composes agents instead of re-implementing them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import attrs

from looprunner.engine.agent_status import StatusProblem, read_agent_status
from looprunner.engine.process import AgentRunner, ProcessResult
from looprunner.errors import AgentFailed, LooprunnerError
from looprunner.models import AgentRun, AgentStatus, Decision, Invocation
from looprunner.plugins.registry import Registry
from looprunner.protocols import Provider

#: output kept in memory per agent, for output.md when the agent writes none
MAX_CAPTURE = 16 * 1024 * 1024


class Stopped(BaseException):
    """The session is being stopped: unwind to the engine, whatever code is running.

    A BaseException so that a stage type's ``except Exception`` cannot swallow it.
    """


class OutputCapture:
    """What an agent printed: echoed as it comes, kept (up to MAX_CAPTURE) for output.md."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        self._echo = echo
        self._data = bytearray()

    def feed(self, chunk: bytes) -> None:
        """Take one chunk of output."""
        self._data.extend(chunk[: max(0, MAX_CAPTURE - len(self._data))])
        self._echo(chunk.decode("utf-8", "replace"))

    def text(self) -> str:
        """Everything kept, as text."""
        return self._data.decode("utf-8", "replace")


@attrs.frozen
class AgentOutcome:
    """How one agent process went, before its status is judged."""

    result: ProcessResult
    output: str


class AgentLauncher:
    """Runs agent processes for one engine: providers, process runner, env and echo."""

    def __init__(
        self,
        *,
        providers: Registry[Provider],
        runner: AgentRunner,
        cwd: Path,
        env: Mapping[str, str],
        echo: Callable[[str], None],
        end_echo: Callable[[], None] = lambda: None,
    ) -> None:
        self.providers = providers
        self.runner = runner
        self.cwd = cwd
        self.env = env
        self.echo = echo
        #: called when an agent's output has ended (the echo may hold a tail back)
        self.end_echo = end_echo

    def launch(
        self,
        provider_name: str,
        invocation: Invocation,
        *,
        timeout: float | None,
        on_start: Callable[[int], None] = lambda pid: None,
    ) -> AgentOutcome:
        """Run one agent to its end and return what happened.

        Raises
        ------
        AgentFailed
            The provider could not build a command (``provider_exit``).
        Stopped
            The session was asked to stop while the agent ran (the agent is gone).
        """
        try:
            command = self.providers.get(provider_name)().command(invocation)
        except LooprunnerError as exc:
            raise AgentFailed("provider_exit", exc.message) from exc
        captured = OutputCapture(self.echo)
        try:
            result = self.runner.run(
                command,
                cwd=self.cwd,
                env=self.env,
                timeout=timeout,
                on_output=captured.feed,
                on_start=on_start,
            )
        finally:
            self.end_echo()
        return AgentOutcome(result=result, output=captured.text())


def verdict(outcome: AgentOutcome, status_file: Path) -> AgentRun:
    """Turn an agent's exit and status file into its run, or raise AgentFailed."""
    result = outcome.result
    if result.spawn_error is not None:
        raise AgentFailed("provider_exit", f"could not start the agent: {result.spawn_error}")
    if result.timed_out:
        raise AgentFailed(
            "provider_timeout",
            f"the agent ran past the stage timeout and was stopped (exit {result.exit_code})",
        )
    if result.exit_code != 0:
        raise AgentFailed("provider_exit", f"the agent exited with status {result.exit_code}")
    try:
        status = read_agent_status(status_file)
    except StatusProblem as problem:
        raise AgentFailed(problem.type, problem.message) from None
    if status.decision is Decision.ERROR:
        raise AgentFailed("agent_error", status.reason or "the agent reported an error")
    return AgentRun(
        status=status,
        exit_code=result.exit_code or 0,
        duration=result.duration,
        output=outcome.output,
    )


def as_status(value: object) -> AgentStatus:
    """Check what a stage type returned is a status (its decision was checked when built)."""
    if isinstance(value, AgentStatus):
        return value
    raise TypeError(f"a stage type must return an AgentStatus, not {value!r}")
