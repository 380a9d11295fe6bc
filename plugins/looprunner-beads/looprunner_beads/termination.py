"""The ``beads`` termination: stop when the session's beads queue is empty.

Before every iteration (the first included) it asks ``bd ready --label pipeline/SESSION``;
no ready bead means the work is done (``queue_empty``). A ``stop`` decision ends the
stage too (``agent_stop``), and the cap (``termination.max``) ends it with
``max_iterations``. Like every termination, it decides from what it is given alone, so
a resumed session decides exactly as an uninterrupted one would.
"""

from __future__ import annotations

from typing import ClassVar

from looprunner.plugin import ConfigError, Decision, StageProgress, Termination

from looprunner_beads import bd

#: termination keys that belong to other types and would be silently ignored here
_FOREIGN_KEYS = ("queue_command", "min_iterations", "consensus", "judge")


class BeadsTermination:
    """Stop when ``bd ready`` lists no bead labelled ``pipeline/SESSION``.

    ``looprunner status`` shows how many are left (``queue_remaining`` in ``--json``),
    through :meth:`remaining`. A failing ``bd`` raises, and the engine fails the session
    with ``termination_error`` and bd's message: an unreadable queue is never taken to
    be empty.
    """

    name: ClassVar[str] = "beads"
    cap_reason: ClassVar[str] = "max_iterations"

    def __init__(self, spec: Termination) -> None:
        self.spec = spec

    def validate(self) -> None:
        """Refuse keys of other termination types, which would be silently ignored.

        Whether ``bd`` is installed is a fact about the machine, not the definition (so
        ``looprunner lint`` does not depend on it): a missing ``bd`` fails the session at
        its first check, with ``termination_error``.
        """
        for key in _FOREIGN_KEYS:
            if getattr(self.spec, key) is not None:
                raise ConfigError(
                    "not used by a 'beads' termination (its queue is "
                    "'bd ready --label pipeline/SESSION'); remove it",
                    field=f"termination.{key}",
                )

    def remaining(self, progress: StageProgress) -> list[str]:
        """Return the ids of the session's ready beads, in bd's order."""
        return [issue["id"] for issue in bd.ready(progress.session, progress.project)]

    def decide(self, progress: StageProgress) -> str | None:
        """Stop when the last iteration said ``stop`` or no bead is ready."""
        if progress.history and progress.history[-1].decision is Decision.STOP:
            return "agent_stop"
        return None if self.remaining(progress) else "queue_empty"
