"""The live sessions of the built-in backends, asked without :mod:`subprocess`.

Only the built-in backends are known here (``tmux`` and ``inline``; a plugin cannot
take their names); a session on any other backend is the models' to look at, through
the backend's own ``sessions``. ``tests/unit/test_glance_backends.py`` checks that each
answer here is the backend's own.
"""

from __future__ import annotations

import os
import select
import time

from looprunner.backends import tmux_listing
from looprunner.glance.files import DECLINE

TYPE_CHECKING = False  # typing itself is not imported: a quick look needs nothing of it
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

#: a tmux call that takes longer than this is a server that does not answer (as the
#: tmux backend's ``TIMEOUT``)
TIMEOUT = 10.0


def run(argv: list[str], timeout: float) -> tuple[int, bytes, bytes] | None:
    """Run ``argv`` (no shell) and return its exit code, stdout and stderr.

    None if it cannot be started or has not finished within ``timeout`` seconds (it is
    then killed). :func:`os.posix_spawn` and two pipes: what :func:`subprocess.run`
    does here, without importing it.
    """
    out_read, out_write = os.pipe()
    err_read, err_write = os.pipe()
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_DUP2, out_write, 1),
        (os.POSIX_SPAWN_DUP2, err_write, 2),
    ]
    try:
        pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=actions)
    except OSError:
        for fd in (out_read, out_write, err_read, err_write):
            os.close(fd)
        return None
    os.close(out_write)
    os.close(err_write)
    chunks: dict[int, list[bytes]] = {out_read: [], err_read: []}
    deadline = time.monotonic() + timeout
    try:
        while chunks.keys() - _closed(chunks):
            left = deadline - time.monotonic()
            ready = select.select(list(chunks.keys() - _closed(chunks)), [], [], max(0, left))[0]
            if not ready:
                import signal  # only for a tmux that does not answer

                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return None
            for fd in ready:
                data = os.read(fd, 65536)
                chunks[fd].append(data)
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(out_read)
        os.close(err_read)
    code = os.waitstatus_to_exitcode(status)
    return code, b"".join(chunks[out_read]), b"".join(chunks[err_read])


def _closed(chunks: dict[int, list[bytes]]) -> set[int]:
    """Return the pipes that have reached their end (their last read gave nothing)."""
    return {fd for fd, read in chunks.items() if read and not read[-1]}


def tmux_sessions(project: str) -> Any:
    """Return the project's live tmux sessions (None: tmux cannot be asked), or DECLINE.

    The argv and the reading of its answer are the tmux backend's own
    (:mod:`looprunner.backends.tmux_listing`), for the server ``LOOPRUNNER_TMUX_SOCKET``
    names.
    """
    tmux = tmux_listing.on_path("tmux")
    if tmux is None:
        return set()
    argv = [
        tmux,
        *tmux_listing.socket_argv(os.environ.get(tmux_listing.SOCKET_ENV) or None),
        "list-sessions",
        "-F",
        tmux_listing.LIST_FORMAT,
    ]
    done = run(argv, TIMEOUT)
    if done is None:
        return None
    code, out, err = done
    try:
        text, errors = out.decode("utf-8"), err.decode("utf-8")
    except UnicodeDecodeError:  # the backend reads it in the locale's encoding: its way
        return DECLINE
    rows = tmux_listing.read_listing(code, text.splitlines(), errors.splitlines())
    return None if rows is None else set(tmux_listing.project_sessions(rows, project))


def inline_sessions(project: str) -> set[str]:
    """Return the live sessions of the inline backend: none, its lock says if it runs."""
    return set()


#: each built-in backend: how to ask for its live sessions, and how it names one
BUILTIN: dict[str, tuple[Callable[[str], Any], Callable[[str], str]]] = {
    "tmux": (tmux_sessions, tmux_listing.describe),
    "inline": (inline_sessions, lambda session: f"inline session of {session!r}"),
}
