"""Reading what the agent decided: ``status.json`` of one iteration."""

from __future__ import annotations

import json
from pathlib import Path

from looprunner import convert
from looprunner.models import AgentStatus


class StatusProblem(Exception):
    """status.json is missing or not valid; ``type`` is the run error type to record."""

    def __init__(self, type: str, message: str) -> None:
        super().__init__(message)
        self.type = type
        self.message = message


def read_agent_status(path: Path) -> AgentStatus:
    """Return the agent's status, or raise :class:`StatusProblem` saying what is wrong."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StatusProblem("status_missing", f"the agent wrote no status file ({path})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StatusProblem("status_invalid", f"cannot read {path}: {exc}") from None
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise StatusProblem("status_invalid", f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise StatusProblem("status_invalid", f"{path} must hold a JSON object")
    try:
        return convert.agent_status_from_dict(data)
    except ValueError as exc:
        raise StatusProblem("status_invalid", f"{path}: {exc}") from None


def read_history(paths: list[Path]) -> list[AgentStatus]:
    """Read the statuses of completed iterations (for terminations after a resume).

    A completed iteration always had a valid status; one that cannot be read any more
    (deleted by hand) counts as ``continue`` so it never ends a stage by itself.
    """
    history = []
    for path in paths:
        try:
            history.append(read_agent_status(path))
        except StatusProblem:
            history.append(convert.agent_status_from_dict({"decision": "continue"}))
    return history
