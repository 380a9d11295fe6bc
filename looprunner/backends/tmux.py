"""The tmux backend: each engine runs in its own tmux session ``pipeline-NAME``.

The only module that imports libtmux. The server is chosen by
``LOOPRUNNER_TMUX_SOCKET`` (a ``tmux -L`` socket name; unset means the user's default
server), or injected as a ``libtmux.Server``. Sessions are started in argv form
(``new-session -d -s NAME -- ARGV...``), never through a shell string, targeted exactly
with ``=NAME`` (``-t pipeline-foo`` alone would also match ``pipeline-foobar``), and
marked with the user option ``@looprunner`` set to the project's path, so nothing of
anyone else's (another project's session of the same name included) is ever touched.
``new-session`` runs with a minimal environment (:func:`launch_environment`), so a tmux
server it starts never keeps the launcher's secrets.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import attrs

if TYPE_CHECKING:
    import libtmux

    from looprunner.models import Check

from looprunner.backends.tmux_listing import (
    LIST_FORMAT,
    MARK,
    NO_SERVER,
    SOCKET_ENV,
    describe,
    on_path,
    project_sessions,
    read_listing,
    socket_argv,
)
from looprunner.errors import BackendError, BackendUnreachableError
from looprunner.names import session_from_tmux_name, tmux_session_name
from looprunner.protocols import LaunchSpec

#: what the tmux client that runs ``new-session`` keeps of the launcher's environment: a
#: server that this call starts keeps its client's environment for its whole life
#: (``tmux show-environment -g``), and the engine gets the real environment through the
#: FIFO handoff (``looprunner.handoff``) anyway
KEPT_VARIABLES = frozenset(
    {
        "PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "TMPDIR", "TMUX_TMPDIR",
        "LANG", "LANGUAGE", "TZ", "NO_COLOR", "VIRTUAL_ENV",
    }
)  # fmt: skip
#: prefixes of kept variables: locale, the interpreter's own (PYTHONPATH finds plugins
#: before the handoff), looprunner's settings (LOOPRUNNER_TMUX_SOCKET included)
KEPT_PREFIXES = ("LC_", "PYTHON", "LOOPRUNNER_")
#: a kept-by-prefix variable named like a secret is dropped all the same (the rule of
#: ``engine/redact.py``, repeated: a backend does not import the engine)
_SECRET_NAME = re.compile(
    r"(API_?KEY|TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|CREDENTIAL|PRIVATE_?KEY|AUTH(?!OR))",
    re.IGNORECASE,
)


def launch_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """Return the few variables of ``environ`` the tmux client of ``new-session`` gets."""
    return {
        name: value
        for name, value in environ.items()
        if name in KEPT_VARIABLES
        or (name.startswith(KEPT_PREFIXES) and not _SECRET_NAME.search(name))
    }


def server_from_env() -> libtmux.Server:
    """Return the libtmux server looprunner uses (``LOOPRUNNER_TMUX_SOCKET`` or the default)."""
    import libtmux

    return libtmux.Server(socket_name=os.environ.get(SOCKET_ENV) or None)


class TmuxBackend:
    """Runs engines in detached tmux sessions.

    Give it a ``libtmux.Server`` to drive a server of your own; without one it talks to
    the server ``LOOPRUNNER_TMUX_SOCKET`` names by running ``tmux`` directly, which
    spares every command-line call the cost of importing libtmux (about 50 ms).
    """

    name: ClassVar[str] = "tmux"
    #: a tmux call that takes longer than this is a server that does not answer
    TIMEOUT: ClassVar[float] = 10.0

    def __init__(self, server: libtmux.Server | None = None) -> None:
        self.server = server
        self.socket_name = (
            server.socket_name if server is not None else (os.environ.get(SOCKET_ENV) or None)
        )

    def _tmux_argv(self) -> list[str]:
        """Return ``tmux`` and the options that reach our server (its socket, its config)."""
        tmux = on_path("tmux")
        if tmux is None:
            raise BackendUnreachableError(
                "tmux is not installed (it is not on PATH): install it (apt-get install tmux, "
                "brew install tmux), or run the session in this terminal with --foreground"
            )
        server = self.server
        if server is None:
            return [tmux, *socket_argv(self.socket_name)]
        argv = [tmux]
        if server.socket_name:
            argv += ["-L", str(server.socket_name)]
        if server.socket_path:
            argv += ["-S", str(server.socket_path)]
        if server.config_file:
            argv += ["-f", str(server.config_file)]
        return argv

    def _run(
        self, *args: str, env: Mapping[str, str] | None = None
    ) -> tuple[int, list[str], list[str]]:
        if self.server is not None and env is None:
            from libtmux.exc import LibTmuxException

            try:
                result = self.server.cmd(*args)
            except LibTmuxException as exc:
                raise BackendUnreachableError(f"tmux failed: {exc}") from exc
            return int(result.returncode or 0), list(result.stdout), list(result.stderr)
        argv = [*self._tmux_argv(), *args]
        try:
            done = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=self.TIMEOUT,
                check=False,
                stdin=subprocess.DEVNULL,
                env=None if env is None else dict(env),
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise BackendUnreachableError(f"tmux did not answer: {exc}") from exc
        return done.returncode, done.stdout.splitlines(), done.stderr.splitlines()

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
            env=launch_environment(os.environ),
        )
        if code != 0:
            message = " ".join(err).strip() or f"exit status {code}"
            if "duplicate session" in message:
                from looprunner.errors import SessionConflictError

                other = self.owner(spec.session)
                whose = f" (it belongs to {other})" if other and other != str(spec.project) else ""
                raise SessionConflictError(
                    f"tmux session {name!r} already exists{whose}", session=spec.session
                )
            raise BackendError(f"tmux could not start {name!r}: {message}")
        # Mark it ours, and let it close when the engine exits even if the user's
        # tmux.conf keeps dead panes around (one tmux call for both).
        self._run(
            "set-option",
            "-t",
            f"={name}:",
            MARK,
            str(spec.project),
            ";",
            "set-option",
            "-w",
            "-t",
            f"={name}:",
            "remain-on-exit",
            "off",
        )

    def _listing(self) -> list[tuple[str, int, str]] | None:
        """Every tmux session as (name, created epoch, our mark); None if tmux cannot answer.

        An absent server, or no tmux at all, means no sessions; a server that exists but
        does not answer means we cannot know.
        """
        if on_path("tmux") is None:
            return []
        try:
            return read_listing(*self._run("list-sessions", "-F", LIST_FORMAT))
        except BackendUnreachableError:
            return None

    def created(self, project: Path) -> dict[str, float] | None:
        """Return this project's live sessions with when each was created (epoch seconds).

        A session is this project's when its ``@looprunner`` mark is the project's path:
        the same session name in another project is somebody else's.
        """
        rows = self._listing()
        return None if rows is None else project_sessions(rows, str(project))

    def sessions(self, project: Path) -> set[str] | None:
        """Return this project's live sessions (one tmux call for all of them)."""
        found = self.created(project)
        return None if found is None else set(found)

    def exited(self, project: Path) -> set[str] | None:
        """Return this project's sessions whose every pane is dead (one tmux call).

        launch turns ``remain-on-exit`` off for the engine's window, but a user's hook or
        a later ``set-option`` can turn it back on: the session then outlives its engine
        with a dead pane, and holds nothing that could still be running.
        """
        if on_path("tmux") is None:
            return set()
        try:
            code, out, err = self._run(
                "list-panes", "-a", "-F", f"#{{session_name}}\t#{{pane_dead}}\t#{{{MARK}}}"
            )
        except BackendUnreachableError:
            return None
        if code != 0:
            text = " ".join(err)
            return set() if any(marker in text for marker in NO_SERVER) else None
        alive: set[str] = set()
        dead: set[str] = set()
        for line in out:
            tmux_name, pane_dead, mark = [*line.split("\t"), "", ""][:3]
            session = session_from_tmux_name(tmux_name)
            if session is not None and mark == str(project):
                (dead if pane_dead == "1" else alive).add(session)
        return dead - alive

    def owner(self, session: str) -> str | None:
        """Return whose the live ``pipeline-NAME`` session is.

        A project path; ``""`` when looprunner did not create it; None when there is no
        such session.
        """
        for tmux_name, _, mark in self._listing() or []:
            if tmux_name == tmux_session_name(session):
                return mark
        return None

    def diagnose(self, env: Mapping[str, str]) -> Check:
        """Say whether tmux is installed, its version, and which server sessions use."""
        from looprunner.programs import program_check  # ``doctor`` only

        check = program_check(
            kind="backend",
            name=self.name,
            program="tmux",
            install="apt-get install tmux (or your system's package manager)",
            env=env,
            version_args=("-V",),
        )
        if not check.ok:
            return check
        server = f"server -L {self.socket_name}" if self.socket_name else "your default server"
        try:
            code, _, _ = self._run("list-sessions")
            running = "running" if code == 0 else "not running (started on the first start)"
        except BackendUnreachableError as exc:
            return attrs.evolve(check, ok=False, detail=f"{check.detail}; {server}: {exc}")
        return attrs.evolve(check, detail=f"{check.detail}; {server}: {running}")

    def describe(self, session: str) -> str:
        """Name the tmux session of ``session`` as users see it in ``tmux ls``."""
        tmux_session_name(session)  # validates it
        return describe(session)

    def check_launch(self, session: str, project: Path) -> None:
        """Refuse a name whose ``pipeline-NAME`` session belongs to someone else.

        Another project's session of the same name, or one looprunner did not create, is
        never touched: the user must choose another name.
        """
        holder = self.owner(session)
        if holder is None or holder == str(project):
            return
        from looprunner.errors import SessionConflictError

        whose = f"another project ({holder})" if holder else "no looprunner project"
        raise SessionConflictError(
            f"tmux session {tmux_session_name(session)} already exists and belongs to "
            f"{whose}; choose another name",
            session=session,
        )

    def capture(self, session: str, project: Path, lines: int) -> list[str] | None:
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

    def stop(self, session: str, project: Path) -> bool:
        """Kill the tmux session of ``session`` if this project's; return whether one was."""
        name = tmux_session_name(session)
        code, out, _ = self._run("show-options", "-t", f"={name}:", "-v", MARK)
        if code != 0 or "".join(out).strip() != str(project):
            return False
        code, _, _ = self._run("kill-session", "-t", f"={name}")
        return code == 0

    def attach_argv(self, session: str, project: Path) -> list[str]:
        """Return the command that attaches a terminal (switch-client inside tmux)."""
        name = tmux_session_name(session)
        base = ["tmux"]
        if self.socket_name:
            base += ["-L", self.socket_name]
        if os.environ.get("TMUX"):
            return [*base, "switch-client", "-t", f"={name}"]
        return [*base, "attach-session", "-t", f"={name}"]
