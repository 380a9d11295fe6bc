"""Running one agent process: its own process group, a timeout, and a clean stop.

The agent runs as the leader of a new session (so of a new process group); stopping it
signals the whole group, SIGTERM first and SIGKILL after a grace period, so nothing it
started is left behind. The prompt goes to its stdin from a thread, so a large prompt
and a chatty agent cannot deadlock each other. Waiting is event-driven: the engine
sleeps in ``select`` on the agent's output, its exit (a pidfd on Linux) and a wake-up
pipe the stop request writes to.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import attrs

from looprunner.models import AgentCommand

DEFAULT_GRACE = 10.0
GRACE_ENV = "LOOPRUNNER_KILL_GRACE"


def kill_grace() -> float:
    """Seconds between SIGTERM and SIGKILL (``LOOPRUNNER_KILL_GRACE`` overrides)."""
    try:
        return max(0.0, float(os.environ.get(GRACE_ENV, DEFAULT_GRACE)))
    except ValueError:
        return DEFAULT_GRACE


@attrs.frozen
class ProcessResult:
    """How an agent process ended."""

    exit_code: int | None
    timed_out: bool
    stopped: bool
    duration: float
    spawn_error: str | None = None


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Ask Linux to SIGTERM the agent if the engine dies (SIGKILL included)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            libc = ctypes.CDLL(None, use_errno=True)
            pr_set_pdeathsig = 1
            libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` to a process group; return False if the group no longer exists."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    return True


def group_alive(pgid: int) -> bool:
    """Tell whether any live (not zombie) process of group ``pgid`` still exists.

    ``killpg(pgid, 0)`` answers in one call and is usually enough; it also counts
    zombies, which are dead but wait for their parent (or init) to reap them, so when
    it says yes, ``/proc`` is asked which members are really alive.
    """
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_bytes()
        except OSError:
            continue
        fields = raw[raw.rfind(b")") + 2 :].split()
        if len(fields) > 2 and fields[2] == str(pgid).encode() and fields[0] != b"Z":
            return True
    return False


def stop_group(pgid: int, grace: float) -> None:
    """SIGTERM the group, wait up to ``grace`` seconds, then SIGKILL what is left."""
    if not signal_group(pgid, signal.SIGTERM):
        return
    deadline = time.monotonic() + grace
    while group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    signal_group(pgid, signal.SIGKILL)


def stop_leftover_group(
    pgid: int | None, started: int | None, boot: str | None, grace: float
) -> bool:
    """Stop what is left of an agent's process group after its engine died.

    The agent (the group's leader, pid ``pgid``, started at ``started``) may be gone
    while programs it started live on. Its group is signalled when the leader is still
    the recorded process, or when no process has the leader's pid any more: a group id
    is never given to a new process while members of the group exist, so the members
    are the agent's. A pid now used by another process is never signalled, nor is
    anything after a reboot. Return whether anything was stopped.
    """
    from looprunner import procinfo

    if not pgid or (boot is not None and procinfo.boot_id() not in (None, boot)):
        return False
    leader_now = procinfo.start_time(pgid)
    if leader_now is not None and (started is None or leader_now != started):
        return False  # the pid belongs to another process now (or cannot be told apart)
    if not group_alive(pgid):
        return False
    stop_group(pgid, grace)
    return True


class AgentRunner:
    """Runs agent commands one at a time; :meth:`request_stop` may come from any thread."""

    def __init__(self) -> None:
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._stop = threading.Event()
        self._children: list[AgentRunner] = []

    @property
    def stop_requested(self) -> bool:
        """True once a stop was requested."""
        return self._stop.is_set()

    def request_stop(self) -> None:
        """Stop the running agent (and any later one); safe from a signal handler.

        The runners made by :meth:`child` are stopped too.
        """
        self._stop.set()
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        for child in tuple(self._children):
            child.request_stop()

    def child(self) -> AgentRunner:
        """Return a runner for another thread that stops when this one does.

        Each branch of a parallel block runs its agents on a child, so ``kill`` (which
        stops the engine's runner) stops every branch's agent, while one branch failing
        stops only the branches it is told to.
        """
        runner = AgentRunner()
        self._children.append(runner)
        if self._stop.is_set():
            runner.request_stop()
        return runner

    def forget(self, child: AgentRunner) -> None:
        """Drop a child whose branch has ended, and close it."""
        with contextlib.suppress(ValueError):
            self._children.remove(child)
        child.close()

    def wait_stop(self, seconds: float) -> bool:
        """Sleep up to ``seconds`` unless a stop is requested; return whether it was."""
        return self._stop.wait(seconds) if seconds > 0 else self._stop.is_set()

    def close(self) -> None:
        """Release the wake-up pipe."""
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def run(
        self,
        command: AgentCommand,
        *,
        cwd: Path,
        env: Mapping[str, str],
        timeout: float | None,
        on_output: Callable[[bytes], None],
        on_start: Callable[[int], None] = lambda pid: None,
        grace: float | None = None,
    ) -> ProcessResult:
        """Run ``command`` to its end, streaming its output to ``on_output``."""
        grace = kill_grace() if grace is None else grace
        full_env = {k: v for k, v in env.items() if k not in command.unset_env}
        full_env.update(command.env)
        started = time.monotonic()
        if self._stop.is_set():
            return ProcessResult(None, timed_out=False, stopped=True, duration=0.0)
        try:
            proc = subprocess.Popen(
                list(command.argv),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=full_env,
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
        except OSError as exc:
            return ProcessResult(
                None, timed_out=False, stopped=False, duration=0.0, spawn_error=str(exc)
            )
        on_start(proc.pid)
        writer = threading.Thread(target=_feed, args=(proc, command.stdin), daemon=True)
        writer.start()
        timed_out = stopped = False
        kill_at: float | None = None
        deadline = started + timeout if timeout else None
        assert proc.stdout is not None
        out_fd = proc.stdout.fileno()
        os.set_blocking(out_fd, False)
        selector = selectors.DefaultSelector()
        selector.register(out_fd, selectors.EVENT_READ, "out")
        selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        pidfd = _pidfd(proc.pid)
        if pidfd is not None:
            selector.register(pidfd, selectors.EVENT_READ, "exit")
        out_open = True
        exited = False
        try:
            while not exited:
                now = time.monotonic()
                if self._stop.is_set() and not stopped:
                    stopped = True
                    signal_group(proc.pid, signal.SIGTERM)
                    kill_at = now + grace
                if deadline is not None and now >= deadline and not (timed_out or stopped):
                    timed_out = True
                    signal_group(proc.pid, signal.SIGTERM)
                    kill_at = now + grace
                if kill_at is not None and now >= kill_at:
                    signal_group(proc.pid, signal.SIGKILL)
                    kill_at = None
                waits = [t - now for t in (deadline, kill_at) if t is not None and t > now]
                if pidfd is None and not out_open:
                    waits.append(0.1)  # no exit notification on this platform: look again soon
                for key, _ in selector.select(min(waits) if waits else None):
                    if key.data == "out":
                        chunk = _read(out_fd)
                        if chunk:
                            on_output(chunk)
                        elif chunk == b"":
                            selector.unregister(out_fd)
                            out_open = False
                    elif key.data == "wake":
                        _read(self._wake_r)
                    elif key.data == "exit":
                        exited = True
                if pidfd is None and not out_open and proc.poll() is not None:
                    exited = True
            if out_open:
                _drain(out_fd, on_output)  # what it wrote just before exiting
        finally:
            selector.close()
            if pidfd is not None:
                os.close(pidfd)
            if proc.poll() is None:  # only when interrupted by an exception
                stop_group(proc.pid, grace)
            proc.wait()
            # whatever the agent started and left running goes with it
            if group_alive(proc.pid):
                stop_group(proc.pid, min(grace, 2.0))
            proc.stdout.close()
            writer.join(timeout=1)
        exit_code = proc.wait()
        return ProcessResult(
            exit_code, timed_out=timed_out, stopped=stopped, duration=time.monotonic() - started
        )


def _feed(proc: subprocess.Popen[bytes], text: str) -> None:
    assert proc.stdin is not None
    with contextlib.suppress(OSError, ValueError):
        proc.stdin.write(text.encode("utf-8"))
    with contextlib.suppress(OSError, ValueError):
        proc.stdin.close()


def _read(fd: int) -> bytes | None:
    """Read what is there: bytes, b"" at end of file, None if nothing after all."""
    try:
        return os.read(fd, 65536)
    except BlockingIOError:
        return None
    except OSError:
        return b""


def _drain(fd: int, on_output: Callable[[bytes], None]) -> None:
    """Read what the agent wrote before it exited (a child may keep the pipe open)."""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except (BlockingIOError, OSError):
            return
        if not chunk:
            return
        on_output(chunk)


def _pidfd(pid: int) -> int | None:
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        fd: int = opener(pid)
    except OSError:
        return None
    return fd
