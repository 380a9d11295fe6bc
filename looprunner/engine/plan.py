"""What an iteration is asked to do, and how it says it failed (for the engine's modules)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

import attrs

from looprunner.models import AgentStatus, Branch, BranchResult, Node, Pipeline, RunError


class IterationFailed(Exception):
    """The iteration failed; ``error`` is what state.json records."""

    def __init__(self, error: RunError) -> None:
        super().__init__(error.message)
        self.error = error


@attrs.frozen
class IterationPlan:
    """Which iteration of which node to run."""

    pipeline: Pipeline
    index: int
    iteration: int
    cap: int
    previous: AgentStatus | None
    #: outputs of earlier parallel blocks this node reads, by provider
    from_parallel: Mapping[str, list[str]] = attrs.field(factory=dict)

    @property
    def node(self) -> Node:
        """The pipeline node being run."""
        return self.pipeline.nodes[self.index]


class BranchRunning(Protocol):
    """Runs the branches a stage type asks for (see :mod:`looprunner.engine.branches`)."""

    def run(
        self, plan: IterationPlan, block: Path, branches: Sequence[Branch]
    ) -> list[BranchResult]:
        """Run ``branches`` concurrently in ``block`` and wait for all of them."""
