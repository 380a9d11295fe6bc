"""The agents' warden: a small process that ends an engine's agents when the engine dies.

An agent runs in a session of its own (so that ``kill`` can end its whole process group),
which also puts it out of reach of what ends the engine: a SIGKILL, tmux closing the
engine's pane. Something must end it then. Linux's parent-death signal can, but only a
process can ask for it for itself, between ``fork`` and ``exec``: from Python that takes
either a fork of the whole engine running Python in the copy (``preexec_fn``), or an
extra program exec'd in front of every agent (``setpriv --pdeathsig``), which cost 1.2 to
1.9 ms of every iteration on the machine looprunner is developed on.

So each engine process starts, once, a warden: ``/bin/sh`` running a fixed script (no
text of anyone's is ever put in it), in a session of its own, reading the engine's
messages on a pipe: ``+ PID`` when an agent starts, ``- PID`` when it has ended (sent
before the engine reaps it, so the pid cannot name another process yet). When the
engine dies, however it dies, the kernel closes the pipe; the warden reads the end of
it and sends SIGTERM to the process group of every agent still listed — the agent and
whatever it started in its group — then exits. It ignores the hang-up and interrupt
signals that tmux and a terminal send the engine's group, and lives in a session of its
own, so what ends the engine does not end it first. An engine that exits normally has
no agent listed, and its warden simply exits.

Where there is no ``/bin/sh``, or the warden cannot be started or has died and cannot be
started again, :mod:`looprunner.engine.spawn` falls back to the parent-death signal.
"""

from __future__ import annotations

import os
import subprocess
import threading

#: the warden's whole program: the list of live agents, and their groups ended at EOF
SCRIPT = """
trap '' HUP INT QUIT TERM PIPE
agents=
while read -r change pid; do
  case $change in
    +) agents="$agents $pid" ;;
    -) kept=; for one in $agents; do [ "$one" = "$pid" ] || kept="$kept $one"; done
       agents=$kept ;;
  esac
done
for one in $agents; do kill -TERM "-$one" 2>/dev/null; done
"""
SHELL = "/bin/sh"
#: the warden's environment: nothing of the engine's (its secrets included)
ENVIRONMENT = {"PATH": "/usr/bin:/bin", "LC_ALL": "C"}


class Warden:
    """One warden process, started on first use; safe to use from several threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._owner = os.getpid()

    @property
    def pid(self) -> int | None:
        """The warden's pid while it runs for this process (None: none runs)."""
        proc = self._proc
        if proc is None or self._owner != os.getpid() or proc.returncode is not None:
            return None
        return proc.pid

    def ready(self) -> bool:
        """Start the warden if it is not running; tell whether it runs now."""
        with self._lock:
            return self._running()

    def _running(self) -> bool:
        if self._owner != os.getpid():  # a forked copy of the engine: not its warden
            self._proc, self._owner = None, os.getpid()
        if self._proc is not None and self._proc.poll() is None:
            return True
        if not os.access(SHELL, os.X_OK):
            return False
        try:
            self._proc = subprocess.Popen(
                [SHELL, "-c", SCRIPT],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=ENVIRONMENT,
                cwd="/",
                start_new_session=True,
            )
        except OSError:
            self._proc = None
            return False
        return True

    def watch(self, pid: int) -> bool:
        """List agent ``pid``: its group is ended if this process dies. False: not listed."""
        return self._tell(f"+ {pid}\n")

    def forget(self, pid: int) -> None:
        """Unlist agent ``pid`` (it has ended; call before reaping it)."""
        self._tell(f"- {pid}\n")

    def _tell(self, message: str) -> bool:
        with self._lock:
            proc = self._proc
            if proc is None or proc.stdin is None or self._owner != os.getpid():
                return False
            try:
                os.write(proc.stdin.fileno(), message.encode("ascii"))
            except OSError:  # it died: the next agent gets a new one, or the signal
                return False
            return True


#: the warden of this process's agents
WARDEN = Warden()
