"""The built-in stage type ``agent``: one agent per iteration, as loop-agents runs stages.

It is registered through ``register_stage_types`` like any plugin's type, and uses only
what a plugin's type gets: the iteration context and its ``run_agent``.
"""

from __future__ import annotations

from typing import ClassVar

from looprunner.errors import ConfigError
from looprunner.models import AgentStatus, IterationContext, Stage


class AgentStageType:
    """Render the stage's prompt, run its provider's agent, take the agent's status.json."""

    name: ClassVar[str] = "agent"

    def __init__(self, stage: Stage) -> None:
        self.stage = stage

    def validate(self) -> None:
        """Refuse ``options:`` (the type is set by the stage's keys) and an empty prompt."""
        if not self.stage.prompt.strip():
            raise ConfigError(
                f"stage {self.stage.name!r}: the prompt is empty, so its agent would get "
                "nothing to do; write the task in prompt.md",
                field="prompt",
            )
        if self.stage.options:
            keys = ", ".join(sorted(map(str, self.stage.options)))
            raise ConfigError(
                f"stage {self.stage.name!r}: the agent stage type takes no options "
                f"(got {keys}); set provider, model, timeout, ... as stage keys",
                field="options",
            )

    def run_iteration(self, ctx: IterationContext) -> AgentStatus:
        """Run the stage's agent once; its status is the iteration's."""
        return ctx.run_agent().status
