"""The built-ins' hook implementations: registered exactly as a third-party plugin's."""

from __future__ import annotations

from typing import Any

from looprunner.hookspecs import hookimpl


@hookimpl
def register_providers(registry: Any) -> None:
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
def register_terminations(registry: Any) -> None:
    """Register fixed, judgment and queue."""
    from looprunner.builtin.terminations import (
        FixedTermination,
        JudgmentTermination,
        QueueTermination,
    )

    for cls in (FixedTermination, JudgmentTermination, QueueTermination):
        registry.add(cls)


@hookimpl
def register_backends(registry: Any) -> None:
    """Register tmux and inline."""
    from looprunner.backends.inline import InlineBackend
    from looprunner.backends.tmux import TmuxBackend

    registry.add(TmuxBackend)
    registry.add(InlineBackend)
