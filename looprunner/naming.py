"""The rules of a session name, and the names derived from it, as plain functions.

:mod:`looprunner.names` builds every path from a session name; this module holds only
the rules, importing nothing, so the command line's quick look at a session
(:mod:`looprunner.glance`) applies the very same rules without pathlib, attrs or even
:mod:`re` (whose compiler costs a quick look more than the rest of its imports).
"""

from __future__ import annotations

MAX_SESSION_NAME = 48
TMUX_PREFIX = "pipeline-"
STATE_DIR_ENV = "LOOPRUNNER_STATE_DIR"
DEFAULT_STATE_DIR = ".claude"

#: the characters of a session name besides the hyphens between its words
NAME_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")


def is_valid_session_name(name: str) -> bool:
    """Tell whether ``name`` is a valid session name, without raising.

    Words of lowercase ASCII letters and digits joined by single hyphens: the regular
    expression ``[a-z0-9]+(?:-[a-z0-9]+)*``, at most :data:`MAX_SESSION_NAME` long.
    """
    return (
        isinstance(name, str)
        and 0 < len(name) <= MAX_SESSION_NAME
        and NAME_CHARACTERS.issuperset(name.replace("-", ""))
        and "" not in name.split("-")
    )


def session_from_tmux_name(tmux_name: str) -> str | None:
    """Return the session name behind a tmux session name, or None if it is not ours."""
    if not tmux_name.startswith(TMUX_PREFIX):
        return None
    name = tmux_name[len(TMUX_PREFIX) :]
    return name if is_valid_session_name(name) else None
