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
from typing import TypeGuard

import attrs

from looprunner.engine import failures
from looprunner.engine.agent_status import StatusProblem, read_agent_status
from looprunner.engine.agent_stream import EventStream
from looprunner.engine.process import AgentRunner, ProcessResult
from looprunner.errors import AgentFailed, LooprunnerError
from looprunner.limits import env_limit
from looprunner.models import AgentReport, AgentRun, AgentStatus, Decision, Invocation, Pipeline
from looprunner.plugins.registry import Registry
from looprunner.protocols import AuthExplaining, FailureClassifying, Provider, Reporting

#: output kept per agent run (bytes), in engine.log and for output.md; env overrides
MAX_CAPTURE = 16 * 1024 * 1024
MAX_OUTPUT_ENV = "LOOPRUNNER_MAX_OUTPUT_BYTES"


def max_output_bytes() -> int:
    """Return the output kept per agent run (``LOOPRUNNER_MAX_OUTPUT_BYTES``, 16 MiB)."""
    return env_limit(MAX_OUTPUT_ENV, MAX_CAPTURE)


def dropped_marker(count: int) -> str:
    """Return the line that says how much output was not kept."""
    return f"[looprunner: {count} bytes of output not kept]"


def agent_variables(pipeline: Pipeline, session: str) -> dict[str, str]:
    """Return the variables loop-agents exported to every agent, set the same way here.

    Its Claude Code hooks (the stop gate) act only where ``CLAUDE_PIPELINE_AGENT`` is
    set, and name the session by ``CLAUDE_PIPELINE_SESSION``; ``CLAUDE_PIPELINE_TYPE``
    is the stage a loop runs, or the pipeline's name.
    """
    kind = pipeline.nodes[0].stage.name if pipeline.kind == "loop" else pipeline.name
    return {
        "CLAUDE_PIPELINE_AGENT": "1",
        "CLAUDE_PIPELINE_SESSION": session,
        "CLAUDE_PIPELINE_TYPE": kind,
    }


class Stopped(BaseException):
    """The session is being stopped: unwind to the engine, whatever code is running.

    A BaseException so that a stage type's ``except Exception`` cannot swallow it.
    """


class OutputCapture:
    """What an agent printed: echoed and kept up to the cap, the rest counted.

    The first ``limit`` bytes go to engine.log (through ``echo``) and are kept for
    output.md; what comes after is only counted, and :meth:`finish` says how much in
    both places, so output is never dropped silently.
    """

    def __init__(self, echo: Callable[[str], None], limit: int | None = None) -> None:
        self._echo = echo
        self._limit = max_output_bytes() if limit is None else limit
        self._data = bytearray()
        self.dropped = 0

    def feed(self, chunk: bytes) -> None:
        """Take one chunk of output."""
        room = max(0, self._limit - len(self._data))
        kept = chunk[:room]
        self.dropped += len(chunk) - len(kept)
        if kept:
            self._data.extend(kept)
            self._echo(kept.decode("utf-8", "replace"))

    def finish(self) -> None:
        """Say in engine.log how much output was not kept (nothing if all was)."""
        if self.dropped:
            newline = "" if self._data.endswith(b"\n") else "\n"
            self._echo(f"{newline}{dropped_marker(self.dropped)}\n")

    def text(self) -> str:
        """Everything kept, as text, with the count of what was not kept at its end."""
        text = self._data.decode("utf-8", "replace")
        if self.dropped:
            newline = "" if text.endswith("\n") or not text else "\n"
            text += f"{newline}{dropped_marker(self.dropped)}\n"
        return text


@attrs.frozen
class AgentOutcome:
    """How one agent process went, before its status is judged."""

    result: ProcessResult
    #: the agent's answer for output.md: its final message when its stream says one
    output: str
    #: bytes of output past the cap, not kept (0 when all was)
    output_dropped: int = 0
    #: the class of a non-zero exit, as the provider or the engine's patterns say
    failure: str | None = None
    #: what to set or do when the failure is ``provider_auth``
    auth_hint: str | None = None
    #: what a structured-output agent said of its run (None for plain programs)
    report: AgentReport | None = None
    #: the raw event stream of a structured-output agent, for transcript.jsonl
    transcript: str | None = None


#: provider classes and whether they print JSON events (see :func:`_reports`)
_REPORTING: dict[type, bool] = {}


def _reports(provider: object) -> TypeGuard[Reporting]:
    """Whether a provider prints JSON events (:class:`Reporting`), asked of its class.

    ``isinstance`` against a protocol looks up each of its methods every time, and the
    engine asks before every agent it starts; a provider's class answers once.
    """
    cls = type(provider)
    known = _REPORTING.get(cls)
    if known is None:
        known = _REPORTING[cls] = issubclass(cls, Reporting)
    return known


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
        note: Callable[[str], None] = lambda line: None,
        settle: Callable[[], None] = lambda: None,
    ) -> None:
        self.providers = providers
        self.runner = runner
        self.cwd = cwd
        self.env = env
        self.echo = echo
        #: called when an agent's output has ended (the echo may hold a tail back)
        self.end_echo = end_echo
        #: writes one line of the engine's own to its log
        self.note = note
        #: waits until what the log was handed to flush is on disk: no agent starts
        #: before the iteration it follows is recorded for good
        self.settle = settle

    def launch(
        self,
        provider_name: str,
        invocation: Invocation,
        *,
        timeout: float | None,
        on_start: Callable[[int], None] = lambda pid: None,
        mark: str | None = None,
        idle_timeout: float | None = None,
        watch: tuple[Path, ...] = (),
    ) -> AgentOutcome:
        """Run one agent to its end and return what happened.

        ``mark`` (``LOOPRUNNER_AGENT_MARK``) lets what the agent starts be found after it,
        even by another process: the caller records it (a fresh one when None). An agent
        that prints nothing and changes none of ``watch`` for ``idle_timeout`` seconds is
        stopped as stalled.

        Raises
        ------
        AgentFailed
            The provider could not build a command (``provider_exit``).
        Stopped
            The session was asked to stop while the agent ran (the agent is gone).
        """
        provider = self.providers.get(provider_name)()
        try:
            command = provider.command(invocation)
        except LooprunnerError as exc:
            raise AgentFailed("provider_exit", exc.message) from exc
        stream = EventStream(provider, self.echo) if _reports(provider) else None
        captured = OutputCapture(stream.feed if stream else self.echo)
        self.settle()
        try:
            result = self.runner.run(
                command,
                cwd=self.cwd,
                env=self.env,
                timeout=timeout,
                on_output=captured.feed,
                on_start=on_start,
                mark=mark,
                idle_timeout=idle_timeout,
                watch=watch,
            )
        finally:
            captured.finish()  # says what past the cap was not kept
            if stream is not None:
                stream.finish()
            self.end_echo()  # and lets out what the redactor held back
        if result.leftovers:
            self.note(f"stopped {result.leftovers} process(es) the agent left running")
        output = captured.text()
        failure = hint = None
        if result.exit_code not in (0, None) and not (result.timed_out or result.stalled):
            failure = classify(provider, result.exit_code, output)
            if failure == "provider_auth" and isinstance(provider, AuthExplaining):
                hint = provider.auth_hint(self.env)
        if stream is None:
            return AgentOutcome(
                result=result,
                output=output,
                output_dropped=captured.dropped,
                failure=failure,
                auth_hint=hint,
            )
        report = stream.provider.report(stream.events)
        return AgentOutcome(
            result=result,
            output=stream.text() if report.final_text is None else report.final_text,
            output_dropped=captured.dropped,
            failure=failure,
            auth_hint=hint,
            report=report,
            transcript=output,
        )


def classify(provider: Provider, exit_code: int, output: str) -> str:
    """Return the class of a failed run: the provider's answer first, then the patterns."""
    if isinstance(provider, FailureClassifying):
        answer = provider.classify(exit_code, output[-failures.TAIL :])
        if answer in failures.CLASSES:
            return answer
    return failures.classify_output(output)


def verdict(
    outcome: AgentOutcome, status_file: Path, redact: Callable[[str], str] = lambda t: t
) -> AgentRun:
    """Turn an agent's exit and status file into its run, or raise AgentFailed.

    ``redact`` cleans what the agent printed before its last line goes into a message.
    """
    result = outcome.result
    if result.spawn_error is not None:
        raise AgentFailed("provider_exit", f"could not start the agent: {result.spawn_error}")
    if result.timed_out:
        raise AgentFailed(
            "provider_timeout",
            f"the agent ran past the stage timeout and was stopped (exit {result.exit_code})",
        )
    if result.stalled:
        raise AgentFailed(
            "provider_stalled",
            "the agent printed nothing and changed no file of its iteration for the stage's "
            f"idle_timeout, and was stopped (exit {result.exit_code})",
        )
    if result.exit_code != 0:
        failure = outcome.failure or "provider_exit"
        if failure == "provider_exit":
            raise AgentFailed(failure, f"the agent exited with status {result.exit_code}")
        output = redact(outcome.output)
        raise AgentFailed(
            failure, failures.describe(failure, result.exit_code, output, outcome.auth_hint)
        )
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
