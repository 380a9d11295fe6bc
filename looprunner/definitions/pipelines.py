"""Pipeline files: the loop-agents schema, read unchanged, resolved into a Pipeline.

A pipeline file names its nodes under ``nodes:`` (or the legacy ``stages:``, with a
deprecation warning); each node runs a stage by name (``stage:``, or legacy ``loop:``)
or an inline ``prompt:``, with optional overrides (provider, model, type, context, runs;
termination and options merged over the stage's own) and inputs from earlier nodes.
Each key's type is checked by the one converter (``_PipelineFile`` here, the nodes'
in :mod:`~looprunner.definitions.nodes`); this module checks what the types cannot say
(ids, inputs.from) and collects every problem of the file, so ``lint`` reports them
together and ``start`` names each. Names are
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
from typing import Any

import attrs

from looprunner import convert
from looprunner.convert import legacy
from looprunner.convert.project_config import read_backend_settings
from looprunner.definitions.blocks import check_parallel_sources
from looprunner.definitions.nodes import Defaults, FileSpot, NodeReader
from looprunner.errors import ConfigError, LegacyPipelineWarning, combine_problems
from looprunner.models import Budget, Node, Pipeline


@attrs.frozen
class _PipelineFile:
    """The top-level keys of a pipeline file, typed so the converter checks them."""

    name: str | None = None
    description: str | None = None
    context: str | None = None
    commands: dict[str, str] | None = None
    defaults: Defaults | None = None
    inputs: Any = None  # a path or a list of paths, globs or folders: checked below
    nodes: Any = None  # checked below, with a message about nodes
    stages: Any = None  # the legacy name of nodes
    budget: Budget | None = None  # the whole session's
    worktree: bool | None = None  # the session runs in a git worktree of its own
    backends: Any = None  # each backend's options: checked below, at their lines


convert.refuse_unknown_keys(_PipelineFile)


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
    """Load and resolve a pipeline file by path or name (stages looked up in ``project``).

    Raises
    ------
    ConfigError
        Reporting every problem of the file (a :class:`~looprunner.errors.ConfigProblems`
        when there are several), each at its file and line.
    """
    read = read_pipeline(name_or_path, project=project)
    if read.error is not None:
        raise read.error
    assert read.pipeline is not None
    return read.pipeline


@attrs.frozen
class PipelineRead:
    """A pipeline file as far as it could be read: what loaded, and every problem."""

    path: Path
    pipeline: Pipeline | None
    #: the nodes that loaded, problems or not elsewhere in the file
    nodes: tuple[Node, ...]
    error: ConfigError | None


def read_pipeline(name_or_path: str | Path, *, project: Path) -> PipelineRead:
    """Read a pipeline file, collecting every problem instead of stopping at the first.

    Raises only when the file cannot be found or parsed at all; everything else is in
    the returned :class:`PipelineRead`.
    """
    project = project.expanduser().resolve()
    path = find_pipeline(name_or_path, project)
    doc = convert.read_yaml(path)
    data = convert.expect_mapping(doc, path=path, what="a pipeline file")
    loader = _Loader(spot=FileSpot(path=path, doc=doc), project=project)
    pipeline = loader.pipeline(data)
    error = combine_problems(loader.problems)
    return PipelineRead(
        path=path,
        pipeline=pipeline if error is None else None,
        nodes=tuple(loader.nodes),
        error=error,
    )


@attrs.define
class _Loader:
    spot: FileSpot
    project: Path
    problems: list[ConfigError] = attrs.Factory(list)
    nodes: list[Node] = attrs.Factory(list)

    def pipeline(self, data: Mapping[str, Any]) -> Pipeline | None:
        spot = self.spot
        values, spellings = legacy.pipeline_file(data)
        self.problems += legacy.report(spellings, doc=spot.doc, path=spot.path)
        self.problems += spot.drop_unknown(values, _PipelineFile, ())
        try:
            spec = spot.structure(values, _PipelineFile, ())
        except ConfigError as exc:
            self.problems.append(exc)
            return None
        if spec.nodes is not None and spec.stages is not None:
            self.problems.append(
                spot.fail("give 'nodes:' or the legacy 'stages:', not both", ("stages",), key=True)
            )
            return None
        key = "nodes" if spec.nodes is not None else "stages"
        if spec.stages is not None:
            line, col = convert.locate(spot.doc, ("stages",), key=True)
            warnings.warn(
                LegacyPipelineWarning(
                    "'stages:' is deprecated, use 'nodes:'", path=spot.path, line=line, column=col
                ),
                stacklevel=4,
            )
        items = data.get(key)
        if not isinstance(items, list) or not items:
            self.problems.append(spot.fail(f"'{key}:' must be a non-empty list of nodes", (key,)))
            return None
        reader = NodeReader(
            path=spot.path,
            doc=spot.doc,
            project=self.project,
            defaults=spec.defaults or Defaults(),
            shared_context=spec.context or "",
        )
        # every id the file declares, loaded or not: a node whose stage is missing is
        # still a node later ones may name, so naming it is not a second problem
        declared: list[str | None] = []
        loaded: list[int] = []
        for index, item in enumerate(items):
            earlier = [d for d in declared if d is not None]
            ident = item.get("id", item.get("name")) if isinstance(item, Mapping) else None
            declared.append(ident if isinstance(ident, str) else None)
            try:
                self.nodes.append(reader.read(item, (key, index), earlier=earlier))
                loaded.append(index)
            except ConfigError as exc:
                self.problems.append(exc)
        for index, node in zip(loaded, self.nodes, strict=True):
            self.check_sources(node, index, declared, key)
        if len(loaded) == len(items):
            # which blocks a from_parallel can read is judged on the whole file only: with
            # a node missing, the blocks before a node (and its line) are not known
            try:
                check_parallel_sources(reader, self.nodes, key)
            except ConfigError as exc:
                self.problems.append(exc)
        initial = self.initial_inputs(spec.inputs)
        backends: dict[str, dict[str, str]] = {}
        if spec.backends is not None and isinstance(spot.doc, Mapping):
            try:
                backends, _ = read_backend_settings(spot.doc, spot.path)
            except ConfigError as exc:
                self.problems.append(exc)
        if spec.budget is not None:
            try:
                convert.check_limits(
                    None, path=spot.path, doc=spot.doc, prefix=(), budget=spec.budget
                )
            except ConfigError as exc:
                self.problems.append(exc)
        if self.problems:
            return None
        return self.resolve(spec, initial, backends)

    def check_sources(self, node: Node, index: int, declared: list[str | None], key: str) -> None:
        """Record an ``inputs.from`` that names an unknown node, or one that runs later."""
        for source in node.inputs.from_nodes:
            where = (key, index, "inputs", "from")
            if source not in declared:
                self.problems.append(
                    self.spot.fail(
                        f"inputs.from names unknown node {source!r}", where, code="LR021"
                    )
                )
            elif declared.index(source) >= index:
                self.problems.append(
                    self.spot.fail(
                        f"inputs.from names {source!r}, which runs later; "
                        "a node reads only earlier nodes",
                        where,
                        code="LR021",
                    )
                )

    def resolve(
        self,
        spec: _PipelineFile,
        initial: tuple[str, ...],
        backends: Mapping[str, Mapping[str, str]],
    ) -> Pipeline:
        """Build the pipeline from nodes that all loaded."""
        nodes = list(self.nodes)
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
            name=spec.name or self.spot.path.stem,
            description=spec.description or "",
            nodes=tuple(nodes),
            kind="pipeline",
            commands=dict(spec.commands or {}),
            inputs=initial,
            context=shared,
            source=self.spot.path.resolve(),
            budget=spec.budget or Budget(),
            worktree=bool(spec.worktree),
            backends=backends,
        )

    def initial_inputs(self, value: Any) -> tuple[str, ...]:
        """Expand the pipeline's own ``inputs:`` (paths, globs, folders) into files."""
        if value is None:
            return ()
        entries = [value] if isinstance(value, str) else value
        if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
            self.problems.append(
                self.spot.fail("expected a list of paths, globs or folders", ("inputs",))
            )
            return ()
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
