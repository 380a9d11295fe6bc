"""Stage and termination specifications: what one loop runs and when it stops."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from looprunner.errors import ConfigError

if TYPE_CHECKING:
    from looprunner.models.pipeline import Pipeline

#: Iterations a ``fixed`` stage runs when neither the stage nor ``-n`` says how many.
DEFAULT_MAX_ITERATIONS = 25
DEFAULT_PROVIDER = "claude"


@attrs.frozen
class JudgeSpec:
    """An opt-in judge agent that decides a ``judgment`` stage's stops."""

    provider: str | None = None
    model: str | None = None


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


def _as_termination(value: Termination | Mapping[str, Any]) -> Termination:
    """Accept ``termination={"type": "fixed", "iterations": 3}`` in Python code too."""
    if isinstance(value, Termination):
        return value
    known = {a.name for a in attrs.fields(Termination)}
    unknown = sorted(set(value) - known)
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]!r}", field="termination")
    return Termination(**dict(value))


@attrs.frozen
class Stage:
    """One stage: a prompt, the agent that runs it, and its termination rule.

    A stage comes from a folder (``stage.yaml`` + ``prompt.md``) through
    :meth:`Stage.load`, or is built in Python directly: ``Stage(name="fix",
    prompt="Fix one failing test. Write ${STATUS} when done.")``.

    Attributes
    ----------
    prompt:
        The prompt template text (not a file name), with ``${...}`` variables.
    command:
        For the ``command`` provider: the program and its arguments, never run through a
        shell.
    fixtures:
        For the ``mock`` provider: the folder of canned outputs and statuses.
    source:
        The folder the stage was read from, or None for a stage built in code.
    """

    name: str
    prompt: str = ""
    description: str = ""
    provider: str | None = None
    model: str | None = None
    termination: Termination = attrs.field(factory=Termination, converter=_as_termination)
    delay: float = 0.0
    context: str = ""
    output_path: str | None = None
    timeout: float | None = None
    command: tuple[str, ...] | None = None
    fixtures: Path | None = None
    mock_delay: float | None = None
    source: Path | None = None

    @property
    def provider_name(self) -> str:
        """The provider this stage runs with (``claude`` unless set)."""
        return self.provider or DEFAULT_PROVIDER

    @classmethod
    def load(cls, name_or_path: str | Path, *, project: str | Path = ".") -> Stage:
        """Load a stage by name (searched as ``looprunner stages`` lists) or folder path."""
        from looprunner.definitions import catalog  # models never parse files themselves

        return catalog.load_stage(name_or_path, project=Path(project))

    def loop(self, iterations: int | None = None) -> Pipeline:
        """Return a one-stage pipeline that runs this stage (``iterations`` caps it)."""
        from looprunner.models.pipeline import Pipeline

        return Pipeline.loop(self, iterations=iterations)
