"""What ``tmux list-sessions`` says of a project's sessions, read without libtmux or attrs.

The tmux backend (:mod:`looprunner.backends.tmux`) runs the listing through its own
``_run``; the command line's quick look at sessions (:mod:`looprunner.glance`) runs the
same argv without :mod:`subprocess`. Both read the answer here, so a session is live to
one exactly when it is to the other.
"""

from __future__ import annotations

import os

from looprunner.naming import TMUX_PREFIX, session_from_tmux_name

SOCKET_ENV = "LOOPRUNNER_TMUX_SOCKET"
#: the user option that marks a tmux session as ours: its value is the project's path
MARK = "@looprunner"
#: every session's name, creation time and mark, one line each
LIST_FORMAT = f"#{{session_name}}\t#{{session_created}}\t#{{{MARK}}}"
#: what tmux says when there is no server to ask (so: no sessions)
NO_SERVER = (
    "no server running",
    "error connecting to",
    "No such file or directory",
    "server exited unexpectedly",  # a server shutting down as its last session ends
)

#: a listing: each session's (name, created epoch, our mark)
Rows = list[tuple[str, int, str]]


def on_path(program: str) -> str | None:
    """Return where ``program`` is found on ``PATH`` (None: nowhere), as ``shutil.which``.

    Asked on every ``status``: ``shutil`` brings the compression modules with it, which
    a command that only looks has no use for.
    """
    for folder in os.get_exec_path():
        candidate = os.path.join(folder or os.curdir, program)  # noqa: PTH118
        if os.access(candidate, os.X_OK) and not os.path.isdir(candidate):  # noqa: PTH112
            return candidate
    return None


def socket_argv(socket_name: str | None) -> list[str]:
    """Return the options that reach the server named ``socket_name`` (None: the default)."""
    return ["-L", socket_name] if socket_name else []


def read_listing(code: int, out: list[str], err: list[str]) -> Rows | None:
    """Read what ``list-sessions -F LIST_FORMAT`` answered; None if tmux cannot answer.

    An absent server means no sessions; a server that exists but refuses (another
    user's socket) means we cannot know.
    """
    if code != 0:
        text = " ".join(err)
        if any(marker in text for marker in NO_SERVER) and "Permission denied" not in text:
            return []
        return None
    rows = []
    for line in out:
        name, _, rest = line.partition("\t")
        created, _, mark = rest.partition("\t")
        rows.append((name, int(created) if created.isdigit() else 0, mark))
    return rows


def project_sessions(rows: Rows, project: str) -> dict[str, float]:
    """Return the project's sessions among ``rows`` with when each was created.

    A session is the project's when its mark is the project's path: the same session
    name in another project is somebody else's.
    """
    found: dict[str, float] = {}
    for tmux_name, created, mark in rows:
        session = session_from_tmux_name(tmux_name)
        if session is not None and mark == project:
            found[session] = float(created)
    return found


def describe(session: str) -> str:
    """Name the tmux session of ``session`` as users see it in ``tmux ls``."""
    return f"tmux session {TMUX_PREFIX}{session}"
