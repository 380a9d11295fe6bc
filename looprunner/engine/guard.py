"""Whether a stop may unwind the engine at once, or is left to the agent's process runner."""

from __future__ import annotations


class InterruptGuard:
    """Knows whether a stop may unwind the engine at once (stage-type code is running).

    While an agent runs, its process runner handles a stop itself (ending the group
    within the grace period); while a stage type's own code runs, the signal handler
    raises :class:`Stopped` so ``kill`` stops a type that never looks at the clock.
    """

    def __init__(self) -> None:
        self.in_type_code = False

    def agent_running(self) -> _Pause:
        """Return a context in which a stop is left to the agent's process runner."""
        return _Pause(self)


class _Pause:
    def __init__(self, guard: InterruptGuard) -> None:
        self.guard = guard
        self.before = False

    def __enter__(self) -> None:
        self.before, self.guard.in_type_code = self.guard.in_type_code, False

    def __exit__(self, *exc: object) -> None:
        self.guard.in_type_code = self.before
