"""The agent's ``status.json``, parsed into an :class:`AgentStatus`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
from cattrs.errors import ForbiddenExtraKeysError

from looprunner.convert.converter import converter, leaf_errors
from looprunner.convert.yaml import dotted
from looprunner.models import AgentStatus


def agent_status_from_dict(data: Any) -> AgentStatus:
    """Structure a parsed ``status.json``; raise ValueError with a readable reason.

    Besides the ``decision`` format, loop-agents' result format is understood: with no
    ``decision``, ``signals.plateau_suspected: true`` means ``stop`` and false means
    ``continue``. Keys looprunner does not use are ignored.
    """
    if (
        isinstance(data, Mapping)
        and "decision" not in data
        and isinstance(data.get("signals"), Mapping)
    ):
        plateau = data["signals"].get("plateau_suspected")
        if isinstance(plateau, bool):
            data = {
                **data,
                "decision": "stop" if plateau else "continue",
                "reason": data.get("reason") or str(data["signals"].get("notes") or ""),
            }
    if isinstance(data, Mapping):
        known = {a.name for a in attrs.fields(AgentStatus)}
        data = {k: v for k, v in data.items() if k in known}
        if isinstance(data.get("errors"), str):
            data["errors"] = [data["errors"]]  # one error written as a string, not a list
    try:
        return converter.structure(data, AgentStatus)
    except Exception as exc:
        leaves = list(leaf_errors(exc, ()))
        if leaves:
            keypath, leaf = leaves[0]
            where = dotted(keypath) or "status"
            if isinstance(leaf, KeyError):
                raise ValueError(f"missing key {leaf.args[0]!r}") from None
            if isinstance(leaf, ForbiddenExtraKeysError):
                raise ValueError(f"{where}: unknown key {sorted(leaf.extra_fields)[0]!r}") from None
            raise ValueError(f"{where}: {leaf}") from None
        raise ValueError(str(exc)) from None
