"""What an agent's CLI says an iteration cost: tokens, money, turns, its own session."""

from __future__ import annotations

from collections.abc import Iterable

import attrs


@attrs.frozen
class TokenUsage:
    """Tokens as the CLI counted them; cache reads and writes apart from plain input."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_read_input_tokens=self.cache_read_input_tokens + other.cache_read_input_tokens,
            cache_creation_input_tokens=(
                self.cache_creation_input_tokens + other.cache_creation_input_tokens
            ),
        )

    @property
    def total(self) -> int:
        """Every token counted, input of all kinds and output."""
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_read_input_tokens
            + self.cache_creation_input_tokens
        )


@attrs.frozen
class AgentReport:
    """What a structured-output CLI said of one run; each field None when it did not say.

    ``final_text`` is the agent's last answer (the iteration's ``output.md``); None means
    the stream held none and the printed output is kept instead.
    """

    final_text: str | None = None
    usage: TokenUsage | None = None
    cost_usd: float | None = None
    num_turns: int | None = None
    agent_session_id: str | None = None
    agent_version: str | None = None


def add_optional(a: float | None, b: float | None) -> float | None:
    """Sum two amounts where None is unknown: the known part, None if neither is known."""
    if a is None:
        return b
    if b is None:
        return a
    return round(a + b, 6)


def sum_usage(items: Iterable[TokenUsage | None]) -> TokenUsage | None:
    """Sum usages, None when none is known."""
    total: TokenUsage | None = None
    for usage in items:
        if usage is not None:
            total = usage if total is None else total + usage
    return total


def combine(reports: Iterable[AgentReport]) -> AgentReport | None:
    """Merge the reports of an iteration's agent runs (a judge, branches) into one."""
    merged: AgentReport | None = None
    for report in reports:
        if merged is None:
            merged = report
            continue
        turns = (
            None
            if merged.num_turns is None and report.num_turns is None
            else (merged.num_turns or 0) + (report.num_turns or 0)
        )
        merged = AgentReport(
            final_text=report.final_text,
            usage=sum_usage((merged.usage, report.usage)),
            cost_usd=add_optional(merged.cost_usd, report.cost_usd),
            num_turns=turns,
            agent_session_id=report.agent_session_id or merged.agent_session_id,
            agent_version=report.agent_version or merged.agent_version,
        )
    return merged
