"""Starting a run's state, and picking up after a crash.

A fresh run records its state first thing. A resumed run takes the recorded state over,
ends any agent the dead engine left running (so it cannot write into the re-run), and
appends the events a crash kept from the log, so each exists exactly once.
"""

from __future__ import annotations

from typing import Any

import attrs

from looprunner import convert
from looprunner.engine import context as ctxmod
from looprunner.engine.agent_status import read_history
from looprunner.engine.contain import stop_leftovers
from looprunner.engine.iteration import verdict_data
from looprunner.engine.process import kill_grace
from looprunner.engine.recorder import Recorder
from looprunner.models import Event, Pipeline, RunState, RunStatus, StageState, events
from looprunner.store.atomic import write_atomic
from looprunner.store.diskfault import Marker
from looprunner.store.events import iter_events, utc_now
from looprunner.store.projection import logged_state, read_projected
from looprunner.store.state import keep_as_previous


def reopened(previous: RunState, identity: dict[str, Any]) -> RunState:
    """Return ``previous`` running again under this engine: its history kept, no ending.

    A resumed session and a resumed branch of a parallel block both start from this.
    """
    return attrs.evolve(
        previous,
        status=RunStatus.RUNNING,
        finished_at=None,
        completion_reason=None,
        error=None,
        iteration_started=None,
        agent_pid=None,
        agent_start_time=None,
        agent_mark=None,
        **identity,
    )


def begin(
    rec: Recorder, pipeline: Pipeline, *, identity: dict[str, Any], resume: bool
) -> RunState | None:
    """Record the run's first state; return the previous state when resuming, else None.

    A resumed run takes the state the log records (state.json brought up to date), and
    its first event records what changed since the log's last word.
    """
    paths = rec.paths
    previous = read_projected(paths.state_file, paths.events_file) if resume else None
    if previous is not None:
        rec.state = reopened(previous, identity)
        take_log_over(rec)
    else:
        now = utc_now()
        rec.state = RunState(
            session=paths.name,
            type=pipeline.kind,
            pipeline=pipeline.name,
            status=RunStatus.RUNNING,
            started_at=now,
            updated_at=now,
            stages=tuple(
                StageState(id=node.id, stage=node.stage.name, max_iterations=node.cap)
                for node in pipeline.nodes
            ),
            **identity,
        )
    if not paths.progress_file.exists():
        write_atomic(paths.progress_file, f"# Progress: {paths.name}\n\n")
    # the state the run starts from is the fallback for a state file damaged later
    rec.save(keep_previous=previous is not None)
    if previous is None:
        keep_as_previous(paths.state_file)
    return previous


def take_log_over(rec: Recorder) -> None:
    """Start ``rec``'s changes from what the log records for its stream.

    A log that records no whole state (a session an older version started) gets the
    whole state with the next event.
    """
    recorded = logged_state(rec.paths.events_file, rec.event_tags or None)
    rec.logged = convert.unstructure(recorded) if recorded is not None else {}


def announce_resume(rec: Recorder, previous: RunState) -> None:
    """Write the ``session_resumed`` event and say where the run picks up.

    ``from_status`` is the status the run had when it was resumed (``killed``,
    ``failed``, or ``running`` after a crash): the state the launch decided on.
    """
    state = rec.current
    rec.events.append(
        events.SESSION_RESUMED,
        stage=state.current.id,
        iteration=state.iteration_completed + 1,
        data={
            "from_iteration": state.iteration_completed + 1,
            "from_status": previous.status.value,
        },
    )
    rec.log(f"resumed at stage {state.current.id}, iteration {state.iteration_completed + 1}")


def stop_leftover_agent(rec: Recorder, previous: RunState) -> None:
    """End an agent a dead engine left running, and what it started: no writes into a re-run."""
    stopped = stop_leftovers(
        previous.agent_pid,
        previous.agent_start_time,
        previous.boot_id,
        previous.agent_mark,
        kill_grace(),
    )
    if stopped:
        rec.log(
            f"stopped {stopped} process(es) the previous engine's agent "
            f"(pid {previous.agent_pid}) left running"
        )


def reconcile_events(
    rec: Recorder,
    pipeline: Pipeline,
    *,
    previous: RunState | None = None,
    fault: Marker | None = None,
) -> None:
    """Append events a crash kept from the log, so each one exists exactly once.

    State is always written before its event, so after a crash the state may be one
    step ahead of the log, never behind: an iteration recorded complete in state
    without its ``iteration_complete`` event, or a stage recorded complete without
    its ``stage_complete``. Both are rebuilt from what is on disk. So is the ending of
    the ``previous`` run when the disk kept it from the log: the ``session_failed`` of
    a ``fault`` recorded only in the lock file, or a failed or killed ending written to
    state without its event.
    """
    state = rec.current
    # a branch of a parallel block reconciles its own events only (they name it), the
    # session only those of no branch
    tags = rec.event_tags
    logged = [
        e
        for e in iter_events(rec.paths.events_file)
        if (all(e.data.get(k) == v for k, v in tags.items()) if tags else "block" not in e.data)
    ]
    done = {(e.stage, e.iteration) for e in logged if e.type == events.ITERATION_COMPLETE}
    stages_done = {e.stage for e in logged if e.type == events.STAGE_COMPLETE}
    stages_started = {e.stage for e in logged if e.type == events.STAGE_START}
    if rec.branch_name is None and not any(e.type == events.SESSION_START for e in logged):
        rec.events.append(
            events.SESSION_START,
            data={"pipeline": pipeline.name, "type": pipeline.kind, "recovered": True},
        )
    for index, stage_state in enumerate(state.stages[: state.current_stage + 1]):
        node = pipeline.nodes[index]
        if stage_state.status is not RunStatus.PENDING and node.id not in stages_started:
            rec.events.append(
                events.STAGE_START,
                stage=node.id,
                data={
                    "stage": node.stage.name,
                    "max_iterations": stage_state.max_iterations,
                    "recovered": True,
                },
            )
        for n in range(1, stage_state.iterations_completed + 1):
            if (node.id, n) in done:
                continue
            status_file = rec.paths.iteration_dir(index, node.id, n) / ctxmod.STATUS_FILE
            status = read_history([status_file])[0]
            rec.events.append(
                events.ITERATION_COMPLETE,
                stage=node.id,
                iteration=n,
                data={**verdict_data(status), "recovered": True},
            )
        if stage_state.status is RunStatus.COMPLETE and node.id not in stages_done:
            rec.events.append(
                events.STAGE_COMPLETE,
                stage=node.id,
                iteration=stage_state.iterations_completed,
                data={
                    "reason": stage_state.termination_reason,
                    "iterations": stage_state.iterations_completed,
                    "recovered": True,
                },
            )
    if previous is not None:
        _reconcile_ending(rec, logged, previous, fault)


_BOUNDARIES = (
    events.SESSION_START,
    events.SESSION_RESUMED,
    events.SESSION_COMPLETE,
    events.SESSION_FAILED,
    events.SESSION_KILLED,
)


def _reconcile_ending(
    rec: Recorder, logged: list[Event], previous: RunState, fault: Marker | None
) -> None:
    """Append the previous run's ending if the log does not end that run with it."""
    error = fault.error if fault is not None else previous.error
    if fault is not None or (previous.status is RunStatus.FAILED and error is not None):
        kind = events.SESSION_FAILED
        assert error is not None
        data = {"type": error.type, "message": error.message, "recovered": True}
        if fault is not None and fault.at:
            data["at"] = fault.at
        iteration = error.iteration
    elif previous.status is RunStatus.KILLED:
        kind, data, iteration = events.SESSION_KILLED, {"recovered": True}, previous.iteration
    else:
        return
    last = next((e for e in reversed(logged) if e.type in _BOUNDARIES), None)
    if last is not None and last.type == kind:
        return  # the run's ending is the log's last word already
    rec.events.append(kind, stage=previous.current.id, iteration=iteration or None, data=data)
