"""Built-in terminations: ``fixed``, ``judgment`` and ``queue``.

Every decision is derived from the stage's recorded history alone, so a resumed
session decides exactly as an uninterrupted one would.
"""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING, ClassVar

from looprunner.errors import ConfigError, LooprunnerError
from looprunner.models import Termination
from looprunner.protocols import StageProgress

if TYPE_CHECKING:
    from looprunner.models import AgentStatus


def _said_stop(status: AgentStatus) -> bool:
    """Whether an iteration's agent said stop.

    The agent models load here, when deciding: ``status`` finds a session's termination
    class (to ask it for its queue) without deciding anything.
    """
    from looprunner.models import Decision

    return status.decision is Decision.STOP


DEFAULT_CONSENSUS = 2


class FixedTermination:
    """Run a set number of iterations; a ``stop`` decision ends the stage early."""

    name: ClassVar[str] = "fixed"
    cap_reason: ClassVar[str] = "iterations_complete"

    def __init__(self, spec: Termination) -> None:
        self.spec = spec

    def validate(self) -> None:
        """Refuse a judge (it decides judgment stages only) rather than ignore it."""
        if self.spec.judge is not None:
            raise ConfigError("termination.judge: a judge applies to 'judgment' terminations only")

    def decide(self, progress: StageProgress) -> str | None:
        """Stop when the last iteration said ``stop``."""
        if progress.history and _said_stop(progress.history[-1]):
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
        """Nothing beyond the counts the loader already checked (a judge is optional)."""

    def decide(self, progress: StageProgress) -> str | None:
        """Stop on consensus once the minimum number of iterations has run."""
        if progress.completed < self.min_iterations:
            return None
        streak = 0
        for status in reversed(progress.history):
            if not _said_stop(status):
                break
            streak += 1
        return "consensus" if streak >= self.consensus else None


class QueueTermination:
    """Stop when an external queue is empty, checked before every iteration.

    The queue is asked by running ``termination.queue_command`` (an argv, never a
    shell; ``${SESSION_NAME}`` is replaced) in the project folder: empty output means
    the queue is empty. A command that fails stops the session with an error rather
    than guessing.
    """

    name: ClassVar[str] = "queue"
    cap_reason: ClassVar[str] = "max_iterations"
    timeout: ClassVar[float] = 120.0

    def __init__(self, spec: Termination) -> None:
        self.spec = spec

    def validate(self) -> None:
        """Require the command that lists what is left in the queue (and no judge)."""
        if self.spec.judge is not None:
            raise ConfigError("termination.judge: a judge applies to 'judgment' terminations only")
        if not self.spec.queue_command:
            raise ConfigError(
                "termination.queue_command: a 'queue' termination needs the command that "
                "lists the remaining items (empty output = done)"
            )

    def remaining(self, progress: StageProgress) -> list[str]:
        """Run the queue command; return its non-empty output lines."""
        assert self.spec.queue_command
        values = {"SESSION_NAME": progress.session, "SESSION": progress.session}
        from looprunner.engine.prompt import render  # only when a queue is counted

        argv = [render(arg, values) for arg in self.spec.queue_command]
        try:
            result = subprocess.run(
                argv,
                cwd=progress.project,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise LooprunnerError(f"queue command {argv[0]!r} failed: {exc}") from exc
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
            raise LooprunnerError(
                f"queue command {argv[0]!r} exited with status {result.returncode}: {detail[0]}"
            )
        return [line for line in result.stdout.splitlines() if line.strip()]

    def decide(self, progress: StageProgress) -> str | None:
        """Stop when the queue is empty (or the agent said stop)."""
        if progress.history and _said_stop(progress.history[-1]):
            return "agent_stop"
        return None if self.remaining(progress) else "queue_empty"
