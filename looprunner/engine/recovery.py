"""Starting a run's state, and picking up after a crash.

A fresh run records its state first thing. A resumed run takes the recorded state over,
ends any agent the dead engine left running (so it cannot write into the re-run), and
appends the events a crash kept from the log, so each exists exactly once.
"""

from __future__ import annotations

from typing import Any

import attrs

from looprunner.engine import context as ctxmod
from looprunner.engine.agent_status import read_history
from looprunner.engine.iteration import verdict_data
from looprunner.engine.process import kill_grace, stop_leftover_group
from looprunner.engine.recorder import Recorder
from looprunner.models import Pipeline, RunState, RunStatus, StageState, events
from looprunner.store.atomic import write_atomic
from looprunner.store.events import iter_events, utc_now
from looprunner.store.state import read_state


def begin(
    rec: Recorder, pipeline: Pipeline, *, identity: dict[str, Any], resume: bool
) -> RunState | None:
    """Record the run's first state; return the previous state when resuming, else None."""
    paths = rec.paths
    previous = read_state(paths.state_file) if resume else None
    if previous is not None:
        rec.state = attrs.evolve(
            previous,
            status=RunStatus.RUNNING,
            finished_at=None,
            completion_reason=None,
            error=None,
            iteration_started=None,
            agent_pid=None,
            agent_start_time=None,
            **identity,
        )
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
    rec.save()
    return previous


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
    """End an agent a dead engine left running, so it cannot write into a re-run."""
    if stop_leftover_group(
        previous.agent_pid, previous.agent_start_time, previous.boot_id, kill_grace()
    ):
        rec.log(f"stopped what the previous engine's agent (group {previous.agent_pid}) left")


def reconcile_events(rec: Recorder, pipeline: Pipeline) -> None:
    """Append events a crash kept from the log, so each one exists exactly once.

    State is always written before its event, so after a crash the state may be one
    step ahead of the log, never behind: an iteration recorded complete in state
    without its ``iteration_complete`` event, or a stage recorded complete without
    its ``stage_complete``. Both are rebuilt from what is on disk.
    """
    state = rec.current
    logged = list(iter_events(rec.paths.events_file))
    done = {(e.stage, e.iteration) for e in logged if e.type == events.ITERATION_COMPLETE}
    stages_done = {e.stage for e in logged if e.type == events.STAGE_COMPLETE}
    stages_started = {e.stage for e in logged if e.type == events.STAGE_START}
    if not any(e.type == events.SESSION_START for e in logged):
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
