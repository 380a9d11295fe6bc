"""Termination specifications: when a stage stops."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from looprunner.errors import ConfigError

#: Iterations a ``fixed`` stage runs when neither the stage nor ``-n`` says how many.
DEFAULT_MAX_ITERATIONS = 25


@attrs.frozen
class JudgeSpec:
    """An opt-in judge agent that decides a ``judgment`` stage's stops.

    ``prompt`` is the judge's prompt template (its text, not a file name); None uses
    looprunner's own. ``start --judge`` puts a project's ``scripts/prompts/judge.md``
    here, so the prompt travels with the resolved pipeline and a resume uses the same.
    """

    provider: str | None = None
    model: str | None = None
    prompt: str | None = None


def _count(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Refuse a count that is not a whole number (``True`` is not a count either)."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(
            f"expected an integer, got {value!r}", field=f"termination.{attribute.name}"
        )


@attrs.frozen
class Termination:
    """When a stage stops.

    ``type`` names a termination strategy (``fixed``, ``judgment``, ``queue`` or one a
    plugin registers). ``iterations`` is the fixed count; ``max`` the hard cap every type
    honours; ``min_iterations`` and ``consensus`` belong to ``judgment``.
    """

    type: str = "fixed"
    iterations: int | None = attrs.field(default=None, validator=_count)
    max: int | None = attrs.field(default=None, validator=_count)
    min_iterations: int | None = attrs.field(default=None, validator=_count)
    consensus: int | None = attrs.field(default=None, validator=_count)
    judge: JudgeSpec | None = None
    queue_command: tuple[str, ...] | None = None

    def cap(self, override: int | None = None) -> int:
        """Return the most iterations this stage may run.

        ``override`` (the command line's ``-n``) wins; then ``max``, then ``iterations``,
        then :data:`DEFAULT_MAX_ITERATIONS`.
        """
        if override is not None:
            return override
        if self.max is not None:
            return self.max
        if self.iterations is not None:
            return self.iterations
        return DEFAULT_MAX_ITERATIONS

    def merged(self, overrides: Mapping[str, Any]) -> Termination:
        """Return this termination with the keys in ``overrides`` replaced."""
        return attrs.evolve(self, **dict(overrides))


def as_termination(value: Termination | Mapping[str, Any]) -> Termination:
    """Accept ``termination={"type": "fixed", "iterations": 3}`` in Python code too."""
    if isinstance(value, Termination):
        return value
    known = {a.name for a in attrs.fields(Termination)}
    unknown = sorted(set(value) - known)
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]!r}", field="termination")
    return Termination(**dict(value))
