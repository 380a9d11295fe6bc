"""Built-in terminations: ``fixed`` and ``judgment``.

Every decision is derived from the stage's recorded history alone, so a resumed
session decides exactly as an uninterrupted one would.
"""

from __future__ import annotations

from typing import ClassVar

from looprunner.errors import ConfigError
from looprunner.models import Decision, Termination
from looprunner.protocols import StageProgress

DEFAULT_CONSENSUS = 2


class FixedTermination:
    """Run a set number of iterations; a ``stop`` decision ends the stage early."""

    name: ClassVar[str] = "fixed"
    cap_reason: ClassVar[str] = "iterations_complete"

    def __init__(self, spec: Termination) -> None:
        self.spec = spec

    def validate(self) -> None:
        """Nothing beyond the counts the loader already checked."""

    def decide(self, progress: StageProgress) -> str | None:
        """Stop when the last iteration said ``stop``."""
        if progress.history and progress.history[-1].decision is Decision.STOP:
            return "agent_stop"
        return None


class JudgmentTermination:
    """Stop after ``consensus`` consecutive ``stop`` decisions, not before ``min_iterations``.

    Consecutive stops are counted in this stage's own history, each iteration once.
    Reaching the cap without consensus completes the stage with ``max_iterations``.
    """

    name: ClassVar[str] = "judgment"
    cap_reason: ClassVar[str] = "max_iterations"

    def __init__(self, spec: Termination) -> None:
        self.spec = spec
        self.consensus = spec.consensus or DEFAULT_CONSENSUS
        self.min_iterations = spec.min_iterations or 1

    def validate(self) -> None:
        """Refuse a judge agent, which is not available yet, rather than ignore it."""
        if self.spec.judge is not None:
            raise ConfigError("termination.judge: judge agents are not supported yet")

    def decide(self, progress: StageProgress) -> str | None:
        """Stop on consensus once the minimum number of iterations has run."""
        if progress.completed < self.min_iterations:
            return None
        streak = 0
        for status in reversed(progress.history):
            if status.decision is not Decision.STOP:
                break
            streak += 1
        return "consensus" if streak >= self.consensus else None
