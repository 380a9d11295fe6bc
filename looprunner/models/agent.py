"""What an agent reports each iteration in ``status.json``."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import attrs


class Decision(enum.StrEnum):
    """The agent's verdict on the loop."""

    CONTINUE = "continue"
    STOP = "stop"
    ERROR = "error"


@attrs.frozen
class WorkDone:
    """What the agent says it did."""

    items_completed: tuple[str, ...] = ()
    files_touched: tuple[str, ...] = ()


@attrs.frozen
class AgentStatus:
    """The parsed contents of ``status.json``, or what a stage type returns.

    ``decision`` may be given as its string (``"continue"``, ``"stop"``, ``"error"``);
    any other value is refused when the status is built.
    """

    decision: Decision = attrs.field(converter=Decision)
    reason: str = ""
    summary: str = ""
    work: WorkDone = attrs.field(factory=WorkDone)
    errors: tuple[Any, ...] = ()
    #: what the agent says the iteration cost, in US dollars (None: not reported)
    cost_usd: float | None = None
    #: the agent's token counts (``input_tokens``, ``output_tokens``, cache tokens)
    usage: Mapping[str, int] | None = attrs.field(default=None, hash=False)


@attrs.frozen
class AgentPaths:
    """The files of one iteration, as absolute paths."""

    context: str
    status: str
    output: str
    progress: str


@attrs.frozen
class Invocation:
    """Everything a provider needs to build the command for one iteration."""

    session: str
    project: str
    stage_id: str
    iteration: int
    prompt: str
    paths: AgentPaths
    model: str | None = None
    command: tuple[str, ...] | None = None
    fixtures: str | None = None
    mock_delay: float | None = None
    #: the agent's own conversation to resume (a stage with ``session_mode: continue``)
    resume_session: str | None = None


@attrs.frozen
class AgentCommand:
    """A program to run for one iteration: argv (never a shell string), extra env, stdin."""

    argv: tuple[str, ...]
    stdin: str = ""
    env: dict[str, str] = attrs.field(factory=dict)
    unset_env: tuple[str, ...] = ()
