"""The rules of a session name, and the names derived from it, as plain functions.

:mod:`looprunner.names` builds every path from a session name; this module holds only
the rules, importing nothing but :mod:`re`, so the command line's quick look at a
session (:mod:`looprunner.glance`) applies the very same rules without pathlib or attrs.
"""

from __future__ import annotations

import re

MAX_SESSION_NAME = 48
TMUX_PREFIX = "pipeline-"
STATE_DIR_ENV = "LOOPRUNNER_STATE_DIR"
DEFAULT_STATE_DIR = ".claude"

SESSION_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def is_valid_session_name(name: str) -> bool:
    """Tell whether ``name`` is a valid session name, without raising."""
    return (
        isinstance(name, str)
        and len(name) <= MAX_SESSION_NAME
        and SESSION_NAME.fullmatch(name) is not None
    )


def session_from_tmux_name(tmux_name: str) -> str | None:
    """Return the session name behind a tmux session name, or None if it is not ours."""
    if not tmux_name.startswith(TMUX_PREFIX):
        return None
    name = tmux_name[len(TMUX_PREFIX) :]
    return name if is_valid_session_name(name) else None
