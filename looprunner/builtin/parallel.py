"""The built-in stage type ``parallel``: the same stages once per provider, at once.

A pipeline's ``parallel:`` node becomes a node of this type; its ``options`` hold the
block, resolved when the pipeline was loaded, as plain data (so a session's
``pipeline.yaml`` keeps it and a resume needs no stage folder):

- ``providers``: a list of ``{name, provider, model, from_parallel}``; ``name`` names the
  provider's folder and its events, ``provider`` (default: the name) runs its agents;
- ``stages``: the block's nodes, as ``pipeline.yaml`` writes nodes.

One iteration of the block is the whole block: :meth:`IterationContext.run_branches`
runs every provider's stages, the providers concurrently, and returns when all ended.
The block's verdict says what each provider did; its output lists their outputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import attrs

from looprunner import convert
from looprunner.errors import ConfigError, LooprunnerError
from looprunner.models import (
    AgentStatus,
    Branch,
    BranchResult,
    IterationContext,
    Node,
    ParallelInput,
    Stage,
)
from looprunner.names import validate_node_id


class ParallelStageType:
    """Run the block's stages once per provider, the providers concurrently."""

    name: ClassVar[str] = "parallel"

    def __init__(self, stage: Stage) -> None:
        self.stage = stage

    def validate(self) -> None:
        """Refuse a block without providers or stages, or with two providers of one name."""
        self.branches()

    def branches(self) -> list[Branch]:
        """Return one branch per provider, each running the block's stages."""
        options = self.stage.options
        providers = options.get("providers")
        stages = options.get("stages")
        if not isinstance(providers, Sequence) or isinstance(providers, str) or not providers:
            raise ConfigError("a parallel block needs a list of providers", field="providers")
        if not isinstance(stages, Sequence) or isinstance(stages, str) or not stages:
            raise ConfigError("a parallel block needs a list of stages", field="stages")
        try:
            nodes = tuple(convert.structure(item, Node) for item in stages)
        except LooprunnerError as exc:
            raise ConfigError(f"a stage of the block is unusable: {exc.message}") from None
        branches = [self._branch(entry, nodes) for entry in providers]
        names = [b.name for b in branches]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ConfigError(
                f"provider {duplicates[0]!r} is listed twice; give each a distinct 'name'",
                field="providers",
            )
        return branches

    @staticmethod
    def _branch(entry: Any, nodes: tuple[Node, ...]) -> Branch:
        if isinstance(entry, str):
            entry = {"name": entry}
        if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
            raise ConfigError(f"a provider needs a name, got {entry!r}", field="providers")
        name = validate_node_id(entry["name"], where="providers")
        specs = entry.get("from_parallel") or ()
        try:
            from_parallel = tuple(convert.structure(spec, ParallelInput) for spec in specs)
        except LooprunnerError as exc:
            raise ConfigError(f"provider {name!r}: {exc.message}") from None
        return Branch(
            name=name,
            nodes=nodes,
            provider=entry.get("provider") or name,
            model=entry.get("model"),
            from_parallel=from_parallel,
        )

    def nested_stages(self) -> list[Stage]:
        """Every stage the block runs, as each provider runs it (``start`` checks them)."""
        return [
            attrs.evolve(node.stage, provider=branch.provider, model=branch.model)
            if branch.provider != node.stage.provider_name
            else node.stage
            for branch in self.branches()
            for node in branch.nodes
        ]

    def run_iteration(self, ctx: IterationContext) -> AgentStatus:
        """Run every provider's stages and wait for all; the block's verdict sums them up."""
        results = ctx.run_branches(self.branches())
        ctx.paths.output.write_text(_summary(ctx, results), encoding="utf-8")
        done = "; ".join(
            f"{r.name}: " + ", ".join(f"{sid} {n}" for sid, (n, _) in r.stages.items())
            for r in results
        )
        return AgentStatus(
            decision="continue",
            reason=f"all {len(results)} providers complete",
            summary=f"iterations per stage: {done}",
        )


def _summary(ctx: IterationContext, results: list[BranchResult]) -> str:
    """Return the block's output.md: where each provider's outputs are."""
    lines = [f"# Parallel block {ctx.stage_id}", ""]
    for result in results:
        lines.append(f"## {result.name}")
        for stage_id, (iterations, reason) in result.stages.items():
            output = result.outputs.get(stage_id, "")
            lines.append(f"- {stage_id}: {iterations} iteration(s), {reason}: {output}")
        lines.append("")
    return "\n".join(lines)
