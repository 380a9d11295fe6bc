"""Containing what an agent starts: nothing it leaves outlives its iteration.

Signalling the agent's process group is not enough: agent CLIs start their tool
commands with ``setsid`` (a double fork, a session of their own) or move them to a
process group of their own, and those survive the group's SIGKILL. So when an agent has
exited (normally, at the timeout, or stopped by ``kill``) the engine *sweeps*: it ends
every process that is the agent's, which is any process started since the agent started
(start time from ``/proc``, this boot) that

1. belongs to the agent's session or process group (the agent leads both; ``setpgid``
   cannot leave the session, and a session or group id is not given to a new process
   while members of it live);
2. carries the agent's mark in its environment: the engine starts every agent with
   ``LOOPRUNNER_AGENT_MARK`` set to a random value, and a program that double-forks or
   calls ``setsid`` keeps its environment;
3. was adopted by an engine that owns its process: such an engine is a child subreaper
   (:func:`adopt`), so an orphan below the agent is re-parented to the engine, and every
   child of the engine outside the engine's own session is the agent's (the engine
   starts nothing else while an agent runs, its warden —
   :mod:`looprunner.engine.warden` — aside); this catches programs that also cleared
   their environment or cannot be read (non-dumpable ones, like ``ssh-agent``);
4. descends from any of these.

Each is sent SIGTERM, given the grace, then SIGKILL, and scanned for again until none
is left (a program that forks while it is being ended is found by the next round).
Signals go through a pidfd opened after the start time was checked, so a pid reused in
the meantime is never signalled; the engine collects the adopted ones that exit.

The sweep is cheap when nothing escaped: a process that adopts orphans (for good when
the engine owns it, only while an agent runs when the engine shares it: :func:`adopting`)
and has no child left once its agent was collected has, by construction, no descendant
at all — one ``waitid`` call answers. Otherwise it reads ``/proc/PID/stat`` of every
process, and the environment only of processes started since the agent.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import threading
import time
from collections.abc import Iterable, Iterator

import attrs

from looprunner import procinfo
from looprunner.engine import proctree
from looprunner.engine.proctree import Proc
from looprunner.engine.warden import WARDEN

#: the environment variable whose value marks every process an agent starts
MARK_ENV = "LOOPRUNNER_AGENT_MARK"
#: scans (each followed by SIGTERM or SIGKILL) before the sweep gives up
MAX_ROUNDS = 20
#: how long a SIGKILLed round is waited for before scanning again
KILL_WAIT = 2.0


def new_mark() -> str:
    """Return a fresh random mark for one agent run."""
    return secrets.token_hex(16)


@attrs.frozen
class Agent:
    """An agent process as recorded when it started: what its leftovers are found by."""

    pid: int
    #: start time in clock ticks since boot (None where ``/proc`` is missing)
    started: int | None
    mark: str | None
    #: the agent's session and group may be trusted (False when its pid names another
    #: process now, so a group or session with that id may be someone else's)
    trust_groups: bool = True


@attrs.frozen
class Adopter:
    """The engine's process, while a child subreaper: orphans below it come back to it."""

    pid: int
    sid: int
    #: the engine owns the process, so every adopted child outside its session is an
    #: agent's (rule 3); an engine sharing its caller's process cannot say that
    owns_process: bool


def adopt() -> Adopter | None:
    """Make this process adopt orphaned descendants for good (an engine's own process).

    None where the platform cannot.
    """
    if not proctree.become_subreaper():
        return None
    return Adopter(pid=os.getpid(), sid=os.getsid(0), owns_process=True)


_adopting_lock = threading.Lock()
_adopting_count = 0
_was_subreaper = False


@contextlib.contextmanager
def adopting(adopter: Adopter | None) -> Iterator[Adopter | None]:
    """Adopt orphans while one agent runs, in a process the engine shares (inline).

    ``adopter`` (an engine's own process, already adopting) is used as is. Otherwise the
    process is a child subreaper while any engine of it runs an agent, and goes back to
    what it was after the last one; so what an agent detaches stays findable by one
    system call, and the caller's process is changed only while its agents run.
    """
    global _adopting_count, _was_subreaper
    if adopter is not None:
        yield adopter
        return
    with _adopting_lock:
        if _adopting_count == 0:
            _was_subreaper = proctree.is_subreaper()
            on = _was_subreaper or proctree.become_subreaper()
        else:
            on = proctree.is_subreaper()
        _adopting_count += 1
    try:
        yield Adopter(os.getpid(), os.getsid(0), owns_process=False) if on else None
    finally:
        with _adopting_lock:
            _adopting_count -= 1
            if _adopting_count == 0 and not _was_subreaper:
                proctree.stop_adopting()


#: held while an agent is started and counted, and while a sweep looks at the process
#: table and at who runs: a sweep never sees an agent it does not know is one
spawn_lock = threading.Lock()
#: the agents this process runs now (pid -> mark): the branches of a parallel block run
#: several at once, and one agent's sweep must never take another's processes
_running: dict[int, str | None] = {}


def register(agent: Agent) -> None:
    """Count ``agent`` among the agents this process runs (call holding ``spawn_lock``)."""
    _running[agent.pid] = agent.mark


def unregister(agent: Agent) -> None:
    """Stop counting ``agent`` once it has been swept."""
    with spawn_lock:
        _running.pop(agent.pid, None)


def _owned_roots(
    agent: Agent, procs: dict[int, Proc], adopter: Adopter | None, others: set[int]
) -> set[int]:
    """Return the processes that are the agent's by rules 1 to 3 (module docstring).

    While other agents of this process run (a parallel block), their own processes and
    sessions are left alone, and rule 3 is not used: an adopted orphan without a mark
    could be theirs. The sweep after the last of them applies it.
    """
    me, warden = os.getpid(), WARDEN.pid
    since = agent.started
    roots: set[int] = set()
    marked: list[Proc] = []
    for proc in procs.values():
        if proc.pid in (me, warden) or (since is not None and proc.started < since):
            continue  # the engine and its warden, or older than the agent: never its own
        if others and (proc.pid in others or proc.sid in others or proc.pgrp in others):
            continue  # another agent of this process, or what it started in its session
        if (agent.trust_groups and agent.pid in (proc.sid, proc.pgrp)) or (
            not others
            and adopter is not None
            and adopter.owns_process
            and proc.ppid == adopter.pid
            and proc.sid != adopter.sid
        ):
            roots.add(proc.pid)
        elif agent.mark is not None and not proc.zombie:
            marked.append(proc)
    if marked and agent.mark is not None:  # environments are read last, for what is left
        below = _descendants(roots, procs)
        for proc in marked:
            if proc.pid not in below and proctree.environ_has(proc.pid, MARK_ENV, agent.mark):
                roots.add(proc.pid)
    return roots


def _descendants(roots: Iterable[int], procs: dict[int, Proc]) -> set[int]:
    """``roots`` and every process below them."""
    children: dict[int, list[int]] = {}
    for proc in procs.values():
        children.setdefault(proc.ppid, []).append(proc.pid)
    found = set(roots)
    todo = list(found)
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def leftovers(agent: Agent, *, adopter: Adopter | None = None) -> list[Proc]:
    """Every process that is the agent's, zombies included (module docstring)."""
    with spawn_lock:
        procs = proctree.snapshot()
        others = {pid for pid in _running if pid != agent.pid}
    owned = _descendants(_owned_roots(agent, procs, adopter, others), procs)
    owned.discard(os.getpid())
    return [procs[pid] for pid in sorted(owned) if pid in procs]


class _Target:
    """One process to end, held by a pidfd where the platform has them."""

    def __init__(self, proc: Proc, *, collect: bool) -> None:
        self.pid = proc.pid
        self.started = proc.started
        #: collect it once it has exited (an adopter's child: nobody else waits for it)
        self.collect = collect
        self.fd: int | None = None
        opener = getattr(os, "pidfd_open", None)
        if opener is not None:
            with contextlib.suppress(OSError):
                self.fd = opener(proc.pid)
        if not self.same():  # the pid was reused between the scan and the pidfd
            self.close()
            self.started = -1

    def same(self) -> bool:
        now = proctree.read(self.pid)
        return now is not None and now.started == self.started

    def send(self, sig: int) -> None:
        if self.started < 0:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
            if self.fd is not None:
                signal.pidfd_send_signal(self.fd, sig)
            elif self.same():
                os.kill(self.pid, sig)

    def gone(self) -> bool:
        """Tell whether the process is dead (collect it if it was this process's child)."""
        if self.started < 0:
            return True
        now = proctree.read(self.pid)
        if now is None or now.started != self.started:
            return True
        if now.zombie:
            if self.collect and now.ppid == os.getpid():
                proctree.reap(self.pid)
            return True
        return False

    def close(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None


def _wait_gone(targets: Iterable[_Target], seconds: float) -> None:
    pending = list(targets)
    deadline = time.monotonic() + seconds
    while True:
        pending = [t for t in pending if not t.gone()]
        if not pending or time.monotonic() >= deadline:
            return
        time.sleep(0.02)


def sweep(agent: Agent, grace: float, *, adopter: Adopter | None = None) -> int:
    """End every process the agent left: SIGTERM, up to ``grace`` s, then SIGKILL.

    Return how many processes were signalled. With an ``adopter``, the agent's
    processes it adopted are collected once they exit (nobody else waits for them); an
    engine sharing its process never collects a child: the child is its caller's.
    """
    collect = adopter is not None
    targets: dict[int, _Target] = {}
    try:
        for round_ in range(MAX_ROUNDS):
            found = leftovers(agent, adopter=adopter)
            for proc in found:
                if collect and proc.zombie and proc.ppid == os.getpid():
                    proctree.reap(proc.pid)
            live = [p for p in found if not p.zombie]
            if not live:
                break
            batch = []
            for proc in live:
                target = targets.get(proc.pid)
                if target is None or target.started != proc.started:
                    target = targets[proc.pid] = _Target(proc, collect=collect)
                batch.append(target)
            sig = signal.SIGTERM if round_ == 0 else signal.SIGKILL
            for target in batch:
                target.send(sig)
            _wait_gone(batch, grace if round_ == 0 else KILL_WAIT)
    finally:
        for target in targets.values():
            target.close()
    return len(targets)


def sweep_after(agent: Agent, grace: float, *, adopter: Adopter | None) -> int:
    """Sweep once the agent was collected; with an adopter, skip it when nothing is left.

    A process that adopted orphans since before the agent started and has no child
    left has no descendant, so nothing of the agent's can live: one system call.
    Otherwise the full sweep runs.
    """
    if adopter is not None and not proctree.has_children(besides=WARDEN.pid):
        return 0
    return sweep(agent, grace, adopter=adopter)


def stop_leftovers(
    pid: int | None,
    started: int | None,
    boot: str | None,
    mark: str | None,
    grace: float,
) -> int:
    """End what a dead engine's agent left; return how many processes were signalled.

    Used by ``kill``, ``cleanup --fix`` and ``resume`` with the agent recorded in state.
    Nothing is done after a reboot. The agent's session and group are trusted when no
    process has the agent's pid any more or it is still the recorded process (same
    start time), never when the pid names another process now; the mark and the start
    time need no such care: only the agent's processes carry the one, and none of them
    started before it.
    """
    if not pid or (boot is not None and procinfo.boot_id() not in (None, boot)):
        return 0
    leader_now = procinfo.start_time(pid)
    trust = leader_now is None or (started is not None and leader_now == started)
    return sweep(Agent(pid, started, mark, trust_groups=trust), grace)
