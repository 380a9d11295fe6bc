"""Whether a ``state.json`` is exactly what the engine writes, field for field.

The models read a state file leniently (a number where a string belongs, a missing
field given its default) and print it back in their own form; a quick look that printed
the file as it is would then differ. So the quick look takes a state only when reading
it into the model and back would give it unchanged: the same fields in the same order,
each of the exact JSON type the model writes. ``tests/unit/test_glance_shape.py`` checks
these tables against the models' fields.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing itself is not imported: a quick look needs nothing of it
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

#: the JSON types of a field: a type, a nested shape, or a tuple of choices
_STR = (str,)
_OPT_STR = (str, type(None))
_INT = (int,)
_OPT_INT = (int, type(None))
_FLOAT = (float,)
_OPT_FLOAT = (float, type(None))
RUN_STATUSES = ("pending", "running", "complete", "failed", "killed")

SPENT: dict[str, Any] = {
    "cost_usd": _OPT_FLOAT,
    "tokens": _OPT_INT,
    "runtime": _FLOAT,
    "errors_in_row": _INT,
}
USAGE: dict[str, Any] = {
    "input_tokens": _INT,
    "output_tokens": _INT,
    "cache_read_input_tokens": _INT,
    "cache_creation_input_tokens": _INT,
}
ERROR: dict[str, Any] = {"type": _STR, "message": _STR, "iteration": _OPT_INT}
STAGE: dict[str, Any] = {
    "id": _STR,
    "stage": _STR,
    "status": RUN_STATUSES,
    "iterations_completed": _INT,
    "max_iterations": _INT,
    "termination_reason": _OPT_STR,
    "spent": SPENT,
    "usage": (USAGE, None),
    "cost_usd": _OPT_FLOAT,
    "agent_session_id": _OPT_STR,
}
STATE: dict[str, Any] = {
    "session": _STR,
    "type": ("loop", "pipeline"),
    "pipeline": _STR,
    "status": RUN_STATUSES,
    "started_at": _STR,
    "updated_at": _STR,
    "backend": _STR,
    "stages": [STAGE],
    "current_stage": _INT,
    "iteration": _INT,
    "iteration_completed": _INT,
    "iteration_started": _OPT_STR,
    "finished_at": _OPT_STR,
    "completion_reason": _OPT_STR,
    "error": (ERROR, None),
    "pid": _OPT_INT,
    "pid_start_time": _OPT_INT,
    "host": _OPT_STR,
    "boot_id": _OPT_STR,
    "agent_pid": _OPT_INT,
    "agent_start_time": _OPT_INT,
    "agent_mark": _OPT_STR,
    "version": _OPT_STR,
    "spent": SPENT,
    "usage": (USAGE, None),
    "cost_usd": _OPT_FLOAT,
    "worktree": (None,),  # a worktree is git's to describe: the models' way
    "seq": _OPT_INT,
}


def conforms(value: Any, shape: Any) -> bool:
    """Tell whether ``value`` has exactly ``shape`` (see the tables above)."""
    return _checker(id(shape), shape)(value)


def _checker(key: int, shape: Any) -> Callable[[Any], bool]:
    """Return the check of one shape, made once: a listing checks hundreds of states."""
    made = _CHECKERS.get(key)
    if made is None:
        made = _CHECKERS[key] = _make(shape)
    return made


def _make(shape: Any) -> Callable[[Any], bool]:
    if isinstance(shape, dict):
        keys = list(shape)
        #: each field's JSON types, checked for all fields at once in C (``map``)
        kinds = [_types(kind) for kind in shape.values()]
        #: the fields whose value needs more than its type: words, records, lists
        deeper = [(name, _make(kind)) for name, kind in shape.items() if not _by_type(kind)]

        def record(value: Any) -> bool:
            if type(value) is not dict or list(value) != keys:
                return False
            if not all(map(frozenset.__contains__, kinds, map(type, value.values()))):
                return False
            for name, check in deeper:  # noqa: SIM110 - a loop costs less than all() here
                if not check(value[name]):
                    return False
            return True

        return record
    if isinstance(shape, list):
        item = _make(shape[0])
        return lambda value: type(value) is list and bool(value) and all(map(item, value))
    types = {choice for choice in shape if isinstance(choice, type)}
    words = {choice for choice in shape if isinstance(choice, str)}
    nested = [_make(choice) for choice in shape if isinstance(choice, dict)]
    none = None in shape

    def one_of(value: Any) -> bool:  # exact types: a bool is no int, an int no float
        kind = type(value)
        return (
            kind in types
            or (kind is str and value in words)
            or (none and value is None)
            or any(check(value) for check in nested)
        )

    return one_of


def _by_type(kind: Any) -> bool:
    """Tell whether a field's type alone says it conforms (no words, records or lists)."""
    return isinstance(kind, tuple) and all(
        choice is None or isinstance(choice, type) for choice in kind
    )


def _types(kind: Any) -> frozenset[type]:
    """Return the exact types a field's value may have (its words are strings)."""
    if isinstance(kind, dict):
        return frozenset({dict})
    if isinstance(kind, list):
        return frozenset({list})
    return frozenset(
        type(None) if choice is None else choice if isinstance(choice, type) else type(choice)
        for choice in kind
    )


_CHECKERS: dict[int, Callable[[Any], bool]] = {}
