"""The built-ins' hook implementations: registered exactly as a third-party plugin's."""

from __future__ import annotations

from typing import TYPE_CHECKING

from looprunner.plugins.hookspecs import hookimpl

if TYPE_CHECKING:
    from looprunner.plugins.registry import Registry
    from looprunner.protocols import Backend, Provider, StageType, TerminationStrategy


@hookimpl
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


@hookimpl
def register_terminations(registry: Registry[TerminationStrategy]) -> None:
    """Register fixed, judgment and queue."""
    from looprunner.builtin.terminations import (
        FixedTermination,
        JudgmentTermination,
        QueueTermination,
    )

    for cls in (FixedTermination, JudgmentTermination, QueueTermination):
        registry.add(cls)


@hookimpl
def register_backends(registry: Registry[Backend]) -> None:
    """Register tmux and inline."""
    from looprunner.backends.inline import InlineBackend
    from looprunner.backends.tmux import TmuxBackend

    registry.add(TmuxBackend)
    registry.add(InlineBackend)


@hookimpl
def register_stage_types(registry: Registry[StageType]) -> None:
    """Register agent."""
    from looprunner.builtin.parallel import ParallelStageType
    from looprunner.builtin.stage_types import AgentStageType

    registry.add(AgentStageType)
    registry.add(ParallelStageType)
