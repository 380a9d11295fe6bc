"""Stages and pipelines: what a session runs. A loop is a one-stage pipeline.

Stage, Node and Pipeline live in one module because they refer to each other
(``Stage.loop`` builds a Pipeline, a Pipeline holds Nodes holding Stages); split across
modules they would import each other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import attrs

from looprunner.errors import ConfigError, LooprunnerError
from looprunner.models.budget import DEFAULT_TIMEOUT, Budget, Retry
from looprunner.models.ids import NODE_ID
from looprunner.models.loading import loader
from looprunner.models.termination import Termination, as_termination

PipelineKind = Literal["loop", "pipeline"]
SessionMode = Literal["fresh", "continue"]

DEFAULT_PROVIDER = "claude"


def _as_options(value: Mapping[str, Any]) -> dict[str, Any]:
    """Copy ``options`` into a dict of its own; refuse anything that is not a mapping."""
    if not isinstance(value, Mapping):
        raise ConfigError(f"expected a mapping, got {value!r}", field="options")
    return dict(value)


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
    type:
        The stage type that runs each iteration, by its registered name; None means the
        default type (render the prompt, run the provider's agent, read its status).
    options:
        Free-form settings for the stage type (``options:`` in stage.yaml), read by the
        type itself; empty unless given.
    command:
        For the ``command`` provider: the program and its arguments, never run through a
        shell.
    fixtures:
        For the ``mock`` provider: the folder of canned outputs and statuses.
    source:
        The folder the stage was read from, or None for a stage built in code.
    timeout, idle_timeout:
        Seconds an iteration's agent may run (:data:`DEFAULT_TIMEOUT` unless set; None:
        no limit), and may go without printing or changing a file of its iteration
        (None: no limit) before it is stopped.
    budget, retry:
        The stage's spending limits and how rate-limited agents are tried again.
    worktree:
        Run a session of this stage in a git worktree of its own (``worktree: true``;
        see :attr:`Pipeline.wants_worktree`).
    """

    name: str
    prompt: str = ""
    description: str = ""
    provider: str | None = None
    model: str | None = None
    termination: Termination = attrs.field(factory=Termination, converter=as_termination)
    delay: float = 0.0
    context: str = ""
    output_path: str | None = None
    timeout: float | None = DEFAULT_TIMEOUT
    command: tuple[str, ...] | None = None
    fixtures: Path | None = None
    mock_delay: float | None = None
    #: ``continue`` resumes the agent's own conversation from iteration to iteration
    session_mode: SessionMode = "fresh"
    source: Path | None = None
    type: str | None = None
    # left out of the hash so a Stage stays hashable: the dict is compared, never hashed
    options: Mapping[str, Any] = attrs.field(factory=dict, converter=_as_options, hash=False)
    budget: Budget = attrs.field(factory=Budget)
    retry: Retry = attrs.field(factory=Retry)
    idle_timeout: float | None = None
    worktree: bool = False

    @property
    def provider_name(self) -> str:
        """The provider this stage runs with (``claude`` unless set)."""
        return self.provider or DEFAULT_PROVIDER

    @classmethod
    def load(cls, name_or_path: str | Path, *, project: str | Path = ".") -> Stage:
        """Load a stage by name (searched as ``looprunner stages`` lists) or folder path."""
        stage = loader().load_stage(name_or_path, Path(project))
        if not isinstance(stage, Stage):
            raise LooprunnerError(f"the definition loader returned {stage!r}, not a Stage")
        return stage

    def loop(self, iterations: int | None = None) -> Pipeline:
        """Return a one-stage pipeline that runs this stage (``iterations`` caps it)."""
        return Pipeline.loop(self, iterations=iterations)


@attrs.frozen
class ParallelInput:
    """Outputs of an earlier parallel block that a node reads (``inputs.from_parallel``).

    ``stage`` is the id of a stage inside the block; ``block`` the block's node id, needed
    only when several blocks have a stage of that id; ``providers`` keeps a subset of the
    block's providers (None: all of them); ``select`` gives each provider's ``latest``
    output of that stage or the outputs of every iteration (``history``).
    """

    stage: str
    block: str | None = None
    providers: tuple[str, ...] | None = None
    select: Literal["latest", "history"] = "latest"


@attrs.frozen
class NodeInputs:
    """What a node receives from before it.

    ``from_initial`` passes the session's ``--input`` files; ``from_nodes`` names earlier
    nodes whose outputs it reads, ``select`` says whether it gets only each one's latest
    output or all of its iterations'; ``from_parallel`` reads what providers of earlier
    parallel blocks wrote.
    """

    from_initial: bool = True
    from_nodes: tuple[str, ...] = ()
    select: Literal["latest", "all"] = "latest"
    from_parallel: tuple[ParallelInput, ...] = ()


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
    :meth:`Pipeline.loop` from a single stage. ``worktree`` (``worktree: true`` in the
    file) runs the session in a git worktree of its own. ``backends`` holds the file's
    settings of backends (``backends: {ray: {address: ...}}``), each backend's options
    by name: a launch on that backend takes them unless its command or environment sets
    them (see :mod:`looprunner.session.backend_options`).
    """

    name: str
    nodes: tuple[Node, ...]
    kind: PipelineKind = "pipeline"
    description: str = ""
    commands: Mapping[str, str] = attrs.field(factory=dict)
    inputs: tuple[str, ...] = ()
    context: str = ""
    source: Path | None = None
    budget: Budget = attrs.field(factory=Budget)
    worktree: bool = False
    backends: Mapping[str, Mapping[str, str]] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        if not self.nodes:
            raise ConfigError("a pipeline needs at least one node", path=self.source)
        seen: set[str] = set()
        for node in self.nodes:
            if node.id in seen:
                raise ConfigError(f"duplicate node id {node.id!r}", path=self.source)
            seen.add(node.id)

    @property
    def wants_worktree(self) -> bool:
        """True when the pipeline, or the stage of any of its nodes, asks for a worktree.

        A session has one working directory, so one stage asking is enough.
        """
        return self.worktree or any(node.stage.worktree for node in self.nodes)

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
        pipeline = loader().load_pipeline(name_or_path, Path(project))
        if not isinstance(pipeline, Pipeline):
            raise LooprunnerError(f"the definition loader returned {pipeline!r}, not a Pipeline")
        return pipeline

    def repeated(
        self,
        runs: int,
        *,
        adjust: Callable[[Node, Mapping[str, str]], Node] | None = None,
    ) -> Pipeline:
        """Return a pipeline that runs this one's nodes ``runs`` times, one run after another.

        Run 1 keeps the node ids; run N's nodes are ``ID-runN``, and an ``inputs.from``
        (or a ``from_parallel`` naming its ``block``) names the node of its own run. Each
        run's first node reads the previous run's last one, as any node reads the node
        before it; the progress file is shared, so it accumulates across runs.
        ``adjust(node, renames)`` lets a stage type's own options follow the renames of
        its run (a parallel block's providers name blocks too).
        """
        if runs < 1:
            raise ConfigError(f"runs must be at least 1, got {runs}")
        if runs == 1:
            return self
        nodes: list[Node] = []
        for run in range(1, runs + 1):
            renames = {n.id: n.id if run == 1 else f"{n.id}-run{run}" for n in self.nodes}
            for node in self.nodes:
                new_id = renames[node.id]
                if not NODE_ID.fullmatch(new_id):
                    raise ConfigError(
                        f"runs: the id {new_id!r} of run {run} of node {node.id!r} is longer "
                        "than 64 characters; shorten the node's id"
                    )
                inputs = attrs.evolve(
                    node.inputs,
                    from_nodes=tuple(renames.get(n, n) for n in node.inputs.from_nodes),
                    from_parallel=tuple(
                        attrs.evolve(spec, block=renames.get(spec.block, spec.block))
                        if spec.block is not None
                        else spec
                        for spec in node.inputs.from_parallel
                    ),
                )
                copy = attrs.evolve(node, id=new_id, inputs=inputs)
                nodes.append(adjust(copy, renames) if adjust is not None else copy)
        return attrs.evolve(self, nodes=tuple(nodes))

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
