"""What a stage type receives for one iteration, and what running an agent gives back.

:class:`IterationContext` is the whole interface between the engine and a stage type: the
iteration's facts, its files, and the engine's one way of running an agent
(:meth:`IterationContext.run_agent`), so a type composes agents instead of re-implementing
process groups, timeouts, kill and redaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import attrs

from looprunner.models.agent import AgentStatus
from looprunner.models.pipeline import Node, ParallelInput, Stage


@attrs.frozen
class IterationPaths:
    """The files of one iteration, absolute; ``folder`` is ``iterations/NNN``.

    ``block`` is the node's block folder (``parallel-NN-ID``): where
    :meth:`IterationContext.run_branches` keeps each branch's work and ``manifest.json``.
    It exists only once a type runs branches.
    """

    folder: Path
    context: Path
    status: Path
    output: Path
    progress: Path
    block: Path


@attrs.frozen
class Branch:
    """One line of stages a stage type runs beside others (a provider of a parallel block).

    Attributes
    ----------
    name:
        Names the branch's folder and tags its events (``data.provider``); letters,
        digits, ``-`` and ``_``.
    nodes:
        The stages to run in order, each to its own termination.
    provider, model:
        Override the stages' provider and model (None keeps the stages' own).
    from_parallel:
        Outputs of earlier blocks every stage of this branch reads, besides its own inputs.
    """

    name: str
    nodes: tuple[Node, ...]
    provider: str | None = None
    model: str | None = None
    from_parallel: tuple[ParallelInput, ...] = ()


@attrs.frozen
class BranchResult:
    """How one branch ended: ``status`` is ``complete``, ``failed`` or ``killed``.

    ``stages`` maps each stage id to its iterations run and termination reason;
    ``error`` is ``(type, message)`` for a failed branch.
    """

    name: str
    status: str
    stages: Mapping[str, tuple[int, str | None]]
    outputs: Mapping[str, str]
    error: tuple[str, str] | None = None


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

    def run_branches(self, branches: Sequence[Branch]) -> list[BranchResult]:
        """Run branches concurrently; see IterationContext.run_branches."""

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

    def run_branches(self, branches: Sequence[Branch]) -> list[BranchResult]:
        """Run each branch's stages, the branches concurrently, and wait for all of them.

        Each branch runs in ``paths.block / NAME`` with its own progress file, iteration
        folders, termination state and ``state.json``, under every rule of an agent run.
        When one branch fails, the others are stopped (their agents ended, nothing
        orphaned) and :class:`~looprunner.errors.AgentFailed` is raised with the failed
        branch's error type. A branch that completed in an earlier run of this iteration
        (before a crash or a ``kill``) is not run again; an unfinished one continues
        from its last completed iteration. ``paths.block / "manifest.json"`` lists every
        branch's stages and outputs for later nodes' ``inputs.from_parallel``.
        """
        return self._engine.run_branches(branches)

    def log(self, message: str) -> None:
        """Write a line to engine.log (secrets redacted)."""
        self._engine.log(message)

    @property
    def stop_requested(self) -> bool:
        """True once ``kill`` (or a signal) asked the session to stop: return soon."""
        return self._engine.stop_requested
