"""One node of a pipeline file, read into a :class:`Node` with its stage's keys overridden.

A node runs a stage by name (``stage:``, or the legacy ``loop:``) or an inline
``prompt:``; its own keys replace the stage's (``termination`` and ``options`` are merged
over the stage's). A node with ``parallel:`` is a block, read by
:mod:`~looprunner.definitions.blocks`. Every problem of a node is reported at once, each
at its line: the pipeline file collects them across nodes, so ``lint`` shows a file's
problems together.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import attrs

from looprunner import convert
from looprunner.convert import legacy
from looprunner.definitions import catalog
from looprunner.definitions.blocks import parallel_inputs, parallel_node
from looprunner.errors import ConfigError, LegacyPipelineWarning, combine_problems
from looprunner.models import (
    Budget,
    Node,
    NodeInputs,
    ParallelInput,
    Retry,
    Stage,
    Termination,
)
from looprunner.names import validate_node_id

T = TypeVar("T")


@attrs.frozen
class Defaults:
    """``defaults:``: a provider and model for nodes whose stage sets none."""

    provider: str | None = None
    model: str | None = None


@attrs.frozen
class _NodeFile:
    """The keys of one node, typed so the converter checks them (None: not given)."""

    id: str | None = None
    name: str | None = None  # legacy: the id
    stage: str | None = None
    loop: str | None = None  # legacy: the stage
    prompt: str | None = None
    description: str | None = None
    provider: str | None = None
    model: str | None = None
    context: str | None = None
    output_path: str | None = None
    runs: int | None = None
    delay: float | None = None
    timeout: float | None = None
    idle_timeout: float | None = None
    mock_delay: float | None = None
    fixtures: Path | None = None
    command: tuple[str, ...] | None = None
    type: str | None = None
    options: Mapping[str, Any] | None = None  # merged over the stage's
    termination: Mapping[str, Any] | None = None  # merged over the stage's
    budget: Mapping[str, Any] | None = None  # merged over the stage's
    retry: Mapping[str, Any] | None = None  # merged over the stage's
    inputs: Any = None  # ``from`` is a Python keyword: checked below
    parallel: Any = None  # a parallel block: read by definitions.blocks


convert.refuse_unknown_keys(Defaults, _NodeFile)

INPUT_KEYS = frozenset({"from", "select", "from_initial", "from_parallel"})
#: the node keys that replace the stage's own as they are
REPLACED = (
    "provider",
    "model",
    "description",
    "delay",
    "timeout",
    "idle_timeout",
    "mock_delay",
    "type",
    "output_path",
)


@attrs.define
class FileSpot:
    """A definition file and its parsed document: errors made here say where."""

    path: Path
    doc: Any

    def fail(
        self,
        message: str,
        keypath: convert.KeyPath,
        *,
        key: bool = False,
        code: str = "LR002",
    ) -> ConfigError:
        """Return a ConfigError located at ``keypath`` (its key, with ``key=True``)."""
        line, col = convert.locate(self.doc, keypath, key=key)
        return ConfigError(
            message,
            path=self.path,
            line=line,
            column=col,
            field=convert.dotted(keypath) or None,
            code=code,
        )

    def structure(self, data: Any, cls: type[T], where: convert.KeyPath) -> T:
        """Structure ``data`` (at ``where`` in the file) into ``cls``, located errors."""
        return convert.structure_from(data, cls, path=self.path, doc=self.doc, prefix=where)

    def drop_unknown(
        self, values: dict[str, Any], cls: type[Any], where: convert.KeyPath
    ) -> list[ConfigError]:
        """Remove the keys ``cls`` does not have from ``values``; return one error for each.

        Reported before structuring, so the known keys beside a typo are still checked.
        """
        known = {a.name for a in attrs.fields(cls)}
        listed = ", ".join(sorted(known))
        problems = []
        for key in [k for k in values if k not in known]:
            problems.append(
                self.fail(f"unknown key {key!r} (known: {listed})", (*where, key), key=True)
            )
            del values[key]
        return problems


@attrs.define
class NodeReader(FileSpot):
    """Reads the nodes of one pipeline file (stages looked up in ``project``).

    Also what :mod:`~looprunner.definitions.blocks` reads a parallel block's stages
    with: ``path``, ``doc``, ``shared_context``, ``fail``, ``structure`` and ``node``.
    """

    project: Path
    defaults: Defaults
    #: the pipeline's ``context:``, which a block's stages get as the other nodes do
    shared_context: str = ""

    def node(self, item: Any, where: convert.KeyPath, *, defaults: Any, earlier: list[str]) -> Node:
        """Read one of a parallel block's stages (the block's reader's ``defaults`` apply)."""
        return self.read(item, where, earlier=earlier)

    def read(self, item: Any, where: convert.KeyPath, *, earlier: list[str]) -> Node:
        """Return the node ``item`` describes, or raise every problem it has."""
        problems: list[ConfigError] = []
        values: Any = item
        #: limits the node turns off (``timeout: none``)
        disabled: list[str] = []
        if isinstance(item, Mapping):
            values, spellings = legacy.node(item, where)
            problems += legacy.report(spellings, doc=self.doc, path=self.path)
            problems += self.drop_unknown(values, _NodeFile, where)
            try:
                convert.split_commands(values, doc=self.doc, path=self.path, prefix=where)
            except ConfigError as exc:
                problems.append(exc)
                values.pop("command", None)
            disabled = convert.take_none(values, convert.NONE_KEYS)
        try:
            spec = self.structure(values, _NodeFile, where)
        except ConfigError as exc:
            raise _all([*problems, exc]) from None
        id_key = "id" if spec.id is not None else "name"
        node_id = spec.id or spec.name
        if node_id is None:
            raise _all([*problems, self.fail("a node needs an 'id'", where)])
        try:
            validate_node_id(node_id)
        except ConfigError as exc:
            problems.append(self.fail(exc.detail, (*where, id_key)))
        if node_id in earlier:
            problems.append(
                self.fail(f"duplicate node id {node_id!r}", (*where, id_key), code="LR020")
            )
        if "parallel" in values:
            if problems:
                raise _all(problems)
            return parallel_node(self, values, spec, node_id, where, defaults=self.defaults)
        stage: Stage | None = None
        try:
            stage = self.stage(spec, node_id, where)
        except ConfigError as exc:
            problems.append(exc)
        inputs = NodeInputs()
        try:
            inputs = self.inputs(values.get("inputs"), (*where, "inputs"))
        except ConfigError as exc:
            problems.append(exc)
        if spec.runs is not None and spec.runs < 1:
            problems.append(self.fail(f"must be at least 1, got {spec.runs}", (*where, "runs")))
        if stage is not None:
            try:
                stage = self.overrides(stage, spec, where)
                off: dict[str, Any] = dict.fromkeys(disabled)
                stage = attrs.evolve(stage, **off)
            except ConfigError as exc:
                problems.append(exc)
        if problems:
            raise _all(problems)
        assert stage is not None
        return Node(id=node_id, stage=stage, inputs=inputs, max_iterations=spec.runs)

    def stage(self, spec: _NodeFile, node_id: str, where: convert.KeyPath) -> Stage:
        """Load the stage the node names, or build its inline prompt's."""
        stage_name = spec.stage or spec.loop
        if spec.loop is not None and spec.stage is None:
            line, col = convert.locate(self.doc, (*where, "loop"), key=True)
            warnings.warn(
                LegacyPipelineWarning(
                    f"node {node_id!r} uses 'loop:', which is deprecated; use 'stage:'",
                    path=self.path,
                    line=line,
                    column=col,
                ),
                stacklevel=5,
            )
        if stage_name and spec.prompt:
            raise self.fail("give 'stage:' or an inline 'prompt:', not both", (*where, "prompt"))
        if stage_name:
            try:
                return catalog.load_stage(stage_name, project=self.project)
            except ConfigError as exc:
                if exc.path is not None:
                    raise
                key = "stage" if spec.stage is not None else "loop"
                raise self.fail(exc.detail, (*where, key), code=exc.code) from None
        if spec.prompt:
            return Stage(name=node_id, prompt=spec.prompt, source=self.path.parent.resolve())
        raise self.fail("a node needs 'stage:' (a stage name) or an inline 'prompt:'", where)

    def overrides(self, stage: Stage, spec: _NodeFile, where: convert.KeyPath) -> Stage:
        """Apply the node's own keys over the stage's (node > stage > pipeline defaults)."""
        changes: dict[str, Any] = {
            key: getattr(spec, key) for key in REPLACED if getattr(spec, key) is not None
        }
        if spec.options is not None:  # a shallow merge: the node's keys replace the stage's
            changes["options"] = {**stage.options, **spec.options}
        if spec.context is not None:
            changes["context"] = "\n\n".join(p for p in (stage.context, spec.context) if p)
        if spec.command is not None:
            changes["command"] = spec.command
        if spec.fixtures is not None:
            fixtures = spec.fixtures
            changes["fixtures"] = (
                fixtures if fixtures.is_absolute() else self.path.parent / fixtures
            ).resolve()
        if spec.termination is not None:
            prefix = (*where, "termination")
            merged = {**convert.unstructure(stage.termination), **spec.termination}
            termination = self.structure(
                {k: v for k, v in merged.items() if v is not None}, Termination, prefix
            )
            convert.check_termination(termination, path=self.path, doc=self.doc, prefix=prefix)
            changes["termination"] = termination
        limits: dict[str, Any] = {}
        for key, cls in (("budget", Budget), ("retry", Retry)):
            given = getattr(spec, key)
            if given is not None:
                merged = {**convert.unstructure(getattr(stage, key)), **given}
                limits[key] = self.structure(merged, cls, (*where, key))
        if limits:
            changes.update(limits)
            convert.check_limits(
                None,
                path=self.path,
                doc=self.doc,
                prefix=where,
                budget=limits.get("budget"),
                retry=limits.get("retry"),
            )
        for key in ("timeout", "idle_timeout"):
            if key in changes:
                convert.check_limits(
                    attrs.evolve(stage, **{key: changes[key]}),
                    path=self.path,
                    doc=self.doc,
                    prefix=where,
                )
        stage = attrs.evolve(stage, **changes)
        return attrs.evolve(
            stage,
            provider=stage.provider or self.defaults.provider,
            model=stage.model or self.defaults.model,
        )

    def inputs(self, value: Any, where: convert.KeyPath) -> NodeInputs:
        """Read a node's ``inputs:`` (every unknown key reported)."""
        if value is None:
            return NodeInputs()
        if not isinstance(value, Mapping):
            raise self.fail("expected a mapping (from, select, from_initial)", where)
        problems = [
            self.fail(
                f"unknown key {key!r} (known: {', '.join(sorted(INPUT_KEYS))})",
                (*where, key),
                key=True,
            )
            for key in value
            if key not in INPUT_KEYS
        ]
        from_parallel: tuple[ParallelInput, ...] = ()
        try:
            from_parallel = parallel_inputs(
                self, value.get("from_parallel"), (*where, "from_parallel")
            )
        except ConfigError as exc:
            problems.append(exc)
        sources = value.get("from")
        names: tuple[str, ...] = ()
        if isinstance(sources, str):
            names = (sources,)
        elif isinstance(sources, list) and all(isinstance(s, str) for s in sources):
            names = tuple(sources)
        elif sources is not None:
            problems.append(self.fail("expected a node id or a list of node ids", (*where, "from")))
        if problems:
            raise _all(problems)
        typed = {k: value[k] for k in ("select", "from_initial") if k in value}
        inputs = self.structure({**typed, "from_nodes": names}, NodeInputs, where)
        return attrs.evolve(inputs, from_parallel=from_parallel)


def _all(problems: list[ConfigError]) -> ConfigError:
    """One error reporting every problem (there is at least one)."""
    combined = combine_problems(problems)
    assert combined is not None
    return combined
