"""Looking at a session without changing it: health, events, output, waiting.

Health is derived from all three resources: the lock, the state, and what the session's
own backend (the one recorded in its state) says is live. Each look asks that backend
once; a listing passes in what one question per backend already answered.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING

from looprunner import procinfo
from looprunner.errors import LooprunnerError, SessionNotFoundError, SessionTimeoutError
from looprunner.health import derive_health
from looprunner.models import (
    BranchProgress,
    Event,
    Health,
    LockInfo,
    Resources,
    RunState,
    SessionStatus,
)
from looprunner.names import SessionPaths
from looprunner.protocols import OutputCapturing, QueueCounting, StageProgress
from looprunner.session.ref import Plugins, SessionRef
from looprunner.store import holders, records
from looprunner.store.diskfault import ended_by_fault
from looprunner.store.events import iter_events, last_events, parse_event_line
from looprunner.store.logs import follow, last_lines, rotated, size
from looprunner.store.projection import read_projected

if TYPE_CHECKING:
    from looprunner.models import Pipeline, Termination

#: what a listing learned of each backend: its live sessions (None: it cannot tell)
LiveSessions = MutableMapping[str, "set[str] | None"]


def live_sessions(
    plugins: Plugins,
    project: Path,
    backend_name: str | None,
    cache: LiveSessions,
    options: Mapping[str, str] | None = None,
) -> set[str] | None:
    """Ask the backend ``backend_name`` (the default if None) for its live sessions, once.

    ``options`` are the backend options a session was launched with: a backend set
    differently (another cluster) is another question.
    """
    try:
        backend = (
            plugins.backend(backend_name, options) if backend_name else plugins.default_backend()
        )
    except LooprunnerError:
        return None  # not installed any more: its sessions cannot be known
    key = backend.name + (json.dumps(sorted(options.items())) if options else "")
    if key not in cache:
        try:
            cache[key] = backend.sessions(project)
        except LooprunnerError:
            cache[key] = None  # unreachable: cannot know
    return cache[key]


#: a state file as read: the state (None if absent or unreadable), and whether unreadable
Recorded = tuple["RunState | None", bool]


def read_recorded(ref: SessionRef) -> Recorded:
    """Read the session's state file once: its state, and whether it is unreadable."""
    try:
        return read_projected(ref.paths.state_file, ref.paths.events_file), False
    except ValueError:
        return None, True


def status(
    ref: SessionRef,
    cache: LiveSessions | None = None,
    recorded: Recorded | None = None,
    view: holders.LockView | None = None,
) -> SessionStatus:
    """Return the session's health and state, from lock, state file and its backend.

    ``recorded`` is the state file as a listing already read it; ``view`` the lock as
    the caller left it (``kill`` reports the session as it left it, not as a command
    that took the lock since found it).
    """
    if ref.kept is not None:
        return kept_status(ref, recorded)
    view = holders.look(ref.paths.lock_file) if view is None else view
    probe = view.probe
    held = view.ours  # a stranger's lock on the file is no engine of this session
    state, unreadable = read_recorded(ref) if recorded is None else recorded
    fault = None
    if not probe.held:  # an ending the engine could write only in the lock file
        state, fault = ended_by_fault(probe.metadata, state)
    backend_name = (
        state.backend
        if state is not None
        else (probe.metadata.get("backend") if probe.present else None)
    )
    if not isinstance(backend_name, str):
        backend_name = None
    live = live_sessions(
        ref.plugins,
        ref.project,
        backend_name,
        {} if cache is None else cache,
        ref.backend_options() if backend_name else None,
    )
    present = None if live is None else ref.name in live
    engine_alive = (
        not held
        and state is not None
        and not state.status.finished
        and procinfo.is_alive(state.pid, state.pid_start_time, state.boot_id)
    )
    meta = probe.metadata
    pid = meta.get("pid") if isinstance(meta.get("pid"), int) else None
    engine_pid = pid if held and pid else (state.pid if state is not None else None)
    health, detail = derive_health(
        state=state,
        lock_held=held,
        tmux_present=present,
        state_unreadable=unreadable,
        engine_alive=engine_alive,
        backend=backend_name,
        stopped_pid=engine_pid
        if (held or engine_alive) and procinfo.is_stopped(engine_pid)
        else None,
        fault=fault,
        foreign=view.foreign.sentence(ref.paths.lock_file) if view.foreign else None,
    )
    if view.launching is not None and detail is None:
        detail = f"its engine is starting (launched by pid {view.launching})"
    lock_info = LockInfo(
        present=probe.present,
        held=held,
        pid=pid,
        pid_alive=procinfo.is_alive(pid, meta.get("pid_start_time"), meta.get("boot_id"))
        if pid
        else None,
        host=meta.get("host"),
        started_at=meta.get("started_at"),
        foreign=view.foreign is not None,
        foreign_pid=view.foreign.pid if view.foreign else None,
        foreign_user=view.foreign.user if view.foreign else None,
    )
    return SessionStatus(
        branches=branch_progress(ref.paths, state),
        session=ref.name,
        health=health,
        resources=Resources(
            lock=probe.present, state=state is not None or unreadable, tmux=present
        ),
        state=state,
        lock=lock_info,
        detail=detail,
        fault=fault,
    )


def kept_status(ref: SessionRef, recorded: Recorded | None = None) -> SessionStatus:
    """Return the status of an earlier run kept aside, from its state alone.

    Its engine was gone before ``start --force`` moved it aside, and it has no lock or
    backend session of its own: neither is asked. A run that never recorded an ending
    is ``crashed``, for good (only its session can be resumed).
    """
    kept = ref.kept
    assert kept is not None
    state, unreadable = read_recorded(ref) if recorded is None else recorded
    note = f"an earlier run of session {kept.session!r}, moved aside at {kept.kept_at}"
    detail: str | None
    if state is None and not ref.paths.run_dir.is_dir():
        health, detail = Health.NOT_FOUND, None
    elif state is None:
        missing = "state.json cannot be read" if unreadable else "it has no state.json"
        health, detail = Health.UNKNOWN, f"{note}; {missing}"
    else:
        health, why = derive_health(state=state, lock_held=False, tmux_present=False)
        detail = f"{note}; {why}" if why else note
    return SessionStatus(
        session=ref.name,
        health=health,
        resources=Resources(lock=False, state=state is not None or unreadable, tmux=False),
        state=state,
        detail=detail,
        branches=branch_progress(ref.paths, state),
    )


def branch_progress(paths: SessionPaths, state: RunState | None) -> tuple[BranchProgress, ...]:
    """Read each provider's progress when the session's current node is a parallel block.

    One ``stat`` for any other session; for a block, each provider's ``state.json`` and
    its last completed iteration's ``status.json``.
    """
    if state is None or not state.stages:
        return ()
    block = paths.block_dir(state.current_stage, state.current.id)
    try:
        folders = sorted(entry for entry in block.iterdir() if entry.is_dir())
    except OSError:
        return ()
    from looprunner.engine.agent_status import StatusProblem, read_agent_status

    found = []
    for folder in folders:
        try:
            where = paths.branch(state.current_stage, state.current.id, folder.name)
            branch = read_projected(
                where.state_file,
                where.events_file,
                tags={"provider": folder.name, "block": state.current.id},
            )
        except (ValueError, LooprunnerError):  # not a branch of ours, or unreadable
            continue
        if branch is None or not branch.stages:
            continue
        index = min(branch.current_stage, len(branch.stages) - 1)
        stage = branch.stages[index]
        decision = None
        if stage.iterations_completed:
            status_file = (
                where.iteration_dir(index, stage.id, stage.iterations_completed) / "status.json"
            )
            with contextlib.suppress(StatusProblem):
                decision = read_agent_status(status_file).decision.value
        shown = branch.status.value
        if not branch.status.finished and not procinfo.is_alive(
            branch.pid, branch.pid_start_time, branch.boot_id
        ):
            shown = "crashed"  # its engine died inside the block; resume continues it
        found.append(
            BranchProgress(
                name=folder.name,
                status=shown,
                stage=stage.id,
                stage_index=index,
                stages=len(branch.stages),
                iteration=stage.iterations_completed,
                max_iterations=stage.max_iterations,
                decision=decision,
            )
        )
    return tuple(found)


def events(ref: SessionRef, *, last: int | None = None) -> Iterator[Event]:
    """Return the recorded events, oldest first (``last=N``: only the last N)."""
    if last is not None:
        return iter(last_events(ref.paths.events_file, last))
    return iter_events(ref.paths.events_file)


def wait(
    ref: SessionRef,
    timeout: float | None,
    *,
    poll: float,
    on_progress: Callable[[SessionStatus], None] | None,
) -> SessionStatus:
    """Block until the session is no longer running; return its final status."""
    deadline = None if timeout is None else time.monotonic() + timeout
    cache: LiveSessions = {}
    orphaned_before = False
    while True:
        current = status(ref, cache)
        if current.health is Health.NOT_FOUND:
            raise SessionNotFoundError(f"no session named {ref.name!r}", session=ref.name)
        if on_progress is not None:
            on_progress(current)
        if current.health not in (Health.RUNNING, Health.UNKNOWN):
            if current.health is not Health.ORPHANED or orphaned_before:
                return current
            # an engine that just exited leaves its backend session for an instant:
            # look once more before calling it orphaned
            orphaned_before = True
            cache.clear()
            continue
        if deadline is not None and time.monotonic() >= deadline:
            raise SessionTimeoutError(
                f"session {ref.name!r} still {current.health.value} after {timeout:g}s",
                session=ref.name,
            )
        time.sleep(poll if deadline is None else max(0.0, min(poll, deadline - time.monotonic())))
        if current.resources.tmux:
            cache.clear()  # it has a live backend session: ask again whether it ended


def output(ref: SessionRef, lines: int) -> tuple[str, list[str]]:
    """Where the output comes from (the backend's name, or ``engine.log``) and its lines.

    While the session runs on a backend that can show its live output, that; otherwise
    ``engine.log``, which keeps everything the engine printed after the backend's
    session has gone.
    """
    current = status(ref)
    backend = ref.backend(current.state)
    if (
        current.health is Health.RUNNING
        and current.resources.tmux
        and isinstance(backend, OutputCapturing)
    ):
        try:
            pane = backend.capture(ref.name, ref.project, lines)
        except LooprunnerError:
            pane = None
        if pane is not None:
            return backend.name, list(pane)
    log = ref.paths.engine_log
    return "engine.log", last_lines(log, lines, previous=rotated(log))


def follow_output(ref: SessionRef, *, interval: float) -> Iterator[str]:
    """Yield what the engine prints from now until the session stops running.

    Across a rotation of engine.log too: the rest of the old file, then the new one.
    """

    def done() -> bool:
        return status(ref).health is not Health.RUNNING

    for chunk in follow(
        ref.paths.engine_log, offset=size(ref.paths.engine_log), done=done, interval=interval
    ):
        yield chunk.decode("utf-8", "replace")


def tail(ref: SessionRef, *, follow_on: bool, interval: float, offset: int) -> Iterator[Event]:
    """Yield the recorded events, then (with ``follow_on``) new ones until it ends."""
    if not follow_on:
        yield from events(ref)
        return

    def done() -> bool:
        return status(ref).health is not Health.RUNNING

    pending: list[bytes] = []  # the pieces of a line not ended yet, joined once it is
    for chunk in follow(ref.paths.events_file, offset=offset, done=done, interval=interval):
        *complete, rest = chunk.split(b"\n")
        if complete:
            complete[0] = b"".join([*pending, complete[0]])
            pending = []
        pending.append(rest)
        for raw in complete:
            event = parse_event_line(raw) if raw.strip() else None
            if event is not None:
                yield event


def pipeline(ref: SessionRef) -> Pipeline:
    """Return the resolved pipeline the session runs (its run's ``pipeline.yaml``)."""
    from looprunner import convert  # the YAML reader: only the commands that need it

    return convert.load_resolved_pipeline(ref.paths.pipeline_file)


def queue_remaining(ref: SessionRef) -> int | None:
    """How many items the current stage's queue holds, if its termination has a queue."""
    state = ref.read_state()
    if state is None or not ref.paths.pipeline_file.exists():
        return None
    try:
        spec, cap = _current_termination(ref, state.current_stage)
        termination = ref.plugins.termination(spec.type)(spec)
        if not isinstance(termination, QueueCounting):
            return None
        progress = StageProgress(
            completed=state.iteration_completed,
            cap=cap,
            history=(),
            # a queue is asked where the agents work: the session's worktree, if it has one
            project=Path(state.worktree.workdir) if state.worktree else ref.project,
            session=ref.name,
        )
        return len(termination.remaining(progress))
    except Exception:  # a plugin's queue that cannot be asked must not break status
        return None


def _current_termination(ref: SessionRef, index: int) -> tuple[Termination, int]:
    """Return node ``index``'s termination and iteration cap, reading as little as may be.

    ``pipeline.yaml`` is written as JSON: its one termination is read from that without
    the YAML reader or the converter (``status`` reads it every time). A file written by
    hand or by an older version is read whole.
    """
    from looprunner.models import Termination  # a spec class only ``status`` builds

    try:
        data = json.loads(ref.paths.pipeline_file.read_text(encoding="utf-8"))
        nodes = data["nodes"]
        node = nodes[min(index, len(nodes) - 1)]
        spec = records.structure(node["stage"]["termination"], Termination)
        return spec, spec.cap(node.get("max_iterations"))
    except (ValueError, KeyError, TypeError, IndexError):
        whole = pipeline(ref).nodes
        chosen = whole[min(index, len(whole) - 1)]
        return chosen.stage.termination, chosen.cap
