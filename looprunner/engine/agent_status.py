"""Reading what the agent decided: ``status.json`` of one iteration.

The agent is an untrusted program and the status file is whatever it made: it is opened
without following a symlink and without blocking (a FIFO would block the engine
forever), checked to be a regular file, and read up to a limit. The ``reason`` and
``summary`` it gives are copied into the events, the state and the next ``context.json``,
so they are kept to a length of their own, marked with how much was cut.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

import attrs

from looprunner import convert
from looprunner.models import AgentStatus

#: the most of status.json read (bytes); ``LOOPRUNNER_MAX_STATUS_BYTES`` overrides
MAX_STATUS_BYTES = 1 << 20
MAX_STATUS_ENV = "LOOPRUNNER_MAX_STATUS_BYTES"
#: the most of ``reason`` and of ``summary`` kept (bytes each); env overrides
MAX_REASON_BYTES = 4096
MAX_REASON_ENV = "LOOPRUNNER_MAX_REASON_BYTES"


def _limit(env: str, default: int) -> int:
    """Return a positive byte limit from ``env``; a value that is not one is ignored."""
    try:
        value = int(os.environ.get(env, default))
    except ValueError:
        return default
    return value if value > 0 else default


def max_status_bytes() -> int:
    """Return the most of status.json read (``LOOPRUNNER_MAX_STATUS_BYTES``, 1 MiB)."""
    return _limit(MAX_STATUS_ENV, MAX_STATUS_BYTES)


def max_reason_bytes() -> int:
    """Return the most of a reason or summary kept (``LOOPRUNNER_MAX_REASON_BYTES``)."""
    return _limit(MAX_REASON_ENV, MAX_REASON_BYTES)


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
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise StatusProblem("status_missing", f"the agent wrote no status file ({path})") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise StatusProblem(
                "status_invalid", f"{path} is a symbolic link; the status must be a regular file"
            ) from None
        raise StatusProblem("status_invalid", f"cannot read {path}: {exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise StatusProblem(
                "status_invalid", f"{path} is not a regular file ({_kind(info.st_mode)})"
            )
        limit = max_status_bytes()
        if info.st_size > limit:
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


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a file"


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
