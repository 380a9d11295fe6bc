"""The tmux backend: each engine runs in its own tmux session ``pipeline-NAME``.

The only module that imports libtmux. The server is chosen by
``LOOPRUNNER_TMUX_SOCKET`` (a ``tmux -L`` socket name; unset means the user's default
server), or injected as a ``libtmux.Server``. Sessions are started in argv form
(``new-session -d -s NAME -- ARGV...``), never through a shell string, targeted exactly
with ``=NAME`` (``-t pipeline-foo`` alone would also match ``pipeline-foobar``), and
marked with the user option ``@looprunner`` so nothing of anyone else's is ever touched.
"""

from __future__ import annotations

import os
import shutil
from typing import ClassVar

import libtmux
from libtmux.exc import LibTmuxException

from looprunner.errors import BackendError, BackendUnreachableError
from looprunner.names import TMUX_PREFIX, session_from_tmux_name, tmux_session_name
from looprunner.protocols import LaunchSpec

SOCKET_ENV = "LOOPRUNNER_TMUX_SOCKET"
MARK = "@looprunner"
_NO_SERVER = ("no server running", "error connecting to", "No such file or directory")


def server_from_env() -> libtmux.Server:
    """Return the tmux server looprunner uses (``LOOPRUNNER_TMUX_SOCKET`` or the default)."""
    socket = os.environ.get(SOCKET_ENV) or None
    return libtmux.Server(socket_name=socket)


class TmuxBackend:
    """Runs engines in detached tmux sessions."""

    name: ClassVar[str] = "tmux"

    def __init__(self, server: libtmux.Server | None = None) -> None:
        self.server = server if server is not None else server_from_env()

    def _run(self, *args: str) -> tuple[int, list[str], list[str]]:
        if shutil.which("tmux") is None:
            raise BackendUnreachableError("tmux is not installed (it is not on PATH)")
        try:
            result = self.server.cmd(*args)
        except LibTmuxException as exc:
            raise BackendUnreachableError(f"tmux failed: {exc}") from exc
        return int(result.returncode or 0), list(result.stdout), list(result.stderr)

    def launch(self, spec: LaunchSpec) -> None:
        """Start ``python -m looprunner engine ...`` in a new detached tmux session."""
        name = tmux_session_name(spec.session)
        code, _, err = self._run(
            "new-session",
            "-d",
            "-s",
            name,
            "-c",
            str(spec.project),
            "-x",
            "200",
            "-y",
            "50",
            "--",
            *spec.argv,
        )
        if code != 0:
            message = " ".join(err).strip() or f"exit status {code}"
            if "duplicate session" in message:
                from looprunner.errors import SessionConflictError

                raise SessionConflictError(
                    f"tmux session {name!r} already exists", session=spec.session
                )
            raise BackendError(f"tmux could not start {name!r}: {message}")
        # Mark it ours, and let it close when the engine exits even if the user's
        # tmux.conf keeps dead panes around (one tmux call for both).
        self._run(
            "set-option",
            "-t",
            f"={name}:",
            MARK,
            "1",
            ";",
            "set-option",
            "-w",
            "-t",
            f"={name}:",
            "remain-on-exit",
            "off",
        )

    def sessions(self) -> set[str] | None:
        """Return the looprunner sessions live in tmux (one tmux call for all of them).

        An absent server means no sessions; a server that exists but does not answer
        means we cannot know, and None is returned.
        """
        try:
            code, out, err = self._run("list-sessions", "-F", f"#{{session_name}}\t#{{{MARK}}}")
        except BackendUnreachableError:
            return None
        if code != 0:
            text = " ".join(err)
            if any(marker in text for marker in _NO_SERVER) and "Permission denied" not in text:
                return set()
            return None
        found = set()
        for line in out:
            tmux_name, _, mark = line.partition("\t")
            session = session_from_tmux_name(tmux_name)
            if session is not None and mark:
                found.add(session)
        return found

    def created(self) -> dict[str, int] | None:
        """Return when each of our live sessions was created (epoch seconds)."""
        try:
            code, out, _ = self._run(
                "list-sessions", "-F", f"#{{session_name}}\t#{{{MARK}}}\t#{{session_created}}"
            )
        except BackendUnreachableError:
            return None
        if code != 0:
            return {}
        found: dict[str, int] = {}
        for line in out:
            tmux_name, mark, created = [*line.split("\t"), "", ""][:3]
            session = session_from_tmux_name(tmux_name)
            if session is not None and mark and created.isdigit():
                found[session] = int(created)
        return found

    def capture(self, session: str, lines: int) -> list[str] | None:
        """Return the last ``lines`` lines of the session's pane, or None if it is gone."""
        name = tmux_session_name(session)
        try:
            code, out, _ = self._run(
                "capture-pane", "-p", "-J", "-t", f"={name}:", "-S", f"-{max(lines, 1)}"
            )
        except BackendUnreachableError:
            return None
        if code != 0:
            return None
        while out and not out[-1].strip():
            out.pop()
        return out[-lines:]

    def unmarked(self) -> set[str]:
        """Return ``pipeline-*`` tmux sessions that are not ours (never touched)."""
        try:
            code, out, _ = self._run("list-sessions", "-F", f"#{{session_name}}\t#{{{MARK}}}")
        except BackendUnreachableError:
            return set()
        if code != 0:
            return set()
        return {
            line.split("\t", 1)[0]
            for line in out
            if line.startswith(TMUX_PREFIX) and not line.partition("\t")[2]
        }

    def stop(self, session: str) -> bool:
        """Kill the tmux session of ``session`` if it is ours; return whether one was killed."""
        name = tmux_session_name(session)
        code, out, _ = self._run("show-options", "-t", f"={name}:", "-v", MARK)
        if code != 0 or not "".join(out).strip():
            return False
        code, _, _ = self._run("kill-session", "-t", f"={name}")
        return code == 0

    def attach_argv(self, session: str) -> list[str]:
        """Return the command that attaches a terminal (switch-client inside tmux)."""
        name = tmux_session_name(session)
        base = ["tmux"]
        socket = self.server.socket_name
        if socket:
            base += ["-L", socket]
        if os.environ.get("TMUX"):
            return [*base, "switch-client", "-t", f"={name}"]
        return [*base, "attach-session", "-t", f"={name}"]
