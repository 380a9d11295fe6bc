"""The light reader of state.json and events reads every record as the converter does."""

from __future__ import annotations

import json

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from looprunner import convert
from looprunner.models import (
    Event,
    LockInfo,
    Resources,
    RunError,
    RunState,
    RunStatus,
    SessionStatus,
    Spent,
    StageState,
    TokenUsage,
)
from looprunner.models.state import Health
from looprunner.store import records

names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
counts = st.integers(min_value=0, max_value=10**9)
money = st.none() | st.floats(min_value=0, max_value=1e6, allow_nan=False)
usage = st.none() | st.builds(TokenUsage, counts, counts, counts, counts)
spent = st.builds(Spent, money, st.none() | counts, st.floats(0, 1e6, allow_nan=False), counts)
stages = st.builds(
    StageState,
    id=st.sampled_from(["plan", "work", "x-1"]),
    stage=names,
    status=st.sampled_from(RunStatus),
    iterations_completed=counts,
    max_iterations=counts,
    termination_reason=st.none() | names,
    spent=spent,
    usage=usage,
    cost_usd=money,
    agent_session_id=st.none() | names,
)
states = st.builds(
    RunState,
    session=names,
    type=st.sampled_from(["loop", "pipeline"]),
    pipeline=names,
    status=st.sampled_from(RunStatus),
    started_at=names,
    updated_at=names,
    backend=names,
    stages=st.lists(stages, max_size=3).map(tuple),
    current_stage=counts,
    iteration=counts,
    error=st.none() | st.builds(RunError, names, names, st.none() | counts),
    pid=st.none() | counts,
    spent=spent,
    usage=usage,
    cost_usd=money,
    seq=st.none() | counts,
)


@given(states)
def test_a_state_reads_back_alike(state: RunState) -> None:
    text = convert.state_to_json(state)
    assert records.state_from_json(text) == convert.state_from_json(text) == state


@given(states)
def test_plain_data_is_the_converters(state: RunState) -> None:
    assert records.unstructure(state) == convert.unstructure(state)


def test_an_event_reads_back_alike() -> None:
    event = Event(
        ts="2026-11-30T00:00:00.000Z",
        seq=3,
        type="iteration_complete",
        session="s",
        stage="work",
        iteration=2,
        data={"decision": "continue", "usage": {"input_tokens": 4}},
        state={"stages": {"0": {"iterations_completed": 2}}},
    )
    raw = json.loads(convert.event_to_json(event))
    assert records.event_from_dict(raw) == convert.event_from_dict(raw) == event
    assert records.event_to_dict(event) == raw


def test_a_status_answers_alike() -> None:
    state = RunState("s", "loop", "p", RunStatus.RUNNING, "a", "b", "tmux", ())
    status = SessionStatus(
        session="s",
        health=Health.RUNNING,
        resources=Resources(lock=True, state=True, tmux=True),
        state=state,
        lock=LockInfo(present=True, held=True, pid=4),
    )
    assert records.unstructure(status) == convert.unstructure(status)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("iteration", True),  # a bool is never a count
        ("iteration", "3"),
        ("iteration", 2.5),
        ("status", "asleep"),
        ("type", "graph"),
        ("session", False),
        ("stages", {"0": {}}),
        ("error", {"type": "x"}),  # its message is missing
    ],
)
def test_what_the_converter_refuses_is_refused(field: str, value: object) -> None:
    good = convert.unstructure(RunState("s", "loop", "p", RunStatus.RUNNING, "a", "b", "t", ()))
    text = json.dumps({**good, field: value})
    with pytest.raises(ValueError, match="malformed state"):
        convert.state_from_json(text)
    with pytest.raises(ValueError, match="malformed state"):
        records.state_from_json(text)


def test_keys_a_state_does_not_know_are_ignored_by_both() -> None:
    state = RunState("s", "loop", "p", RunStatus.RUNNING, "a", "b", "t", ())
    text = json.dumps({**convert.unstructure(state), "written_by_a_later_version": 1})
    assert records.state_from_json(text) == convert.state_from_json(text) == state


def test_every_state_field_is_covered() -> None:
    """A field added to the state later must be added to the strategies above too."""
    built = {f.name for f in attrs.fields(RunState)}
    left_at_default = {
        "iteration_completed",
        "iteration_started",
        "finished_at",
        "completion_reason",
        "pid_start_time",
        "host",
        "boot_id",
        "agent_pid",
        "agent_start_time",
        "agent_mark",
        "version",
        "worktree",
    }
    assert built - left_at_default == set(states.wrapped_strategy.kwargs) | {
        "session",
        "type",
        "pipeline",
        "status",
        "started_at",
        "updated_at",
        "backend",
        "stages",
    }


def test_a_change_that_fits_no_state_rebuilds_nothing() -> None:
    """A damaged or foreign log never breaks reading: the state stands as it is."""
    from looprunner.store.projection import fold

    state = RunState("s", "loop", "p", RunStatus.RUNNING, "a", "b", "t", (), seq=1)
    stray = Event(
        ts="t", seq=2, type="x", session="s", state={"stages": {"3": {"status": "complete"}}}
    )
    odd = Event(ts="t", seq=3, type="x", session="s", state={"stages": {"a": 1}})
    assert fold(state, [stray]) == state
    assert fold(state, [odd]) == state
    assert fold(None, [stray]) is None
