"""The live sessions of the built-in backends, asked without :mod:`subprocess`.

Only the built-in backends are known here (``tmux`` and ``inline``; a plugin cannot
take their names); a session on any other backend is the models' to look at, through
the backend's own ``sessions``. ``tests/integration/test_glance.py`` checks that each
answer here is the backend's own (live and orphaned sessions in a real tmux).
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


class Started:
    """A program started with its outputs on pipes: :meth:`finish` reads them, waits."""

    def __init__(self, pid: int, out: int, err: int, timeout: float) -> None:
        self.pid, self.out, self.err, self.timeout = pid, out, err, timeout

    def finish(self) -> tuple[int, bytes, bytes] | None:
        """Return its exit code, stdout and stderr; None if it outlived its timeout.

        The timeout counts from this call: until then the program may have waited on
        a full pipe nobody read. A program still running at the deadline is killed.
        Either way it is reaped and the pipes are closed: call this once.
        """
        chunks: dict[int, list[bytes]] = {self.out: [], self.err: []}
        deadline = time.monotonic() + self.timeout
        try:
            while chunks.keys() - _closed(chunks):
                left = deadline - time.monotonic()
                waiting = list(chunks.keys() - _closed(chunks))
                ready = select.select(waiting, [], [], max(0, left))[0]
                if not ready:
                    import signal  # only for a tmux that does not answer

                    os.kill(self.pid, signal.SIGKILL)
                    os.waitpid(self.pid, 0)
                    return None
                for fd in ready:
                    chunks[fd].append(os.read(fd, 65536))
            _, status = os.waitpid(self.pid, 0)
        finally:
            os.close(self.out)
            os.close(self.err)
        code = os.waitstatus_to_exitcode(status)
        return code, b"".join(chunks[self.out]), b"".join(chunks[self.err])


def start(argv: list[str], timeout: float) -> Started | None:
    """Start ``argv`` (no shell), its outputs on pipes; None if it cannot be started.

    :func:`os.posix_spawn` and two pipes: what :func:`subprocess.Popen` does here,
    without importing it. The program runs while the caller does other work (a listing
    reads its sessions' files meanwhile); ``timeout`` is how long :meth:`Started.finish`
    waits for it.
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
        for fd in (out_read, err_read):
            os.close(fd)
        return None
    finally:
        os.close(out_write)
        os.close(err_write)
    return Started(pid, out_read, err_read, timeout)


def run(argv: list[str], timeout: float) -> tuple[int, bytes, bytes] | None:
    """Run ``argv`` (no shell) and return its exit code, stdout and stderr.

    None if it cannot be started or has not finished within ``timeout`` seconds (it is
    then killed).
    """
    started = start(argv, timeout)
    return None if started is None else started.finish()


def _closed(chunks: dict[int, list[bytes]]) -> set[int]:
    """Return the pipes that have reached their end (their last read gave nothing)."""
    return {fd for fd, read in chunks.items() if read and not read[-1]}


def tmux_sessions(project: str) -> Callable[[], Any]:
    """Start asking tmux for the project's live sessions; return how to get the answer.

    The answer is the set of sessions (None: tmux cannot be asked), or DECLINE. The
    argv and the reading of its answer are the tmux backend's own
    (:mod:`looprunner.backends.tmux_listing`), for the server ``LOOPRUNNER_TMUX_SOCKET``
    names.
    """
    tmux = tmux_listing.on_path("tmux")
    if tmux is None:
        return set
    argv = [
        tmux,
        *tmux_listing.socket_argv(os.environ.get(tmux_listing.SOCKET_ENV) or None),
        "list-sessions",
        "-F",
        tmux_listing.LIST_FORMAT,
    ]
    started = start(argv, TIMEOUT)
    return lambda: _sessions_in(None if started is None else started.finish(), project)


def _sessions_in(done: tuple[int, bytes, bytes] | None, project: str) -> Any:
    """Read tmux's answer to ``list-sessions`` as the tmux backend reads it."""
    if done is None:
        return None
    code, out, err = done
    try:
        text, errors = out.decode("utf-8"), err.decode("utf-8")
    except UnicodeDecodeError:  # the backend reads it in the locale's encoding: its way
        return DECLINE
    rows = tmux_listing.read_listing(code, text.splitlines(), errors.splitlines())
    return None if rows is None else set(tmux_listing.project_sessions(rows, project))


def inline_sessions(project: str) -> Callable[[], Any]:
    """Ask the inline backend for its live sessions: none, its lock says if it runs."""
    return set


#: each built-in backend: how to start asking for its live sessions (what that returns
#: gives the answer when called), and how it names one
BUILTIN: dict[str, tuple[Callable[[str], Callable[[], Any]], Callable[[str], str]]] = {
    "tmux": (tmux_sessions, tmux_listing.describe),
    "inline": (inline_sessions, lambda session: f"inline session of {session!r}"),
}
