"""Parallel blocks in pipeline files: ``parallel: {providers, stages}`` and ``from_parallel``.

A block is read as loop-agents' SCHEMA.md writes it and becomes one node of the built-in
``parallel`` stage type, whose ``options`` hold the block resolved (each stage loaded
from its folder, node overrides applied) as plain data. ``inputs.from_parallel`` is
accepted in its three forms (a stage id; ``{stage, block, providers, select}``; a list
of either) on a node and on a block's provider, and checked against the blocks before
it, so a typo is reported at its line instead of reading nothing at run time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import attrs

from looprunner import convert
from looprunner.builtin.defaults import PARALLEL_STAGE_TYPE
from looprunner.convert import legacy
from looprunner.errors import ConfigError
from looprunner.models import Node, NodeInputs, ParallelInput, Stage, Termination
from looprunner.names import validate_node_id

T = TypeVar("T")

#: what a block's provider entry may say (``provider`` is looprunner's: run two
#: providers of one program, e.g. two models, under distinct names)
PROVIDER_KEYS = frozenset({"name", "model", "inputs", "provider"})
FROM_PARALLEL_KEYS = frozenset({"stage", "block", "providers", "select"})
#: what a block node may say besides ``parallel:``
BLOCK_NODE_KEYS = frozenset({"id", "name", "parallel", "description"})


class _Reading(Protocol):
    """What these functions need of the pipeline file's reader."""

    path: Path
    doc: Any
    shared_context: str

    def fail(
        self,
        message: str,
        keypath: convert.KeyPath,
        *,
        key: bool = False,
        code: str = "LR002",
    ) -> ConfigError: ...

    def structure(self, data: Any, cls: type[T], where: convert.KeyPath) -> T: ...

    def node(
        self, item: Any, where: convert.KeyPath, *, defaults: Any, earlier: list[str]
    ) -> Node: ...


def parallel_node(
    reader: _Reading,
    values: Mapping[str, Any],
    spec: Any,
    node_id: str,
    where: convert.KeyPath,
    *,
    defaults: Any,
) -> Node:
    """Return the node of type ``parallel`` a block describes."""
    for key in values:
        if key not in BLOCK_NODE_KEYS:
            raise reader.fail(
                f"a parallel block takes only {', '.join(sorted(BLOCK_NODE_KEYS))}; "
                f"put {key!r} on the block's stages",
                (*where, key),
                key=True,
            )
    block = values["parallel"]
    at = (*where, "parallel")
    if not isinstance(block, Mapping):
        raise reader.fail("expected a mapping with 'providers' and 'stages'", at)
    for key in block:
        if key in legacy.BLOCK_REFUSED:  # loop-agents' block keys: say why, not just "unknown"
            raise reader.fail(
                f"'{key}' {legacy.BLOCK_REFUSED[key]}", (*at, key), key=True, code=legacy.REFUSED
            )
        if key not in ("providers", "stages"):
            raise reader.fail(
                f"unknown key {key!r} (known: providers, stages)", (*at, key), key=True
            )
    providers = _providers(reader, block.get("providers"), (*at, "providers"))
    items = block.get("stages")
    if not isinstance(items, list) or not items:
        raise reader.fail("'stages:' must be a non-empty list of nodes", (*at, "stages"))
    inner: list[Node] = []
    for index, item in enumerate(items):
        here = (*at, "stages", index)
        if isinstance(item, Mapping) and "parallel" in item:
            raise reader.fail(
                "a parallel block cannot hold another one", (*here, "parallel"), key=True
            )
        node = reader.node(item, here, defaults=defaults, earlier=[n.id for n in inner])
        if reader.shared_context:
            context = "\n\n".join(p for p in (reader.shared_context, node.stage.context) if p)
            node = attrs.evolve(node, stage=attrs.evolve(node.stage, context=context))
        inner.append(node)
    stage = Stage(
        name=node_id,
        type=PARALLEL_STAGE_TYPE,
        description=spec.description or "",
        termination=Termination(iterations=1),  # the whole block is one iteration
        options={
            "providers": providers,
            "stages": [convert.unstructure(node) for node in inner],
        },
        source=reader.path.parent.resolve(),
    )
    return Node(id=node_id, stage=stage, inputs=NodeInputs(from_initial=False))


def _providers(reader: _Reading, value: Any, at: convert.KeyPath) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        raise reader.fail("'providers:' must be a non-empty list of provider names", at)
    found: list[dict[str, Any]] = []
    for index, entry in enumerate(value):
        here = (*at, index)
        if isinstance(entry, str):
            entry = {"name": entry}
        if not isinstance(entry, Mapping):
            raise reader.fail("expected a provider name or {name, model, inputs}", here)
        for key in entry:
            if key not in PROVIDER_KEYS:
                raise reader.fail(
                    f"unknown key {key!r} (known: {', '.join(sorted(PROVIDER_KEYS))})",
                    (*here, key),
                    key=True,
                )
        name = entry.get("name")
        if not isinstance(name, str):
            raise reader.fail("a provider needs a 'name'", here)
        try:
            validate_node_id(name, where="name")
        except ConfigError as exc:
            raise reader.fail(exc.detail, (*here, "name")) from None
        if any(p["name"] == name for p in found):
            raise reader.fail(
                f"provider {name!r} is listed twice; give each a distinct 'name' "
                "(and 'provider:' for the program)",
                (*here, "name"),
            )
        for key in ("model", "provider"):
            if key in entry and not isinstance(entry[key], str):
                raise reader.fail("expected a string", (*here, key))
        specs: tuple[ParallelInput, ...] = ()
        inputs = entry.get("inputs")
        if inputs is not None:
            if not isinstance(inputs, Mapping) or set(inputs) - {"from_parallel"}:
                raise reader.fail(
                    "a provider's inputs take only 'from_parallel'", (*here, "inputs")
                )
            specs = parallel_inputs(
                reader, inputs.get("from_parallel"), (*here, "inputs", "from_parallel")
            )
        found.append(
            {
                "name": name,
                "provider": entry.get("provider") or name,
                "model": entry.get("model"),
                "from_parallel": [convert.unstructure(s) for s in specs],
            }
        )
    return found


def parallel_inputs(reader: _Reading, value: Any, at: convert.KeyPath) -> tuple[ParallelInput, ...]:
    """Read ``from_parallel`` in any of its three forms."""
    if value is None:
        return ()
    entries = value if isinstance(value, list) else [value]
    specs = []
    for index, entry in enumerate(entries):
        here = (*at, index) if isinstance(value, list) else at
        if isinstance(entry, str):
            entry = {"stage": entry}
        if not isinstance(entry, Mapping):
            raise reader.fail(
                "expected a stage id, {stage, block, providers, select} or a list of them",
                here,
            )
        for key in entry:
            if key not in FROM_PARALLEL_KEYS:
                raise reader.fail(
                    f"unknown key {key!r} (known: {', '.join(sorted(FROM_PARALLEL_KEYS))})",
                    (*here, key),
                    key=True,
                )
        if not isinstance(entry.get("stage"), str):
            raise reader.fail("needs 'stage': the id of a stage inside a parallel block", here)
        providers = entry.get("providers")
        if isinstance(providers, str):
            providers = [providers]
        data = {**entry, "providers": providers}
        specs.append(reader.structure(data, ParallelInput, here))
    return tuple(specs)


def _block_stages(node: Node) -> tuple[set[str], set[str]] | None:
    """Return a block node's stage ids and provider names, or None for another node."""
    if node.stage.type != PARALLEL_STAGE_TYPE:
        return None
    stages = {str(item.get("id")) for item in node.stage.options.get("stages", ())}
    providers = {str(p.get("name")) for p in node.stage.options.get("providers", ())}
    return stages, providers


def check_parallel_sources(reader: _Reading, nodes: Sequence[Node], key: str) -> None:
    """Refuse a ``from_parallel`` that no earlier block can answer (at its line)."""
    for index, node in enumerate(nodes):
        earlier = [(n.id, b) for n in nodes[:index] if (b := _block_stages(n)) is not None]
        places: list[tuple[convert.KeyPath, tuple[ParallelInput, ...]]] = [
            ((key, index, "inputs", "from_parallel"), node.inputs.from_parallel)
        ]
        block = _block_stages(node)
        if block is not None:
            for p_index, provider in enumerate(node.stage.options.get("providers", ())):
                specs = tuple(
                    convert.structure(s, ParallelInput) for s in provider.get("from_parallel", ())
                )
                at: convert.KeyPath = (
                    key,
                    index,
                    "parallel",
                    "providers",
                    p_index,
                    "inputs",
                    "from_parallel",
                )
                places.append((at, specs))
        for at, specs in places:
            for spec in specs:
                _check_source(reader, spec, earlier, at)


def _check_source(
    reader: _Reading,
    spec: ParallelInput,
    earlier: list[tuple[str, tuple[set[str], set[str]]]],
    at: convert.KeyPath,
) -> None:
    if not earlier:
        raise reader.fail(
            f"from_parallel names stage {spec.stage!r}, but no parallel block runs before "
            "this node",
            at,
            code="LR021",
        )
    candidates = [(bid, b) for bid, b in earlier if spec.block in (None, bid)]
    if spec.block is not None and not candidates:
        known = ", ".join(bid for bid, _ in earlier)
        raise reader.fail(
            f"from_parallel names block {spec.block!r}, which is not an earlier block "
            f"(earlier blocks: {known})",
            at,
            code="LR021",
        )
    holding = [(bid, b) for bid, b in candidates if spec.stage in b[0]]
    if not holding:
        known = ", ".join(sorted(set().union(*(b[0] for _, b in candidates))))
        raise reader.fail(
            f"from_parallel names stage {spec.stage!r}, which no earlier parallel block "
            f"has (their stages: {known})",
            at,
            code="LR021",
        )
    providers = holding[-1][1][1]
    for name in spec.providers or ():
        if name not in providers:
            raise reader.fail(
                f"from_parallel names provider {name!r}, which block {holding[-1][0]!r} "
                f"does not run (it runs {', '.join(sorted(providers))})",
                at,
                code="LR021",
            )


def rename_block_sources(node: Node, renames: Mapping[str, str]) -> Node:
    """Return a block node whose providers' ``from_parallel`` follow ``renames`` of blocks.

    For ``--runs``: run N's blocks are ``ID-runN``, and a provider that names a block
    reads the block of its own run (another node is returned as it is).
    """
    if node.stage.type != PARALLEL_STAGE_TYPE:
        return node
    providers = [
        {
            **provider,
            "from_parallel": [
                {**spec, "block": renames.get(spec["block"], spec["block"])}
                if spec.get("block") is not None
                else spec
                for spec in provider.get("from_parallel", ())
            ],
        }
        for provider in node.stage.options.get("providers", ())
    ]
    options = {**node.stage.options, "providers": providers}
    return attrs.evolve(node, stage=attrs.evolve(node.stage, options=options))
