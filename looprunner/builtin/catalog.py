"""The built-ins' classes, by kind: what the built-in plugin registers.

Kept apart from :mod:`looprunner.builtin.plugin` (which marks these same functions as
hook implementations) so that a command that only looks at sessions can find a built-in
backend or termination without importing pluggy: :class:`BuiltinRegistries` calls them
directly. A plugin cannot take a built-in's name, so the answer is the same.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from looprunner.plugins.registry import Registries

if TYPE_CHECKING:
    from looprunner.plugins.registry import Registry
    from looprunner.protocols import Backend, Provider, StageType, TerminationStrategy

#: the name the built-in plugin is registered under (``plugins`` lists it)
BUILTIN_NAME = "looprunner.builtin"


def register_providers(registry: Registry[Provider]) -> None:
    """Register claude, codex, command and mock."""
    from looprunner.builtin.providers import (
        ClaudeProvider,
        CodexProvider,
        CommandProvider,
        MockProvider,
    )

    for cls in (ClaudeProvider, CodexProvider, CommandProvider, MockProvider):
        registry.add(cls)


def register_terminations(registry: Registry[TerminationStrategy]) -> None:
    """Register fixed, judgment and queue."""
    from looprunner.builtin.terminations import (
        FixedTermination,
        JudgmentTermination,
        QueueTermination,
    )

    for cls in (FixedTermination, JudgmentTermination, QueueTermination):
        registry.add(cls)


def register_backends(registry: Registry[Backend]) -> None:
    """Register tmux and inline."""
    from looprunner.backends.inline import InlineBackend
    from looprunner.backends.tmux import TmuxBackend

    registry.add(TmuxBackend)
    registry.add(InlineBackend)


def register_stage_types(registry: Registry[StageType]) -> None:
    """Register agent."""
    from looprunner.builtin.parallel import ParallelStageType
    from looprunner.builtin.stage_types import AgentStageType

    registry.add(AgentStageType)
    registry.add(ParallelStageType)


class BuiltinRegistries(Registries):
    """The built-ins' registries alone, filled without a plugin manager."""

    def __init__(self) -> None:
        """Build nothing yet: each kind is filled when first asked for (no ``pm``)."""

    def _fill(self, hook_name: str, registry: Any) -> Any:
        registry.current_plugin = BUILTIN_NAME
        fill = _HOOKS.get(hook_name)
        if fill is not None:  # a kind the built-ins register nothing of stays empty
            fill(registry)
        return registry


_HOOKS: dict[str, Callable[[Any], None]] = {
    "register_providers": register_providers,
    "register_terminations": register_terminations,
    "register_backends": register_backends,
    "register_stage_types": register_stage_types,
}
