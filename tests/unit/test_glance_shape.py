"""The quick look's tables agree with the models and the built-ins they stand for.

``looprunner.glance`` reads ``state.json`` without building a model, so it carries its
own description of the file (``glance/shape.py``), its own list of the built-in
terminations that keep no queue and of the built-in backends it can ask: each is
checked here against the thing it describes, so neither can drift from the other.
"""

from __future__ import annotations

import json
import types
import typing
from typing import Any, Literal, get_args, get_origin

import attrs
import pytest

from looprunner.builtin.catalog import BuiltinRegistries
from looprunner.glance import shape
from looprunner.glance.backends import BUILTIN
from looprunner.glance.look import QUEUELESS_TERMINATIONS
from looprunner.models import RunError, RunState, Spent, StageState, TokenUsage
from looprunner.protocols import describe
from looprunner.store.records import state_from_json, unstructure

TABLES = [
    (RunState, shape.STATE),
    (StageState, shape.STAGE),
    (Spent, shape.SPENT),
    (TokenUsage, shape.USAGE),
    (RunError, shape.ERROR),
]


@pytest.mark.parametrize(("model", "table"), TABLES, ids=[m.__name__ for m, _ in TABLES])
def test_each_table_names_the_models_fields_in_their_order(model, table):
    assert list(table) == [field.name for field in attrs.fields(model)]


def _json_types(kind: Any) -> set[Any]:
    """The JSON values a field of type ``kind`` is written as (types, or literal words)."""
    origin = get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        return set().union(*(_json_types(option) for option in get_args(kind)))
    if origin is Literal:
        return set(get_args(kind))
    if kind is type(None):
        return {None}
    if attrs.has(kind):
        return {kind.__name__}
    if isinstance(kind, type) and issubclass(kind, str) and kind is not str:  # an enum
        return {member.value for member in kind}  # type: ignore[attr-defined]
    if origin is tuple:
        return {"tuple"}
    return {kind}


def _table_types(kind: Any) -> set[Any]:
    """The same, read from a table's entry."""
    if isinstance(kind, list):
        return {"tuple"}
    found: set[Any] = set()
    for choice in [kind] if isinstance(kind, dict) else kind:
        if choice is None or choice is type(None):
            found.add(None)
        elif isinstance(choice, dict):
            found.add(next(model.__name__ for model, table in TABLES if table is choice))
        else:
            found.add(choice)
    return found


@pytest.mark.parametrize(("model", "table"), TABLES, ids=[m.__name__ for m, _ in TABLES])
def test_each_field_takes_the_json_types_its_model_writes(model, table):
    hints = typing.get_type_hints(model)
    for name, kind in table.items():
        if model is RunState and name == "worktree":  # only None: a worktree is git's
            assert kind == (None,)
            continue
        assert _table_types(kind) == _json_types(hints[name]), name


def _a_state(**changes: Any) -> dict[str, Any]:
    stage = StageState(id="w", stage="w", usage=TokenUsage(input_tokens=3))
    state = RunState(
        session="s",
        type="loop",
        pipeline="w",
        status="running",  # type: ignore[arg-type]
        started_at="2026-11-30T00:00:00.000Z",
        updated_at="2026-11-30T00:00:00.000Z",
        backend="tmux",
        stages=(stage,),
        error=RunError(type="provider_exit", message="exit 3"),
        seq=4,
    )
    return {**unstructure(state), **changes}


def test_a_state_the_engine_writes_conforms():
    assert shape.conforms(_a_state(), shape.STATE)


@pytest.mark.parametrize(
    "changes",
    [
        {"iteration": "2"},  # a number as a string: the models read it, and print 2
        {"iteration": True},  # a bool is no int
        {"cost_usd": 1},  # an int where a float is written: the models print 1.0
        {"status": "paused"},  # no such status
        {"stages": []},  # no node to be on
        {"worktree": {"path": "/w"}},  # git describes a worktree: the models' way
        {"extra": 1},  # a field the models do not know
    ],
    ids=["string-number", "bool", "int-for-float", "status", "no-stages", "worktree", "extra"],
)
def test_a_state_the_models_would_print_otherwise_is_declined(changes):
    assert not shape.conforms(_a_state(**changes), shape.STATE)


def test_a_missing_field_is_declined():
    state = _a_state()
    del state["usage"]
    assert not shape.conforms(state, shape.STATE)


def test_a_conforming_state_reads_back_through_the_models_unchanged():
    state = _a_state()
    assert unstructure(state_from_json(json.dumps(state))) == state


def test_the_terminations_without_a_queue_are_the_builtins_that_count_none():
    registry = BuiltinRegistries().terminations
    counting = {name for name in registry.names() if hasattr(registry.get(name), "remaining")}
    assert set(registry.names()) - counting == QUEUELESS_TERMINATIONS


def test_the_backends_asked_are_the_builtins_and_name_sessions_as_they_do():
    registry = BuiltinRegistries().backends
    assert set(BUILTIN) == set(registry.names())
    for name, (_, names_one) in BUILTIN.items():
        assert names_one("auth") == describe(registry.get(name)(), "auth")
