"""Pipelines: ordered nodes, each a resolved stage. A loop is a one-stage pipeline."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import attrs

from looprunner.errors import ConfigError
from looprunner.models.stage import Stage

PipelineKind = Literal["loop", "pipeline"]


@attrs.frozen
class NodeInputs:
    """What a node receives from before it.

    ``from_initial`` passes the session's ``--input`` files; ``from_nodes`` names earlier
    nodes whose outputs it reads, ``select`` says whether it gets only each one's latest
    output or all of its iterations'.
    """

    from_initial: bool = True
    from_nodes: tuple[str, ...] = ()
    select: Literal["latest", "all"] = "latest"


#: a node id becomes part of a folder name: letters, digits, '-' and '_' only
NODE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def _check_node_id(instance: object, attribute: object, value: str) -> None:
    if not isinstance(value, str) or not NODE_ID.fullmatch(value):
        raise ConfigError(
            f"invalid id {value!r}: use letters, digits, '-' and '_' (at most 64), "
            "since it names the stage's folder",
            field="id",
        )


@attrs.frozen
class Node:
    """One step of a pipeline: a stage with this node's overrides already applied."""

    id: str = attrs.field(validator=_check_node_id)
    stage: Stage
    inputs: NodeInputs = attrs.field(factory=NodeInputs)
    max_iterations: int | None = None

    @property
    def cap(self) -> int:
        """The most iterations this node may run."""
        return self.stage.termination.cap(self.max_iterations)


@attrs.frozen
class Pipeline:
    """An ordered list of nodes to run for one session.

    Build one with :meth:`Pipeline.load` from a YAML file or name, or with
    :meth:`Pipeline.loop` from a single stage.
    """

    name: str
    nodes: tuple[Node, ...]
    kind: PipelineKind = "pipeline"
    description: str = ""
    commands: Mapping[str, str] = attrs.field(factory=dict)
    inputs: tuple[str, ...] = ()
    context: str = ""
    source: Path | None = None

    def __attrs_post_init__(self) -> None:
        if not self.nodes:
            raise ConfigError("a pipeline needs at least one node", path=self.source)
        seen: set[str] = set()
        for node in self.nodes:
            if node.id in seen:
                raise ConfigError(f"duplicate node id {node.id!r}", path=self.source)
            seen.add(node.id)

    @classmethod
    def loop(cls, stage: Stage, *, iterations: int | None = None) -> Pipeline:
        """Return a one-stage pipeline running ``stage`` up to ``iterations`` times."""
        if iterations is not None and iterations < 1:
            raise ConfigError(f"iterations must be at least 1, got {iterations}")
        return cls(
            name=stage.name,
            nodes=(Node(id=stage.name, stage=stage, max_iterations=iterations),),
            kind="loop",
            description=stage.description,
        )

    @classmethod
    def load(cls, name_or_path: str | Path, *, project: str | Path = ".") -> Pipeline:
        """Load a pipeline file by path, or by name from the project's pipeline folders."""
        from looprunner.definitions import pipelines  # models never parse files themselves

        return pipelines.load_pipeline(name_or_path, project=Path(project))

    def with_overrides(
        self,
        *,
        provider: str | None = None,
        model: str | None = None,
        context: str | None = None,
        inputs: tuple[str, ...] = (),
    ) -> Pipeline:
        """Return a copy with command-line overrides applied to every node.

        Precedence is node > stage > pipeline defaults > these overrides > built-in
        default: a provider or model a node or stage sets itself is kept; ``context`` is
        appended to every node's own.
        """

        def adjust(node: Node) -> Node:
            stage = node.stage
            # a CLI model only fits the CLI's provider: a stage that picks its own
            # provider keeps its own model (or the provider's default)
            stage = attrs.evolve(
                stage,
                provider=stage.provider or provider,
                model=stage.model or (model if not stage.provider else None),
                context="\n\n".join(part for part in (stage.context, context or "") if part),
            )
            return attrs.evolve(node, stage=stage)

        return attrs.evolve(
            self,
            nodes=tuple(adjust(node) for node in self.nodes),
            inputs=self.inputs + inputs,
        )
