"""Running one agent process: its own process group, a timeout, and a clean stop.

The agent runs as the leader of a new session (so of a new process group); stopping it
signals the whole group, SIGTERM first and SIGKILL after a grace period. Once it has
exited, whatever it started and left running — in its group or escaped from it — is
swept (:mod:`looprunner.engine.contain`), so nothing it started is left behind. The
prompt goes to its stdin at once, or from a thread when the pipe cannot take it whole,
so a large prompt and a chatty agent cannot deadlock each other
(:mod:`looprunner.engine.pipes`). Waiting is event-driven: the engine sleeps in
``select`` on the agent's output, its exit (a pidfd on Linux) and a wake-up pipe the
stop request writes to.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import attrs

from looprunner.engine import contain, pipes, proctree, spawn
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
    #: processes the agent left running that were ended after it exited
    leftovers: int = 0
    #: stopped for printing nothing and changing no watched file for the idle timeout
    stalled: bool = False


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


class AgentRunner:
    """Runs agent commands one at a time; :meth:`request_stop` may come from any thread.

    ``adopter`` is set when the engine owns its process and adopts orphans for good
    (:func:`looprunner.engine.contain.adopt`); otherwise the process adopts them only
    while an agent runs (:func:`looprunner.engine.contain.adopting`). Either way the
    sweep after each agent is one system call when the agent left nothing.
    """

    def __init__(self, adopter: contain.Adopter | None = None) -> None:
        self.adopter = adopter
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
        runner = AgentRunner(self.adopter)
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
        mark: str | None = None,
        idle_timeout: float | None = None,
        watch: tuple[Path, ...] = (),
    ) -> ProcessResult:
        """Run ``command`` to its end, streaming its output to ``on_output``.

        ``mark`` is put in the agent's environment (``LOOPRUNNER_AGENT_MARK``) so what it
        starts can be found; a fresh one is made when none is given. With
        ``idle_timeout``, an agent that prints nothing and changes none of the files
        under ``watch`` for that many seconds is stopped as stalled.
        """
        grace = kill_grace() if grace is None else grace
        full_env = {k: v for k, v in env.items() if k not in command.unset_env}
        full_env.update(command.env)
        full_env[contain.MARK_ENV] = mark or contain.new_mark()
        if self._stop.is_set():
            return ProcessResult(None, timed_out=False, stopped=True, duration=0.0)
        with contain.adopting(self.adopter) as adopter:
            return self._run(
                command,
                cwd=cwd,
                env=full_env,
                timeout=timeout,
                on_output=on_output,
                on_start=on_start,
                grace=grace,
                adopter=adopter,
                idle=_Idle(idle_timeout, watch),
            )

    def _run(
        self,
        command: AgentCommand,
        *,
        cwd: Path,
        env: dict[str, str],
        timeout: float | None,
        on_output: Callable[[bytes], None],
        on_start: Callable[[int], None],
        grace: float,
        adopter: contain.Adopter | None,
        idle: _Idle,
    ) -> ProcessResult:
        """Start the agent, watch it to its end, and sweep what it left."""
        with contain.spawn_lock:  # counted before a sibling's sweep can see it
            # the agent's time counts from its spawn (not from the wait for this lock, a
            # sibling's sweep): the fork, and the wait below for its start time (the first
            # read of ``/proc`` waits while the new program starts), are the agent's
            started = time.monotonic()
            try:
                proc = spawn.start(command.argv, cwd=cwd, env=env)
            except OSError as exc:
                return ProcessResult(
                    None, timed_out=False, stopped=False, duration=0.0, spawn_error=str(exc)
                )
            begun = proctree.read(proc.pid)  # readable until collected, even if it exited
            agent = contain.Agent(proc.pid, begun.started if begun else None, env[contain.MARK_ENV])
            contain.register(agent)
        try:
            return self._watch(
                proc, agent, command, started, timeout, on_output, on_start, grace, adopter, idle
            )
        finally:
            contain.unregister(agent)

    def _watch(
        self,
        proc: subprocess.Popen[bytes],
        agent: contain.Agent,
        command: AgentCommand,
        started: float,
        timeout: float | None,
        on_output: Callable[[bytes], None],
        on_start: Callable[[int], None],
        grace: float,
        adopter: contain.Adopter | None,
        idle: _Idle,
    ) -> ProcessResult:
        """Watch the agent started at ``started`` to its end (output, timeout, stop), sweep."""
        idle.start(started)
        on_start(proc.pid)
        writer = pipes.start_feeding(proc, command.stdin)
        timed_out = stopped = stalled = False
        kill_at: float | None = None
        deadline = started + timeout if timeout else None
        assert proc.stdout is not None
        out_fd = proc.stdout.fileno()
        os.set_blocking(out_fd, False)
        selector = selectors.DefaultSelector()
        selector.register(out_fd, selectors.EVENT_READ, "out")
        selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        pidfd = pipes.pidfd(proc.pid)
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
                if not (timed_out or stopped or stalled) and idle.expired(now):
                    stalled = True
                    signal_group(proc.pid, signal.SIGTERM)
                    kill_at = now + grace
                if kill_at is not None and now >= kill_at:
                    signal_group(proc.pid, signal.SIGKILL)
                    kill_at = None
                checks = (deadline, kill_at, None if stalled else idle.due)
                waits = [t - now for t in checks if t is not None and t > now]
                if pidfd is None and not out_open:
                    waits.append(0.1)  # no exit notification on this platform: look again soon
                for key, _ in selector.select(min(waits) if waits else None):
                    if key.data == "out":
                        chunk = pipes.read(out_fd)
                        if chunk:
                            idle.active(time.monotonic())
                            on_output(chunk)
                        elif chunk == b"":
                            selector.unregister(out_fd)
                            out_open = False
                    elif key.data == "wake":
                        pipes.read(self._wake_r)
                    elif key.data == "exit":
                        exited = True
                if pidfd is None and not out_open and pipes.has_exited(proc.pid):
                    exited = True
            if out_open:
                pipes.drain(out_fd, on_output)  # what it wrote just before exiting
        finally:
            selector.close()
            if pidfd is not None:
                os.close(pidfd)
            if not pipes.has_exited(proc.pid):  # only when interrupted by an exception
                stop_group(proc.pid, grace)
            # ended, and not reaped yet: its pid (and group id) can name no other process
            spawn.released(proc.pid)
            proc.wait()
            # whatever the agent started and left running goes with it
            left = contain.sweep_after(agent, min(grace, 2.0), adopter=adopter)
            proc.stdout.close()
            if writer is not None:
                writer.join(timeout=1)
        exit_code = proc.wait()
        return ProcessResult(
            exit_code,
            timed_out=timed_out,
            stopped=stopped,
            duration=time.monotonic() - started,
            leftovers=left,
            stalled=stalled,
        )


#: files looked at per idle check, at most: a folder the agent fills is still watched
MAX_WATCHED = 2000


class _Idle:
    """Tells when an agent has printed nothing and changed no watched file for too long.

    Output marks activity at once; files are looked at only when the idle time is up, and
    a change seen then starts a new idle period, so an agent is called stalled only after
    at least ``seconds`` without either.
    """

    def __init__(self, seconds: float | None, watch: tuple[Path, ...]) -> None:
        self.seconds = seconds
        self.watch = watch
        self.due: float | None = None
        self._seen: frozenset[tuple[str, int, int]] = frozenset()

    def start(self, now: float) -> None:
        if self.seconds:
            self.due = now + self.seconds
            self._seen = self._look()

    def active(self, now: float) -> None:
        if self.seconds:
            self.due = now + self.seconds

    def expired(self, now: float) -> bool:
        """Tell whether the idle time is up with no watched file changed meanwhile."""
        if self.due is None or self.seconds is None or now < self.due:
            return False
        seen = self._look()
        if seen != self._seen:
            self._seen = seen
            self.due = now + self.seconds
            return False
        return True

    def _look(self) -> frozenset[tuple[str, int, int]]:
        found: set[tuple[str, int, int]] = set()
        for root in self.watch:
            paths = root.rglob("*") if root.is_dir() else iter((root,))
            try:
                for path in paths:
                    if len(found) >= MAX_WATCHED:
                        break
                    with contextlib.suppress(OSError):
                        info = path.stat()
                        found.add((str(path), info.st_mtime_ns, info.st_size))
            except OSError:
                continue
        return frozenset(found)
