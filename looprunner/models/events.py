"""Events: one line of ``events.jsonl`` each, the session's history."""

from __future__ import annotations

from typing import Any, Final

import attrs

SESSION_START: Final = "session_start"
SESSION_RESUMED: Final = "session_resumed"
STAGE_START: Final = "stage_start"
ITERATION_START: Final = "iteration_start"
ITERATION_COMPLETE: Final = "iteration_complete"
ITERATION_FAILED: Final = "iteration_failed"
STAGE_COMPLETE: Final = "stage_complete"
SESSION_COMPLETE: Final = "session_complete"
SESSION_FAILED: Final = "session_failed"
SESSION_KILLED: Final = "session_killed"
HOOK_ERROR: Final = "hook_error"
JUDGE_COMPLETE: Final = "judge_complete"
JUDGE_FAILED: Final = "judge_failed"
RETRY_WAIT: Final = "retry_wait"
BUDGET_REACHED: Final = "budget_reached"


@attrs.frozen
class Event:
    """One thing that happened to a session.

    ``seq`` counts 1, 2, ... per session; ``stage`` is the node id and ``iteration`` the
    1-based iteration where they apply, else None; ``data`` depends on ``type``.
    ``state`` is what the event changed in ``state.json`` (see
    :mod:`looprunner.store.projection`): the log is the durable record, and state.json
    is rebuilt from these changes when it is behind the log. None: no change (or an
    event written by an older version, whose state.json is never rebuilt).
    """

    ts: str
    seq: int
    type: str
    session: str
    stage: str | None = None
    iteration: int | None = None
    data: dict[str, Any] = attrs.field(factory=dict)
    state: dict[str, Any] | None = None
