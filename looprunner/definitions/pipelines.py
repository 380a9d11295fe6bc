"""Pipeline files: the loop-agents schema, read unchanged, resolved into a Pipeline.

A pipeline file names its nodes under ``nodes:`` (or the legacy ``stages:``, with a
deprecation warning); each node runs a stage by name (``stage:``, or legacy ``loop:``)
or an inline ``prompt:``, with optional overrides (provider, model, type, context, runs;
termination and options merged over the stage's own) and inputs from earlier nodes.
Each key's type is checked by the one converter (``_PipelineFile``, ``_NodeFile``); this
module checks what the types cannot say (ids, stage names, inputs.from). Names are
looked up in ``.looprunner/pipelines/``, ``.claude/pipelines/`` and
``scripts/pipelines/``; a path is read as it is.

Resolution happens once, at start: the resolved pipeline (prompts included) is written
to the run directory, so a resume never depends on a file that changed since.
"""

from __future__ import annotations

import glob
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import attrs

from looprunner import convert
from looprunner.definitions import catalog
from looprunner.definitions.blocks import check_parallel_sources, parallel_inputs, parallel_node
from looprunner.errors import ConfigError
from looprunner.models import Node, NodeInputs, Pipeline, Stage, Termination
from looprunner.names import validate_node_id

T = TypeVar("T")


@attrs.frozen
class _Defaults:
    """``defaults:``: a provider and model for nodes whose stage sets none."""

    provider: str | None = None
    model: str | None = None


@attrs.frozen
class _PipelineFile:
    """The top-level keys of a pipeline file, typed so the converter checks them."""

    name: str | None = None
    description: str | None = None
    context: str | None = None
    commands: dict[str, str] | None = None
    defaults: _Defaults | None = None
    inputs: Any = None  # a path or a list of paths, globs or folders: checked below
    nodes: Any = None  # checked below, with a message about nodes
    stages: Any = None  # the legacy name of nodes


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
    runs: int | None = None
    delay: float | None = None
    timeout: float | None = None
    mock_delay: float | None = None
    fixtures: Path | None = None
    command: tuple[str, ...] | None = None
    type: str | None = None
    options: Mapping[str, Any] | None = None  # merged over the stage's
    termination: Mapping[str, Any] | None = None  # merged over the stage's
    inputs: Any = None  # ``from`` is a Python keyword: checked below
    parallel: Any = None  # refused below: not supported yet


convert.refuse_unknown_keys(_Defaults, _PipelineFile, _NodeFile)

INPUT_KEYS = frozenset({"from", "select", "from_initial", "from_parallel"})


class LegacyPipelineWarning(DeprecationWarning):
    """A pipeline file uses a key loop-agents renamed (``stages:``, ``loop:``)."""


def pipeline_roots(project: Path) -> list[tuple[str, Path]]:
    """Return the folders searched for pipeline files, in order, with a label each."""
    return [
        ("project", project / ".looprunner" / "pipelines"),
        ("claude", project / ".claude" / "pipelines"),
        ("loop-agents", project / "scripts" / "pipelines"),
    ]


@attrs.frozen
class PipelineRef:
    """A pipeline file found on disk."""

    name: str
    path: Path
    origin: str


def list_pipelines(project: Path) -> list[PipelineRef]:
    """Every pipeline file, the first of each name, in search order."""
    seen: dict[str, PipelineRef] = {}
    for origin, root in pipeline_roots(project):
        if not root.is_dir():
            continue
        for path in sorted([*root.glob("*.yaml"), *root.glob("*.yml")]):
            seen.setdefault(path.stem, PipelineRef(path.stem, path, origin))
    return sorted(seen.values(), key=lambda ref: ref.name)


def find_pipeline(name_or_path: str | Path, project: Path) -> Path:
    """Return the file a pipeline name or path refers to."""
    text = str(name_or_path)
    candidate = Path(text).expanduser()
    if not candidate.is_absolute():
        candidate = project / candidate
    if "/" in text or text.endswith((".yaml", ".yml")):
        if candidate.is_file():
            return candidate
        raise ConfigError(f"pipeline file {candidate} not found")
    for _, root in pipeline_roots(project):
        for suffix in (".yaml", ".yml"):
            if (root / f"{text}{suffix}").is_file():
                return root / f"{text}{suffix}"
    known = [ref.name for ref in list_pipelines(project)]
    hint = f"; available: {', '.join(known)}" if known else "; no pipelines found"
    raise ConfigError(f"unknown pipeline {text!r}{hint}")


def load_pipeline(name_or_path: str | Path, *, project: Path) -> Pipeline:
    """Load and resolve a pipeline file by path or name (stages looked up in ``project``)."""
    project = project.expanduser().resolve()
    path = find_pipeline(name_or_path, project)
    doc = convert.read_yaml(path)
    data = convert.expect_mapping(doc, path=path, what="a pipeline file")
    loader = _Loader(path=path, doc=doc, project=project)
    return loader.pipeline(data)


@attrs.define
class _Loader:
    path: Path
    doc: Any
    project: Path
    #: the pipeline's ``context:``, which a block's stages get as the other nodes do
    shared_context: str = ""

    def fail(
        self,
        message: str,
        keypath: convert.KeyPath,
        *,
        key: bool = False,
        code: str = "LR002",
    ) -> ConfigError:
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
        return convert.structure_from(data, cls, path=self.path, doc=self.doc, prefix=where)

    def pipeline(self, data: Mapping[str, Any]) -> Pipeline:
        spec = self.structure(data, _PipelineFile, ())
        if spec.nodes is not None and spec.stages is not None:
            raise self.fail(
                "give 'nodes:' or the legacy 'stages:', not both", ("stages",), key=True
            )
        key = "nodes" if spec.nodes is not None else "stages"
        if spec.stages is not None:
            warnings.warn(
                f"{self.path}: 'stages:' is deprecated, use 'nodes:'",
                LegacyPipelineWarning,
                stacklevel=3,
            )
        items = data.get(key)
        if not isinstance(items, list) or not items:
            raise self.fail(f"'{key}:' must be a non-empty list of nodes", (key,))
        defaults = spec.defaults or _Defaults()
        self.shared_context = spec.context or ""
        nodes: list[Node] = []
        for index, item in enumerate(items):
            nodes.append(
                self.node(item, (key, index), defaults=defaults, earlier=[n.id for n in nodes])
            )
        check_parallel_sources(self, nodes, key)
        ids = [node.id for node in nodes]
        for index, node in enumerate(nodes):
            for source in node.inputs.from_nodes:
                if source not in ids:
                    raise self.fail(
                        f"inputs.from names unknown node {source!r}",
                        (key, index, "inputs", "from"),
                        code="LR021",
                    )
                if ids.index(source) >= index:
                    raise self.fail(
                        f"inputs.from names {source!r}, which runs later; "
                        "a node reads only earlier nodes",
                        (key, index, "inputs", "from"),
                        code="LR021",
                    )
        shared = spec.context or ""
        if shared:  # the pipeline's context comes first in every node's ${CONTEXT}
            nodes = [
                attrs.evolve(
                    node,
                    stage=attrs.evolve(
                        node.stage,
                        context="\n\n".join(p for p in (shared, node.stage.context) if p),
                    ),
                )
                for node in nodes
            ]
        return Pipeline(
            name=spec.name or self.path.stem,
            description=spec.description or "",
            nodes=tuple(nodes),
            kind="pipeline",
            commands=dict(spec.commands or {}),
            inputs=self.initial_inputs(spec.inputs),
            context=shared,
            source=self.path.resolve(),
        )

    def initial_inputs(self, value: Any) -> tuple[str, ...]:
        """Expand the pipeline's own ``inputs:`` (paths, globs, folders) into files."""
        if value is None:
            return ()
        entries = [value] if isinstance(value, str) else value
        if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
            raise self.fail("expected a list of paths, globs or folders", ("inputs",))
        files: list[str] = []
        for entry in entries:
            pattern = entry if Path(entry).is_absolute() else str(self.project / entry)
            # Path.glob takes no absolute patterns, and these may be absolute
            matches = sorted(glob.glob(pattern, recursive=True)) or [pattern]  # noqa: PTH207
            for match in matches:
                path = Path(match)
                if path.is_dir():
                    files.extend(str(p) for p in sorted(path.rglob("*")) if p.is_file())
                else:
                    files.append(str(path))  # a missing file is the agent's to report
        return tuple(files)

    def node(
        self,
        item: Any,
        where: convert.KeyPath,
        *,
        defaults: _Defaults,
        earlier: list[str],
    ) -> Node:
        values = dict(item) if isinstance(item, Mapping) else item
        if isinstance(values, dict):
            convert.split_commands(values, doc=self.doc, path=self.path, prefix=where)
        spec = self.structure(values, _NodeFile, where)
        id_key = "id" if spec.id is not None else "name"
        node_id = spec.id or spec.name
        if node_id is None:
            raise self.fail("a node needs an 'id'", where)
        try:
            validate_node_id(node_id)
        except ConfigError as exc:
            raise self.fail(exc.detail, (*where, id_key)) from None
        if node_id in earlier:
            raise self.fail(f"duplicate node id {node_id!r}", (*where, "id"), code="LR020")
        if "parallel" in values:
            return parallel_node(self, values, spec, node_id, where, defaults=defaults)
        stage_name = spec.stage or spec.loop
        if spec.loop is not None and spec.stage is None:
            warnings.warn(
                f"{self.path}: node {node_id!r} uses 'loop:', which is deprecated; use 'stage:'",
                LegacyPipelineWarning,
                stacklevel=4,
            )
        if stage_name and spec.prompt:
            raise self.fail("give 'stage:' or an inline 'prompt:', not both", (*where, "prompt"))
        if stage_name:
            try:
                stage = catalog.load_stage(stage_name, project=self.project)
            except ConfigError as exc:
                if exc.path is not None:
                    raise
                key = "stage" if spec.stage is not None else "loop"
                raise self.fail(exc.detail, (*where, key), code=exc.code) from None
        elif spec.prompt:
            stage = Stage(name=node_id, prompt=spec.prompt, source=self.path.parent.resolve())
        else:
            raise self.fail("a node needs 'stage:' (a stage name) or an inline 'prompt:'", where)
        stage = self.overrides(stage, spec, where, defaults=defaults)
        if spec.runs is not None and spec.runs < 1:
            raise self.fail(f"must be at least 1, got {spec.runs}", (*where, "runs"))
        return Node(
            id=node_id,
            stage=stage,
            inputs=self.inputs(item.get("inputs"), (*where, "inputs")),
            max_iterations=spec.runs,
        )

    def overrides(
        self,
        stage: Stage,
        spec: _NodeFile,
        where: convert.KeyPath,
        *,
        defaults: _Defaults,
    ) -> Stage:
        """Apply the node's own keys over the stage's (node > stage > pipeline defaults)."""
        replaced = ("provider", "model", "description", "delay", "timeout", "mock_delay", "type")
        changes: dict[str, Any] = {
            key: getattr(spec, key) for key in replaced if getattr(spec, key) is not None
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
        stage = attrs.evolve(stage, **changes)
        return attrs.evolve(
            stage,
            provider=stage.provider or defaults.provider,
            model=stage.model or defaults.model,
        )

    def inputs(self, value: Any, where: convert.KeyPath) -> NodeInputs:
        if value is None:
            return NodeInputs()
        if not isinstance(value, Mapping):
            raise self.fail("expected a mapping (from, select, from_initial)", where)
        for key in value:
            if key not in INPUT_KEYS:
                raise self.fail(
                    f"unknown key {key!r} (known: {', '.join(sorted(INPUT_KEYS))})",
                    (*where, key),
                    key=True,
                )
        from_parallel = parallel_inputs(self, value.get("from_parallel"), (*where, "from_parallel"))
        sources = value.get("from")
        if sources is None:
            names: tuple[str, ...] = ()
        elif isinstance(sources, str):
            names = (sources,)
        elif isinstance(sources, list) and all(isinstance(s, str) for s in sources):
            names = tuple(sources)
        else:
            raise self.fail("expected a node id or a list of node ids", (*where, "from"))
        typed = {k: value[k] for k in ("select", "from_initial") if k in value}
        inputs = self.structure({**typed, "from_nodes": names}, NodeInputs, where)
        return attrs.evolve(inputs, from_parallel=from_parallel)
