"""One iteration: prepare its folder and context, let the stage type run it, record it.

The engine owns everything around the stage type's ``run_iteration``: the folder is
cleared of what an interrupted run left, ``context.json`` is written, the prompt
rendered; afterwards ``status.json`` is written if the type did not, the output kept,
the state and the ``iteration_complete`` event recorded and the hooks told. The stage
type decides only what the iteration does.
"""

from __future__ import annotations

import contextlib
import shutil
import traceback
from pathlib import Path

import attrs

from looprunner import convert, jsontext
from looprunner.engine import context as ctxmod
from looprunner.engine import faults
from looprunner.engine.agent_side import AgentSide
from looprunner.engine.agent_status import clip_status
from looprunner.engine.agents import AgentLauncher, as_status
from looprunner.engine.budget import BudgetKeeper, spend_data
from looprunner.engine.disk import fault_of
from looprunner.engine.guard import InterruptGuard
from looprunner.engine.plan import BranchRunning, IterationFailed, IterationPlan
from looprunner.engine.prompt import render, template_values
from looprunner.engine.recorder import Recorder
from looprunner.engine.usage import add_report, report_data
from looprunner.errors import AgentFailed, LooprunnerError
from looprunner.models import (
    AgentStatus,
    Decision,
    IterationContext,
    IterationPaths,
    IterationResult,
    RunError,
    events,
)
from looprunner.models.usage import combine
from looprunner.protocols import StageType
from looprunner.store.atomic import write_atomic, write_new
from looprunner.store.events import utc_now

__all__ = [
    "BranchRunning",
    "InterruptGuard",
    "IterationFailed",
    "IterationPlan",
    "run_iteration",
    "verdict_data",
]


def run_iteration(
    plan: IterationPlan,
    stage_type: StageType,
    *,
    recorder: Recorder,
    launcher: AgentLauncher,
    guard: InterruptGuard,
    branches: BranchRunning | None = None,
    keeper: BudgetKeeper | None = None,
) -> AgentStatus:
    """Run one iteration through ``stage_type`` and record it; return its status.

    ``keeper`` adds what the iteration cost to the spent budgets, saved with it.

    Raises
    ------
    IterationFailed
        The iteration failed (its ``iteration_failed`` event is already written).
    Stopped
        The session is being stopped.
    """
    paths = recorder.paths
    node, iteration = plan.node, plan.iteration
    stage = node.stage
    folder = paths.iteration_dir(plan.index, node.id, iteration)
    try:
        folder.mkdir(parents=True)
    except FileExistsError:  # what an interrupted run of this iteration left must not decide it
        shutil.rmtree(folder)
        folder.mkdir()
    it_paths = IterationPaths(
        folder=folder,
        context=folder / ctxmod.CONTEXT_FILE,
        status=folder / ctxmod.STATUS_FILE,
        output=folder / ctxmod.OUTPUT_FILE,
        progress=paths.progress_file,
        block=paths.block_dir(plan.index, node.id),
    )
    run_output = it_paths.output
    values = template_values(
        ctx=str(it_paths.context),
        status=str(it_paths.status),
        progress=str(paths.progress_file),
        output=str(run_output),
        iteration=iteration,
        session=paths.name,
        context=stage.context,
    )
    if stage.output_path:
        agent_output = paths.agent_dir / render(stage.output_path, values)
        agent_output.parent.mkdir(parents=True, exist_ok=True)
        values.update(OUTPUT=str(agent_output), OUTPUT_PATH=str(agent_output))
        it_paths = attrs.evolve(it_paths, output=agent_output)
    document = ctxmod.build_context(
        paths=paths,
        pipeline=plan.pipeline,
        index=plan.index,
        iteration=iteration,
        cap=plan.cap,
        previous=plan.previous,
        output_path=it_paths.output,
        from_parallel=plan.from_parallel,
    )
    # in the folder just made, read by the agent started after it: one plain write (a
    # crash leaves the folder to the iteration's re-run, which removes it first)
    write_new(it_paths.context, jsontext.dumps(recorder.redactor.data(document)) + "\n")
    # the previous iteration's completion was flushed while this folder was made: it is
    # on disk before anything of this iteration's own happens
    recorder.events.settle()
    recorder.hook("on_iteration_start", stage=node, iteration=iteration, context=document)
    prompt = render(stage.prompt, values)
    # In memory only: the agent's start writes it with the agent's pid (one write, not
    # two, per iteration); a type that runs no agent has it written when it completes,
    # and the iteration_start event below says at once that it began.
    recorder.state = attrs.evolve(
        recorder.current, iteration=iteration, iteration_started=utc_now()
    )
    recorder.events.append(
        events.ITERATION_START,
        durable=False,
        stage=node.id,
        iteration=iteration,
        data={
            # a type of its own (a parallel block) names no provider unless it sets one
            "provider": stage.provider or (stage.provider_name if stage.type is None else None),
            "model": stage.model,
            "type": stage_type.name,
        },
    )
    side = AgentSide(plan, it_paths, run_output, prompt, launcher, recorder, guard, branches)
    ctx = IterationContext(
        session=paths.name,
        stage_id=node.id,
        iteration=iteration,
        max_iterations=plan.cap,
        project=paths.agent_dir,
        paths=it_paths,
        prompt=prompt,
        options=stage.options,
        stage=stage,
        previous=plan.previous,
        engine=side,
    )
    status = _run_type(stage_type, ctx, guard, recorder, side, plan.index)
    _keep_output(it_paths, run_output, recorder)
    if not it_paths.status.exists():  # a type that returned its verdict without the file
        write_atomic(it_paths.status, jsontext.dumps(convert.unstructure(status)) + "\n")
    output_text = run_output.read_text(encoding="utf-8", errors="replace")
    # a copy of the iteration's output.md, written again if lost
    write_atomic(
        ctxmod.stage_output(paths, plan.index, node),
        recorder.redactor.text(output_text),
        durable=False,
    )
    if keeper is not None:
        keeper.completed(plan.index, status)
    recorder.set_stage(plan.index, iterations_completed=iteration)
    if side.agent_session_id:
        recorder.set_stage(plan.index, agent_session_id=side.agent_session_id)
    report = combine(side.reports)
    if report is not None:  # what the agents said it cost, added to the totals
        recorder.state = add_report(recorder.current, plan.index, report)
    recorder.save(iteration_completed=iteration, iteration_started=None)
    faults.checkpoint("state_written", iteration)
    duration = sum(side.durations)
    exit_code = side.exit_codes[-1] if side.exit_codes else 0
    data = {
        **verdict_data(status),
        "exit_code": exit_code,
        "duration": round(duration, 3),
        **spend_data(status),
    }
    if side.output_dropped:  # output past the cap: counted, never dropped silently
        data["output_truncated_bytes"] = side.output_dropped
    if report is not None:
        data.update(report_data(report))
    # flushed while the next iteration prepares (it waits before its own start, as does
    # any agent and the session's ending)
    recorder.events.append(
        events.ITERATION_COMPLETE, stage=node.id, iteration=iteration, data=data, wait=False
    )
    recorder.log(
        f"iteration {iteration} done: {status.decision.value}"
        + (f" ({status.summary})" if status.summary else "")
    )
    recorder.hook(
        "on_iteration",
        stage=node,
        iteration=iteration,
        result=IterationResult(
            decision=status.decision,
            reason=status.reason,
            summary=status.summary,
            exit_code=exit_code,
            duration=duration,
            status=status,
        ),
    )
    return status


def _run_type(
    stage_type: StageType,
    ctx: IterationContext,
    guard: InterruptGuard,
    recorder: Recorder,
    side: AgentSide,
    index: int,
) -> AgentStatus:
    """Call the type's ``run_iteration``; turn what goes wrong into a failed iteration.

    What the agents of a failed iteration reported they cost still counts: it is in the
    ``iteration_failed`` event and added to the totals the engine saves with the failure.
    """
    node_id, iteration = ctx.stage_id, ctx.iteration
    error: RunError | None = None
    guard.in_type_code = True
    try:
        # a type's own verdict is kept to the same lengths as an agent's status file
        status = clip_status(as_status(stage_type.run_iteration(ctx)))
    except AgentFailed as exc:
        error = RunError(exc.error_type, exc.message, iteration)
    except LooprunnerError as exc:
        error = RunError("stage_error", f"stage type {stage_type.name!r}: {exc.message}", iteration)
    except Exception as exc:
        if fault_of(exc, recorder.paths, iteration) is not None:
            raise  # the disk refused a write, not the stage: the engine ends the run
        recorder.log(traceback.format_exc())
        error = RunError(
            "stage_error",
            f"stage type {stage_type.name!r} raised {type(exc).__name__}: {exc}",
            iteration,
        )
    else:
        if status.decision is Decision.ERROR:
            error = RunError(
                "agent_error", status.reason or "the stage reported an error", iteration
            )
    finally:
        guard.in_type_code = False
    if error is None:
        return status
    data: dict[str, object] = {"type": error.type, "message": error.message}
    report = combine(side.reports)
    if report is not None:
        data.update(report_data(report))
        recorder.state = add_report(recorder.current, index, report)
    recorder.events.append(events.ITERATION_FAILED, stage=node_id, iteration=iteration, data=data)
    raise IterationFailed(error)


def _keep_output(it_paths: IterationPaths, run_output: Path, recorder: Recorder) -> None:
    """Keep the iteration's output in the run folder, whoever wrote it where."""
    if it_paths.output != run_output and it_paths.output.is_file():
        # the stage writes its output into the project: keep a copy with the run
        text = it_paths.output.read_text(encoding="utf-8", errors="replace")
        write_atomic(run_output, recorder.redactor.text(text))
    elif not run_output.exists():  # an agent (or a type) that wrote no output
        # empty, so never torn, and not fsynced, like an output.md the agent writes itself
        with contextlib.suppress(FileExistsError):  # something it left wrote it meanwhile
            write_new(run_output, "")


def verdict_data(status: AgentStatus) -> dict[str, str]:
    """Return what an ``iteration_complete`` event says of the decision."""
    return {
        "decision": status.decision.value,
        "reason": status.reason,
        "summary": status.summary,
    }
