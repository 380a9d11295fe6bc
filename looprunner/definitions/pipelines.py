"""Pipeline files: the loop-agents schema, read unchanged, resolved into a Pipeline.

A pipeline file names its nodes under ``nodes:`` (or the legacy ``stages:``, with a
deprecation warning); each node runs a stage by name (``stage:``, or legacy ``loop:``)
or an inline ``prompt:``, with optional overrides (provider, model, context, runs,
termination merged over the stage's own) and inputs from earlier nodes. Names are
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
from looprunner.definitions import catalog
from looprunner.errors import ConfigError
from looprunner.models import Node, NodeInputs, Pipeline, Stage, Termination
from looprunner.names import validate_node_id

PIPELINE_KEYS = frozenset(
    {"name", "description", "commands", "inputs", "defaults", "nodes", "stages", "context"}
)
NODE_KEYS = frozenset(
    {
        "id",
        "name",
        "stage",
        "loop",
        "prompt",
        "description",
        "provider",
        "model",
        "context",
        "runs",
        "termination",
        "inputs",
        "parallel",
        "delay",
        "timeout",
        "mock_delay",
        "fixtures",
        "command",
    }
)
INPUT_KEYS = frozenset({"from", "select", "from_initial", "from_parallel"})
DEFAULT_KEYS = frozenset({"provider", "model"})


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

    def fail(
        self,
        message: str,
        keypath: tuple[str | int, ...],
        *,
        key: bool = False,
        code: str = "LR002",
    ) -> ConfigError:
        line, col = convert.locate(self.doc, keypath, key=key)
        field = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in keypath).replace(
            ".[", "["
        )
        return ConfigError(
            message, path=self.path, line=line, column=col, field=field or None, code=code
        )

    def check_keys(
        self, data: Mapping[str, Any], allowed: frozenset[str], where: tuple[str | int, ...]
    ) -> None:
        for key in data:
            if key not in allowed:
                raise self.fail(
                    f"unknown key {key!r} (known: {', '.join(sorted(allowed))})",
                    (*where, key),
                    key=True,
                )

    def string(self, data: Mapping[str, Any], key: str, where: tuple[str | int, ...]) -> str | None:
        value = data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.fail(f"expected a string, got {type(value).__name__}", (*where, key))
        return str(value)

    def pipeline(self, data: Mapping[str, Any]) -> Pipeline:
        self.check_keys(data, PIPELINE_KEYS, ())
        if "nodes" in data and "stages" in data:
            raise self.fail(
                "give 'nodes:' or the legacy 'stages:', not both", ("stages",), key=True
            )
        key = "nodes" if "nodes" in data else "stages"
        if key == "stages" and "stages" in data:
            warnings.warn(
                f"{self.path}: 'stages:' is deprecated, use 'nodes:'",
                LegacyPipelineWarning,
                stacklevel=3,
            )
        items = data.get(key)
        if not isinstance(items, list) or not items:
            raise self.fail(f"'{key}:' must be a non-empty list of nodes", (key,))
        defaults = data.get("defaults") or {}
        if not isinstance(defaults, Mapping):
            raise self.fail("expected a mapping", ("defaults",))
        self.check_keys(defaults, DEFAULT_KEYS, ("defaults",))
        commands = data.get("commands") or {}
        if not isinstance(commands, Mapping) or not all(
            isinstance(v, str) for v in commands.values()
        ):
            raise self.fail("expected a mapping of command names to command strings", ("commands",))
        nodes: list[Node] = []
        for index, item in enumerate(items):
            nodes.append(
                self.node(item, (key, index), defaults=defaults, earlier=[n.id for n in nodes])
            )
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
        shared = self.string(data, "context", ()) or ""
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
            name=self.string(data, "name", ()) or self.path.stem,
            description=self.string(data, "description", ()) or "",
            nodes=tuple(nodes),
            kind="pipeline",
            commands={str(k): str(v) for k, v in commands.items()},
            inputs=self.initial_inputs(data.get("inputs")),
            context=self.string(data, "context", ()) or "",
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
        where: tuple[str | int, ...],
        *,
        defaults: Mapping[str, Any],
        earlier: list[str],
    ) -> Node:
        if not isinstance(item, Mapping):
            raise self.fail("each node must be a mapping", where)
        self.check_keys(item, NODE_KEYS, where)
        node_id = self.string(item, "id", where) or self.string(item, "name", where)
        if node_id is None:
            raise self.fail("a node needs an 'id'", where)
        try:
            validate_node_id(node_id)
        except ConfigError as exc:
            raise self.fail(exc.detail, (*where, "id" if "id" in item else "name")) from None
        if node_id in earlier:
            raise self.fail(f"duplicate node id {node_id!r}", (*where, "id"), code="LR020")
        if "parallel" in item:
            raise self.fail(
                "parallel blocks are not supported yet; run the providers as separate nodes",
                (*where, "parallel"),
                key=True,
                code="LR022",
            )
        stage_name = self.string(item, "stage", where) or self.string(item, "loop", where)
        if "loop" in item and "stage" not in item:
            warnings.warn(
                f"{self.path}: node {node_id!r} uses 'loop:', which is deprecated; use 'stage:'",
                LegacyPipelineWarning,
                stacklevel=4,
            )
        prompt = self.string(item, "prompt", where)
        if stage_name and prompt:
            raise self.fail("give 'stage:' or an inline 'prompt:', not both", (*where, "prompt"))
        if stage_name:
            try:
                stage = catalog.load_stage(stage_name, project=self.project)
            except ConfigError as exc:
                if exc.path is not None:
                    raise
                key = "stage" if "stage" in item else "loop"
                raise self.fail(exc.detail, (*where, key), code=exc.code) from None
        elif prompt:
            stage = Stage(name=node_id, prompt=prompt, source=self.path.parent.resolve())
        else:
            raise self.fail("a node needs 'stage:' (a stage name) or an inline 'prompt:'", where)
        stage = self.overrides(stage, item, where, defaults=defaults)
        runs = item.get("runs")
        if runs is not None and (isinstance(runs, bool) or not isinstance(runs, int) or runs < 1):
            raise self.fail(f"expected a positive integer, got {runs!r}", (*where, "runs"))
        return Node(
            id=node_id,
            stage=stage,
            inputs=self.inputs(item.get("inputs"), (*where, "inputs")),
            max_iterations=runs,
        )

    def overrides(
        self,
        stage: Stage,
        item: Mapping[str, Any],
        where: tuple[str | int, ...],
        *,
        defaults: Mapping[str, Any],
    ) -> Stage:
        """Apply the node's own keys over the stage's (node > stage > pipeline defaults)."""
        changes: dict[str, Any] = {}
        for key in ("provider", "model", "description"):
            value = self.string(item, key, where)
            if value is not None:
                changes[key] = value
        if "context" in item:
            changes["context"] = "\n\n".join(
                p for p in (stage.context, self.string(item, "context", where)) if p
            )
        for key in ("delay", "timeout", "mock_delay"):
            if key in item:
                value = item[key]
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise self.fail(f"expected a number, got {value!r}", (*where, key))
                changes[key] = float(value)
        if "command" in item:
            try:
                argv = convert.split_command(item["command"])
            except ValueError as exc:
                raise self.fail(str(exc), (*where, "command")) from None
            changes["command"] = convert.structure_from(
                argv, tuple[str, ...], path=self.path, doc=self.doc, prefix=(*where, "command")
            )
        if "fixtures" in item:
            fixtures = Path(str(item["fixtures"]))
            changes["fixtures"] = (
                fixtures if fixtures.is_absolute() else self.path.parent / fixtures
            ).resolve()
        if "termination" in item:
            overrides = item["termination"]
            if not isinstance(overrides, Mapping):
                raise self.fail("expected a mapping", (*where, "termination"))
            merged = {**convert.unstructure(stage.termination), **dict(overrides)}
            if "queue_command" in overrides:
                try:
                    merged["queue_command"] = convert.split_command(overrides["queue_command"])
                except ValueError as exc:
                    raise self.fail(str(exc), (*where, "termination", "queue_command")) from None
            termination = convert.structure_from(
                {k: v for k, v in merged.items() if v is not None},
                Termination,
                path=self.path,
                doc=self.doc,
                prefix=(*where, "termination"),
            )
            convert.check_termination(
                termination, path=self.path, doc=self.doc, prefix=(*where, "termination")
            )
            changes["termination"] = termination
        stage = attrs.evolve(stage, **changes)
        return attrs.evolve(
            stage,
            provider=stage.provider or defaults.get("provider"),
            model=stage.model or defaults.get("model"),
        )

    def inputs(self, value: Any, where: tuple[str | int, ...]) -> NodeInputs:
        if value is None:
            return NodeInputs()
        if not isinstance(value, Mapping):
            raise self.fail("expected a mapping (from, select, from_initial)", where)
        self.check_keys(value, INPUT_KEYS, where)
        if "from_parallel" in value:
            raise self.fail(
                "inputs.from_parallel needs parallel blocks, which are not supported yet",
                (*where, "from_parallel"),
                key=True,
                code="LR022",
            )
        sources = value.get("from")
        if sources is None:
            names: tuple[str, ...] = ()
        elif isinstance(sources, str):
            names = (sources,)
        elif isinstance(sources, list) and all(isinstance(s, str) for s in sources):
            names = tuple(sources)
        else:
            raise self.fail("expected a node id or a list of node ids", (*where, "from"))
        select = value.get("select", "latest")
        if select not in ("latest", "all"):
            raise self.fail(f"expected 'latest' or 'all', got {select!r}", (*where, "select"))
        from_initial = value.get("from_initial", True)
        if not isinstance(from_initial, bool):
            raise self.fail(
                f"expected true or false, got {from_initial!r}", (*where, "from_initial")
            )
        return NodeInputs(from_initial=from_initial, from_nodes=names, select=select)
