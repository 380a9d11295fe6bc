"""Reading what the agent decided: ``status.json`` of one iteration.

The agent is an untrusted program and the status file is whatever it made: it is opened
without following a symlink and without blocking (a FIFO would block the engine
forever), checked to be a regular file, and read up to a limit. The ``reason`` and
``summary`` it gives are copied into the events, the state and the next ``context.json``,
so they are kept to a length of their own, marked with how much was cut.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import attrs

from looprunner import convert
from looprunner.errors import UnsafeFileError
from looprunner.limits import env_limit
from looprunner.models import AgentStatus
from looprunner.store.safe import open_regular

#: the most of status.json read (bytes); ``LOOPRUNNER_MAX_STATUS_BYTES`` overrides
MAX_STATUS_BYTES = 1 << 20
MAX_STATUS_ENV = "LOOPRUNNER_MAX_STATUS_BYTES"
#: the most of ``reason`` and of ``summary`` kept (bytes each); env overrides
MAX_REASON_BYTES = 4096
MAX_REASON_ENV = "LOOPRUNNER_MAX_REASON_BYTES"


def max_status_bytes() -> int:
    """Return the most of status.json read (``LOOPRUNNER_MAX_STATUS_BYTES``, 1 MiB)."""
    return env_limit(MAX_STATUS_ENV, MAX_STATUS_BYTES)


def max_reason_bytes() -> int:
    """Return the most of a reason or summary kept (``LOOPRUNNER_MAX_REASON_BYTES``)."""
    return env_limit(MAX_REASON_ENV, MAX_REASON_BYTES)


class StatusProblem(Exception):
    """status.json is missing or not valid; ``type`` is the run error type to record."""

    def __init__(self, type: str, message: str) -> None:
        super().__init__(message)
        self.type = type
        self.message = message


def clip(text: str, what: str, limit: int | None = None) -> str:
    """Cut ``text`` to ``limit`` bytes of UTF-8, saying how many more bytes there were."""
    limit = max_reason_bytes() if limit is None else limit
    raw = text.encode("utf-8", "surrogatepass")
    if len(raw) <= limit:
        return text
    head, sep, tail = text.rpartition(" [looprunner: ")
    if (
        sep
        and tail.endswith(f" more bytes of {what} not kept]")
        and len(head.encode("utf-8", "surrogatepass")) <= limit
    ):
        return text  # cut already (a status read from its file, then returned by a type)
    kept = raw[:limit].decode("utf-8", "ignore")
    return f"{kept} [looprunner: {len(raw) - limit} more bytes of {what} not kept]"


def clip_status(status: AgentStatus) -> AgentStatus:
    """Return ``status`` with its reason and summary cut to the documented length."""
    reason, summary = clip(status.reason, "reason"), clip(status.summary, "summary")
    if reason is status.reason and summary is status.summary:
        return status
    return attrs.evolve(status, reason=reason, summary=summary)


def _read_bounded(path: Path) -> bytes:
    """Read a regular file of at most the limit, never following a link nor blocking."""
    try:
        fd = open_regular(path, os.O_RDONLY)
    except FileNotFoundError:
        raise StatusProblem("status_missing", f"the agent wrote no status file ({path})") from None
    except UnsafeFileError as exc:
        detail = (
            "is a symbolic link; the status must be a regular file"
            if exc.what == "a symbolic link"
            else f"is not a regular file ({exc.what})"
        )
        raise StatusProblem("status_invalid", f"{path} {detail}") from None
    except OSError as exc:
        raise StatusProblem("status_invalid", f"cannot read {path}: {exc}") from None
    try:
        limit = max_status_bytes()
        if os.fstat(fd).st_size > limit:
            raise StatusProblem("status_invalid", _too_large(path, limit))
        chunks, total = [], 0
        while total <= limit:
            chunk = os.read(fd, min(1 << 16, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:  # it grew while read
            raise StatusProblem("status_invalid", _too_large(path, limit))
        return b"".join(chunks)
    except OSError as exc:
        raise StatusProblem("status_invalid", f"cannot read {path}: {exc}") from None
    finally:
        os.close(fd)


def _too_large(path: Path, limit: int) -> str:
    return f"{path} is larger than {limit} bytes (raise {MAX_STATUS_ENV} to allow more)"


def read_agent_status(path: Path) -> AgentStatus:
    """Return the agent's status, or raise :class:`StatusProblem` saying what is wrong."""
    try:
        raw = _read_bounded(path).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StatusProblem("status_invalid", f"cannot read {path}: {exc}") from None
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise StatusProblem("status_invalid", f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise StatusProblem("status_invalid", f"{path} must hold a JSON object")
    try:
        return clip_status(convert.agent_status_from_dict(data))
    except ValueError as exc:
        raise StatusProblem("status_invalid", f"{path}: {clip(str(exc), 'message')}") from None


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
