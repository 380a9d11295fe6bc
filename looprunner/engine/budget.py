"""Keeping a session's spending against its budgets (``budget:`` of stages and pipeline).

Each completed iteration adds what its agent reported (``cost_usd``, ``usage``) to the
stage's and the session's ``spent`` in state.json, written with the iteration itself;
wall time is added as it passes while the engine runs (a crashed or killed session's
downtime is not counted). The stage loop asks :meth:`BudgetKeeper.reached` before each
iteration, after its termination: a stop decision therefore beats a budget, and a budget
ends the session only after the iteration that crossed it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import attrs

from looprunner.engine.recorder import Recorder
from looprunner.models import AgentStatus, Budget, Pipeline, Spent
from looprunner.models.budget import usage_tokens


class BudgetReached(Exception):
    """A budget of the stage or pipeline is spent: the session ends ``complete``.

    ``scope`` says whose budget (``stage`` or ``session``), ``limit`` is the key
    (``max_cost_usd`` ...) and its value, ``spent`` what was spent against it (dollars,
    tokens or seconds).
    """

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        scope: str = "session",
        limit: tuple[str, float] = ("", 0.0),
        spent: float = 0.0,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.scope = scope
        self.limit = limit
        self.spent = spent

    def event_data(self) -> dict[str, Any]:
        """Return the ``budget_reached`` event's data."""
        key, value = self.limit
        return {
            "reason": self.reason,
            "scope": self.scope,
            "key": key,
            "limit": value,
            "spent": self.spent,
        }


def spend_data(status: AgentStatus) -> dict[str, Any]:
    """Return what an ``iteration_complete`` event says of the iteration's cost."""
    data: dict[str, Any] = {}
    if status.cost_usd is not None:
        data["cost_usd"] = status.cost_usd
    if status.usage:
        data["usage"] = dict(status.usage)
    return data


_WHAT = {
    "budget_cost": ("max_cost_usd", "cost_usd", "${:g} spent"),
    "budget_tokens": ("max_tokens", "tokens", "{} tokens used"),
    "budget_runtime": ("max_runtime", "runtime", "{:.0f}s of wall time"),
}


class BudgetKeeper:
    """Adds up what one recorder's stages spend, and says when a budget is reached."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self._since = time.monotonic()

    def _add(self, index: int, change: Callable[[Spent], Spent]) -> None:
        """Apply ``change`` to the session's and stage ``index``'s spent (in memory).

        One new state for both: the engine does this several times an iteration.
        """
        rec = self.recorder
        state = rec.current
        stages = list(state.stages)
        stages[index] = attrs.evolve(stages[index], spent=change(stages[index].spent))
        rec.state = attrs.evolve(state, stages=tuple(stages), spent=change(state.spent))

    def _elapsed(self) -> float:
        """Return the wall time since the last call (the last tick)."""
        now = time.monotonic()
        elapsed, self._since = now - self._since, now
        return elapsed

    def tick(self, index: int) -> None:
        """Count the wall time since the last tick against stage ``index`` (in memory)."""
        elapsed = self._elapsed()
        self._add(index, lambda s: attrs.evolve(s, runtime=round(s.runtime + elapsed, 3)))

    def completed(self, index: int, status: AgentStatus) -> None:
        """Add a completed iteration's cost, tokens and time; it ends a run of errors."""
        elapsed = self._elapsed()
        tokens = usage_tokens(status.usage)
        self._add(
            index,
            lambda s: s.add(status.cost_usd, tokens, seconds=elapsed, errors_in_row=0),
        )

    def failed(self, index: int) -> int:
        """Count a failed iteration; return the failures in a row so far (session-wide)."""
        self.tick(index)
        self._add(index, lambda s: attrs.evolve(s, errors_in_row=s.errors_in_row + 1))
        return self.recorder.current.spent.errors_in_row

    def reset_errors(self) -> None:
        """Forget earlier failures in a row: a resume is a fresh start for the breaker."""
        rec = self.recorder
        if rec.current.spent.errors_in_row:
            rec.state = attrs.evolve(
                rec.current, spent=attrs.evolve(rec.current.spent, errors_in_row=0)
            )

    @staticmethod
    def error_limit(pipeline: Pipeline, index: int) -> int | None:
        """Return how many failed iterations in a row end the session (None: the first)."""
        own = pipeline.nodes[index].stage.budget.max_consecutive_errors
        return own if own is not None else pipeline.budget.max_consecutive_errors

    def reached(self, pipeline: Pipeline, index: int) -> BudgetReached | None:
        """Return the budget of stage ``index`` or of the pipeline that is spent, if any.

        The time since the last tick is counted now only when a runtime limit needs it;
        otherwise it is counted with the iteration that follows (the totals are the same).
        """
        own = pipeline.nodes[index].stage.budget
        if own.max_runtime is not None or pipeline.budget.max_runtime is not None:
            self.tick(index)
        rec = self.recorder
        return first_reached(
            (
                ("stage", own, rec.current.stages[index].spent),
                ("session", pipeline.budget, rec.current.spent),
            )
        )


def first_reached(checks: Iterable[tuple[str, Budget, Spent]]) -> BudgetReached | None:
    """Return the first of ``(scope, budget, spent)`` whose budget is spent, if any."""
    for scope, budget, spent in checks:
        reason = spent.reached(budget)
        if reason is not None:
            limit_key, spent_key, shown = _WHAT[reason]
            used = getattr(spent, spent_key)
            limit = getattr(budget, limit_key)
            message = f"the {scope}'s budget is spent: {shown.format(used)}, {limit_key} {limit:g}"
            return BudgetReached(reason, message, scope=scope, limit=(limit_key, limit), spent=used)
    return None
