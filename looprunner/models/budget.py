"""Limits on a session's spending and on one iteration's agent, and what was spent.

A :class:`Budget` bounds what a stage (or a whole pipeline) may spend: money, tokens,
wall time, failures in a row. :class:`Retry` says how patiently a rate-limited or
overloaded provider is tried again. :class:`Spent` is what ``state.json`` records
against the budgets, per session and per stage. Absent amounts are unknown, never zero:
a budget on cost is never reached by an agent that reports no cost.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from looprunner.errors import ConfigError

#: seconds an iteration's agent may run when its stage sets no ``timeout`` (one hour)
DEFAULT_TIMEOUT = 3600.0

#: the usage keys that count against ``max_tokens`` (Codex's ``cached_input_tokens`` is a
#: part of its ``input_tokens``, so it is not added again)
TOKEN_KEYS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)


@attrs.frozen
class Budget:
    """``budget:`` of a stage, a node or a pipeline; None means no limit of that kind.

    Reaching ``max_cost_usd``, ``max_tokens`` or ``max_runtime`` (seconds of wall time)
    ends the session ``complete`` with reason ``budget_cost``, ``budget_tokens`` or
    ``budget_runtime`` after the iteration that crossed it; ``max_consecutive_errors``
    lets failed iterations be followed by another until that many fail in a row, when
    the session fails with ``too_many_errors``.
    """

    max_cost_usd: float | None = None
    max_tokens: int | None = None
    max_runtime: float | None = None
    max_consecutive_errors: int | None = None

    @property
    def empty(self) -> bool:
        """True when no limit is set."""
        return all(getattr(self, a.name) is None for a in attrs.fields(Budget))

    def merged(self, overrides: Mapping[str, Any]) -> Budget:
        """Return this budget with the limits ``overrides`` gives replaced."""
        return attrs.evolve(self, **{k: v for k, v in overrides.items() if v is not None})


@attrs.frozen
class Retry:
    """``retry:`` of a stage: how a rate-limited or overloaded agent is tried again.

    ``attempts`` counts every run of the agent, the first included (1: no retry). The
    n-th wait is ``base_delay * 2**(n-1)`` seconds, capped at ``max_delay``, of which a
    random half to all is waited (jitter), so agents limited together do not retry
    together.
    """

    attempts: int = 4
    base_delay: float = 10.0
    max_delay: float = 300.0

    def delay(self, attempt: int, fraction: float) -> float:
        """Return the wait after failed ``attempt`` (1-based); ``fraction`` in [0, 1]."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        return ceiling * (0.5 + 0.5 * fraction)


def _check_positive(budget_or_retry: object, fields: tuple[str, ...], where: str) -> None:
    for name in fields:
        value = getattr(budget_or_retry, name)
        if value is not None and value <= 0:
            raise ConfigError(f"must be more than 0, got {value}", field=f"{where}.{name}")


def check_budget(budget: Budget) -> None:
    """Refuse limits that cannot be meant (zero or negative)."""
    _check_positive(budget, tuple(a.name for a in attrs.fields(Budget)), "budget")


def check_retry(retry: Retry) -> None:
    """Refuse retry settings that cannot be meant."""
    if retry.attempts < 1:
        raise ConfigError(f"must be at least 1, got {retry.attempts}", field="retry.attempts")
    if retry.base_delay < 0 or retry.max_delay < 0:
        raise ConfigError("delays cannot be negative", field="retry")


def usage_tokens(usage: Mapping[str, Any] | None) -> int | None:
    """Return the tokens a ``usage`` mapping counts against ``max_tokens`` (None: unknown)."""
    if not usage:
        return None
    counts = [v for k, v in usage.items() if k in TOKEN_KEYS and isinstance(v, int) and v >= 0]
    return sum(counts) if counts else None


@attrs.frozen
class Spent:
    """What a session or stage has spent against its budgets (``spent`` in state.json).

    ``cost_usd`` and ``tokens`` stay None until an agent reports any; ``runtime`` is the
    wall time the engine has spent running it (seconds, across resumes); ``errors_in_row``
    the failed iterations since the last one that succeeded.
    """

    cost_usd: float | None = None
    tokens: int | None = None
    runtime: float = 0.0
    errors_in_row: int = 0

    def add(
        self,
        cost_usd: float | None,
        tokens: int | None,
        *,
        seconds: float = 0.0,
        errors_in_row: int | None = None,
    ) -> Spent:
        """Return this with one iteration's cost and tokens added (unknown adds nothing).

        ``seconds`` of wall time are added too, and ``errors_in_row`` set, in the same
        copy: the engine records an iteration's cost, time and success at once.
        """
        return attrs.evolve(
            self,
            cost_usd=self.cost_usd if cost_usd is None else (self.cost_usd or 0.0) + cost_usd,
            tokens=self.tokens if tokens is None else (self.tokens or 0) + tokens,
            runtime=round(self.runtime + seconds, 3) if seconds else self.runtime,
            errors_in_row=self.errors_in_row if errors_in_row is None else errors_in_row,
        )

    def reached(self, budget: Budget) -> str | None:
        """Return the reason a limit of ``budget`` is reached (cost, tokens, runtime)."""
        if budget.max_cost_usd is not None and (self.cost_usd or 0.0) >= budget.max_cost_usd:
            return "budget_cost"
        if budget.max_tokens is not None and (self.tokens or 0) >= budget.max_tokens:
            return "budget_tokens"
        if budget.max_runtime is not None and self.runtime >= budget.max_runtime:
            return "budget_runtime"
        return None
