"""Typing-only contracts for the pluggable parts: providers, terminations, backends.

Built-ins implement these exactly as a third-party plugin would.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import ClassVar, Protocol, runtime_checkable

import attrs

from looprunner.models import AgentCommand, AgentStatus, Invocation, Stage, Termination


@runtime_checkable
class Provider(Protocol):
    """Turns one iteration into a command to run: Claude Code, Codex, any program."""

    name: ClassVar[str]

    def check(self, stage: Stage) -> None:
        """Raise :class:`~looprunner.errors.ProviderError` if the stage cannot run here.

        For example when its program is not installed or an option it needs is missing.
        """

    def command(self, invocation: Invocation) -> AgentCommand:
        """Return the program, its arguments, environment and stdin for this iteration."""


@attrs.frozen
class StageProgress:
    """What a termination sees: the stage's own decisions so far, oldest first."""

    completed: int
    cap: int
    history: Sequence[AgentStatus]
    project: Path
    session: str


@runtime_checkable
class TerminationStrategy(Protocol):
    """Decides after each iteration whether a stage is done."""

    name: ClassVar[str]
    #: the reason recorded when the stage reaches its cap without deciding itself
    cap_reason: ClassVar[str]

    def __init__(self, spec: Termination) -> None: ...

    def validate(self) -> None:
        """Raise :class:`~looprunner.errors.ConfigError` if the spec is unusable."""

    # Optional: ``check(self) -> None`` raising a LooprunnerError when this machine cannot
    # run the termination (a program it needs is missing). Called by ``start`` and
    # ``dry-run``, never by ``lint``, which judges the definition only.

    def decide(self, progress: StageProgress) -> str | None:
        """Return a reason to stop now, or None to run another iteration.

        Called before every iteration (also right after a resume), so a decision must be
        derived from ``progress`` alone, never from memory of earlier calls.
        """


@attrs.frozen
class LaunchSpec:
    """How to start an engine: its argv, environment, and working folder."""

    session: str
    project: Path
    argv: tuple[str, ...]
    env: Mapping[str, str]
    resume: bool = False


@runtime_checkable
class Backend(Protocol):
    """Where an engine process runs (a tmux session, the calling process, ...)."""

    name: ClassVar[str]

    def launch(self, spec: LaunchSpec) -> None:
        """Start the engine; return once it is started (not finished) where possible."""

    def sessions(self, project: Path) -> set[str] | None:
        """Return the project's live sessions, or None if that cannot be known."""

    def stop(self, session: str, project: Path) -> bool:
        """Remove what the backend holds for the project's ``session``; return if any."""
