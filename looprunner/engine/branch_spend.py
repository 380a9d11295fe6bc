"""What a parallel block's branches spend, added to the block's node and the session.

Each branch keeps its own ``state.json`` with its own totals (``usage``, ``cost_usd``,
``spent``). The session's totals must include them, or ``status`` would show a block of
Claude agents as free and a ``max_cost_usd`` would never see their money. So, after
each of its iterations, a branch's thread hands its state to :class:`BlockSpend`, which
adds the difference since the last time to the block's node and to the session, in
memory and in the session's ``state.json``.

The sums are taken over the branches' states, not counted call by call, so a resumed
block (whose finished branches do not run again) adds only what is new: at the block's
start the branches' states as found on disk are taken as already counted, since they
were added when they were written. Wall time is not added: the branches run at once,
and the session's clock already counts the block's time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

import attrs

from looprunner.engine.budget import BudgetReached, first_reached
from looprunner.engine.recorder import Recorder
from looprunner.models import Pipeline, RunState, Spent, TokenUsage
from looprunner.models.usage import add_optional, sum_usage


@attrs.frozen
class _Totals:
    """What some branches spent: reported tokens and cost, and their budget amounts."""

    usage: TokenUsage | None = None
    cost_usd: float | None = None
    spent_cost: float | None = None
    spent_tokens: int | None = None

    @classmethod
    def of(cls, states: Iterable[RunState]) -> _Totals:
        total = cls()
        for state in states:
            total = _Totals(
                usage=sum_usage((total.usage, state.usage)),
                cost_usd=add_optional(total.cost_usd, state.cost_usd),
                spent_cost=add_optional(total.spent_cost, state.spent.cost_usd),
                spent_tokens=_add_int(total.spent_tokens, state.spent.tokens),
            )
        return total

    def minus(self, before: _Totals) -> _Totals:
        """Return what was added since ``before`` (None where nothing is known)."""
        return _Totals(
            usage=_usage_minus(self.usage, before.usage),
            cost_usd=_minus(self.cost_usd, before.cost_usd),
            spent_cost=_minus(self.spent_cost, before.spent_cost),
            spent_tokens=(
                None
                if self.spent_tokens is None
                else self.spent_tokens - (before.spent_tokens or 0)
            ),
        )


def _add_int(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else a + b


def _minus(now: float | None, before: float | None) -> float | None:
    return None if now is None else round(now - (before or 0.0), 6)


def _usage_minus(now: TokenUsage | None, before: TokenUsage | None) -> TokenUsage | None:
    if now is None or before is None:
        return now
    return TokenUsage(
        **{
            field.name: getattr(now, field.name) - getattr(before, field.name)
            for field in attrs.fields(TokenUsage)
        }
    )


class BlockSpend:
    """Adds one block's branch spending to node ``index`` and the session, thread-safely.

    ``recorder`` is the session's; ``pipeline`` the session's, whose node ``index`` is
    the block. Only branch threads call this while the block runs (the session's own
    thread waits for them), and one at a time.
    """

    def __init__(self, recorder: Recorder, pipeline: Pipeline, index: int) -> None:
        self.recorder = recorder
        self.pipeline = pipeline
        self.index = index
        self._lock = threading.Lock()
        self._states: dict[str, RunState] = {}
        self._added = _Totals()
        self._started = time.monotonic()

    def counted(self, name: str, state: RunState) -> None:
        """Take branch ``name``'s state as found at the block's start as added already."""
        with self._lock:
            self._states[name] = state
            self._added = _Totals.of(self._states.values())

    def update(self, name: str, state: RunState) -> None:
        """Add what branch ``name`` spent since its last state to the block and session."""
        with self._lock:
            self._states[name] = state
            total = _Totals.of(self._states.values())
            if total == self._added:
                return
            change = total.minus(self._added)
            self._added = total
            rec = self.recorder
            stage = rec.current.stages[self.index]
            rec.set_stage(
                self.index,
                usage=sum_usage((stage.usage, change.usage)),
                cost_usd=add_optional(stage.cost_usd, change.cost_usd),
                spent=stage.spent.add(change.spent_cost, change.spent_tokens),
            )
            state_now = rec.current
            rec.state = attrs.evolve(
                state_now,
                usage=sum_usage((state_now.usage, change.usage)),
                cost_usd=add_optional(state_now.cost_usd, change.cost_usd),
                spent=state_now.spent.add(change.spent_cost, change.spent_tokens),
            )
            rec.save()

    def reached(self) -> BudgetReached | None:
        """Return the block node's or the session's budget that is spent, if any.

        Wall time counts what the session had spent when the block began and the time
        since; the session's loop adds the same time when the block's iteration ends.
        """
        with self._lock:
            elapsed = time.monotonic() - self._started
            state = self.recorder.current
            node = self.pipeline.nodes[self.index]
            return first_reached(
                (
                    ("stage", node.stage.budget, _later(state.stages[self.index].spent, elapsed)),
                    ("session", self.pipeline.budget, _later(state.spent, elapsed)),
                )
            )


def _later(spent: Spent, elapsed: float) -> Spent:
    return attrs.evolve(spent, runtime=round(spent.runtime + elapsed, 3))


class BranchBudget:
    """One branch's :class:`~looprunner.engine.stages.OuterBudget`: its block's spending."""

    def __init__(self, block: BlockSpend, name: str, recorder: Recorder) -> None:
        self.block = block
        self.name = name
        self.recorder = recorder

    def sync(self) -> None:
        """Hand the branch's state as it now is to the block."""
        self.block.update(self.name, self.recorder.current)

    def reached(self) -> BudgetReached | None:
        """Return the block node's or the session's budget that is spent, if any."""
        return self.block.reached()
