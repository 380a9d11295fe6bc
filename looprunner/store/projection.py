"""``state.json`` as a projection of the event log.

The event log is the durable record: each event that changes a session's state carries
what it changed (``Event.state``, a *patch*), and only the log is fsynced. ``state.json``
is written atomically after each change but not fsynced, so a power cut can leave it
behind the log, and a user can delete it or put an older copy back. Readers therefore
take ``state.json`` as it is only when no event after the one it names (``RunState.seq``)
changed the state; otherwise they apply the later patches to it — or, with no readable
state file at all, every patch from the session's first event, which carries the whole
first state. Applying the patches of the whole log gives the state the engine wrote,
field for field.

A patch names the top-level fields that changed, with their new values; ``stages``
changes are given per stage, as ``{"INDEX": {field: value}}``. Applying a patch sets
values, so applying one twice changes nothing.

A session's own state and each branch of a parallel block have their own stream in the
one log: a branch's events name it in ``data`` (``provider`` and ``block``), the
session's events name no block.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from looprunner.models import Event, RunState
from looprunner.store.events import iter_events, last_events
from looprunner.store.state import read_state

#: fields a patch never carries: which event a state reflects is the event's own seq
_NOT_PATCHED = frozenset({"seq"})
_MISSING = object()


def state_patch(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """Return what changed from ``before`` to ``after`` (unstructured states)."""
    patch: dict[str, Any] = {}
    for key, value in after.items():
        if key in _NOT_PATCHED:
            continue
        old = before.get(key, _MISSING)
        if old == value:
            continue
        if key == "stages" and isinstance(old, list) and len(old) == len(value):
            stages = {
                str(index): {k: v for k, v in stage.items() if old[index].get(k, _MISSING) != v}
                for index, stage in enumerate(value)
            }
            patch[key] = {index: change for index, change in stages.items() if change}
        else:
            patch[key] = copy.deepcopy(value)
    return patch


def apply_patch(base: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``base`` with ``patch`` applied (neither is changed)."""
    result = dict(base)
    for key, value in patch.items():
        if key == "stages" and isinstance(value, Mapping):
            stages = [dict(stage) for stage in result.get("stages", [])]
            for index, change in value.items():
                position = int(index)
                if position >= len(stages):
                    raise ValueError(f"a patch names stage {index} of {len(stages)}")
                stages[position].update(copy.deepcopy(change))
            result[key] = stages
        else:
            result[key] = copy.deepcopy(value)
    return result


def in_stream(event: Event, tags: Mapping[str, str] | None) -> bool:
    """Whether ``event`` belongs to the session's stream (no ``tags``) or a branch's."""
    if tags:
        return all(event.data.get(key) == value for key, value in tags.items())
    return "block" not in event.data


def fold(
    base: RunState | None, changes: Iterable[Event], tags: Mapping[str, str] | None = None
) -> RunState | None:
    """Return ``base`` with the patches of ``changes`` in its stream applied, in order.

    Without a ``base``, the first patch must carry a whole state (a session's first
    event does); if none does, there is nothing to rebuild from and None is returned.
    """
    from looprunner import convert  # only a rebuild needs it: a current state never does

    state: dict[str, Any] | None = convert.unstructure(base) if base is not None else None
    seq = None
    for event in changes:
        if event.state is None or not in_stream(event, tags):
            continue
        try:
            state = apply_patch(state or {}, event.state)
        except (ValueError, TypeError, AttributeError):  # a change that fits no state here
            return base
        seq = event.seq
    if state is None or seq is None:
        return base
    state["seq"] = seq
    try:
        return convert.structure(state, RunState)
    except Exception:  # patches that do not make a whole state: the log is not one of ours
        return base


def events_after(path: Path, seq: int) -> list[Event]:
    """Return the log's events numbered after ``seq``, reading only the log's end."""
    wanted = 8
    while True:
        found = last_events(path, wanted)
        if len(found) < wanted or (found and found[0].seq <= seq):
            return [event for event in found if event.seq > seq]
        wanted *= 4


def read_projected(
    state_file: Path, events_file: Path, *, tags: Mapping[str, str] | None = None
) -> RunState | None:
    """Return the session's (or a branch's) state, brought up to date with the log.

    Costs one read of the log's last line when ``state.json`` is current. A state file
    written by an older version (no ``seq``) is returned as it is.

    Raises
    ------
    ValueError
        If the state file exists, does not parse, and the log cannot rebuild it.
    """
    try:
        state = read_state(state_file)
    except ValueError:
        rebuilt = fold(None, iter_events(events_file), tags)
        if rebuilt is None:
            raise
        return rebuilt
    if state is None:
        if not events_file.exists():
            return None
        return fold(None, iter_events(events_file), tags)
    if state.seq is None:
        return state
    last = last_events(events_file, 1)
    if not last or last[0].seq <= state.seq:
        return state
    return fold(state, events_after(events_file, state.seq), tags)


def logged_state(events_file: Path, tags: Mapping[str, str] | None = None) -> RunState | None:
    """Return the state the whole log records (None: the log does not carry one)."""
    return fold(None, iter_events(events_file), tags)
