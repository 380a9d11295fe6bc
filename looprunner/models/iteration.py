"""What a stage type receives for one iteration, and what running an agent gives back.

:class:`IterationContext` is the whole interface between the engine and a stage type: the
iteration's facts, its files, and the engine's one way of running an agent
(:meth:`IterationContext.run_agent`), so a type composes agents instead of re-implementing
process groups, timeouts, kill and redaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import attrs

from looprunner.models.agent import AgentStatus
from looprunner.models.pipeline import Stage


@attrs.frozen
class IterationPaths:
    """The files of one iteration, absolute; ``folder`` is ``iterations/NNN``."""

    folder: Path
    context: Path
    status: Path
    output: Path
    progress: Path


@attrs.frozen
class AgentRun:
    """One agent process that ran to a valid status: its verdict and how it went."""

    status: AgentStatus
    exit_code: int
    duration: float
    output: str


class AgentRunning(Protocol):
    """The engine's side of an iteration context (implemented by the engine)."""

    def run_agent(
        self,
        prompt: str | None,
        *,
        provider: str | None,
        model: str | None,
        status: Path | None,
        output: Path | None,
        label: str | None,
    ) -> AgentRun:
        """Run one agent process under every engine rule; see IterationContext.run_agent."""

    def log(self, message: str) -> None:
        """Write a line to engine.log."""

    @property
    def stop_requested(self) -> bool:
        """True once the session is being stopped."""


@attrs.frozen
class IterationContext:
    """One iteration as a stage type sees it.

    Attributes
    ----------
    session, stage_id, iteration, max_iterations:
        The session's name, the pipeline node's id, the 1-based iteration number and the
        stage's cap.
    project:
        The project folder (the agent's working directory).
    paths:
        ``folder``, ``context``, ``status``, ``output`` and ``progress`` of this iteration.
    prompt:
        The stage's prompt, rendered with this iteration's variables.
    options:
        The stage's ``options:`` mapping (node keys over stage keys).
    stage:
        The resolved stage (provider, model, timeout, ...).
    previous:
        The previous iteration's status in this stage, or None on the first.
    """

    session: str
    stage_id: str
    iteration: int
    max_iterations: int
    project: Path
    paths: IterationPaths
    prompt: str
    options: Mapping[str, Any]
    stage: Stage
    previous: AgentStatus | None
    _engine: AgentRunning = attrs.field(alias="engine", repr=False)

    def run_agent(
        self,
        prompt: str | None = None,
        *,
        provider: str | None = None,
        model: str | None = None,
        status: Path | None = None,
        output: Path | None = None,
        label: str | None = None,
    ) -> AgentRun:
        """Run one agent process and return its verdict.

        Every rule of an agent run applies: its own process group, the stage's timeout,
        ``kill`` ending it, secrets redacted from what it prints, its output echoed to
        engine.log. Defaults are the stage's prompt, provider and model and this
        iteration's ``status.json`` and ``output.md``; give other paths to run a second
        agent in the same iteration.

        Raises
        ------
        AgentFailed
            The agent exited non-zero, timed out, or wrote no valid status (or decided
            ``error``); ``error_type`` says which. Letting it propagate fails the
            iteration with that type.
        """
        return self._engine.run_agent(
            prompt, provider=provider, model=model, status=status, output=output, label=label
        )

    def log(self, message: str) -> None:
        """Write a line to engine.log (secrets redacted)."""
        self._engine.log(message)

    @property
    def stop_requested(self) -> bool:
        """True once ``kill`` (or a signal) asked the session to stop: return soon."""
        return self._engine.stop_requested
