"""One iteration: prepare its folder and context, let the stage type run it, record it.

The engine owns everything around the stage type's ``run_iteration``: the folder is
cleared of what an interrupted run left, ``context.json`` is written, the prompt
rendered; afterwards ``status.json`` is written if the type did not, the output kept,
the state and the ``iteration_complete`` event recorded and the hooks told. The stage
type decides only what the iteration does.
"""

from __future__ import annotations

import json
import shutil
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

import attrs

from looprunner import convert
from looprunner.engine import contain, faults
from looprunner.engine import context as ctxmod
from looprunner.engine.agent_status import clip_status
from looprunner.engine.agents import AgentLauncher, Stopped, as_status, verdict
from looprunner.engine.disk import fault_of
from looprunner.engine.guard import InterruptGuard
from looprunner.engine.prompt import render, template_values
from looprunner.engine.recorder import Recorder
from looprunner.engine.usage import add_report, report_data, transcript_file
from looprunner.errors import AgentFailed, LooprunnerError
from looprunner.models import (
    AgentPaths,
    AgentReport,
    AgentRun,
    AgentStatus,
    Branch,
    BranchResult,
    Decision,
    Invocation,
    IterationContext,
    IterationPaths,
    IterationResult,
    Node,
    Pipeline,
    RunError,
    events,
)
from looprunner.models.usage import combine
from looprunner.protocols import StageType
from looprunner.store.atomic import write_atomic
from looprunner.store.events import utc_now


class IterationFailed(Exception):
    """The iteration failed; ``error`` is what state.json records."""

    def __init__(self, error: RunError) -> None:
        super().__init__(error.message)
        self.error = error


@attrs.frozen
class IterationPlan:
    """Which iteration of which node to run."""

    pipeline: Pipeline
    index: int
    iteration: int
    cap: int
    previous: AgentStatus | None
    #: outputs of earlier parallel blocks this node reads, by provider
    from_parallel: Mapping[str, list[str]] = attrs.field(factory=dict)

    @property
    def node(self) -> Node:
        """The pipeline node being run."""
        return self.pipeline.nodes[self.index]


class BranchRunning(Protocol):
    """Runs the branches a stage type asks for (see :mod:`looprunner.engine.branches`)."""

    def run(
        self, plan: IterationPlan, block: Path, branches: Sequence[Branch]
    ) -> list[BranchResult]:
        """Run ``branches`` concurrently in ``block`` and wait for all of them."""


class _AgentSide:
    """The engine's side of an :class:`IterationContext`: runs agents for a stage type."""

    def __init__(
        self,
        plan: IterationPlan,
        paths: IterationPaths,
        run_output: Path,
        prompt: str,
        launcher: AgentLauncher,
        recorder: Recorder,
        guard: InterruptGuard,
        branches: BranchRunning | None,
    ) -> None:
        self.plan = plan
        self.branches = branches
        self.paths = paths
        self.run_output = run_output
        self.prompt = prompt
        self.launcher = launcher
        self.recorder = recorder
        self.guard = guard
        self.durations: list[float] = []
        self.exit_codes: list[int] = []
        self.output_dropped = 0
        self.reports: list[AgentReport] = []
        self.agent_session_id: str | None = None

    @property
    def stop_requested(self) -> bool:
        return self.launcher.runner.stop_requested

    def log(self, message: str) -> None:
        self.recorder.log(message)

    def run_branches(self, branches: Sequence[Branch]) -> list[BranchResult]:
        if self.branches is None:
            raise LooprunnerError("branches cannot run inside a branch")
        with self.guard.agent_running():  # a stop is left to the branches' runners
            return self.branches.run(self.plan, self.paths.block, branches)

    def run_agent(
        self,
        prompt: str | None,
        *,
        provider: str | None,
        model: str | None,
        status: Path | None,
        output: Path | None,
        label: str | None,
    ) -> AgentRun:
        node, iteration = self.plan.node, self.plan.iteration
        stage = node.stage
        status_file = status or self.paths.status
        output_file = output or self.paths.output
        status_file.parent.mkdir(parents=True, exist_ok=True)
        output_file.parent.mkdir(parents=True, exist_ok=True)
        provider_name = provider or stage.provider_name
        invocation = Invocation(
            session=self.recorder.paths.name,
            project=str(self.recorder.paths.project),
            stage_id=node.id,
            iteration=iteration,
            prompt=self.prompt if prompt is None else prompt,
            paths=AgentPaths(
                context=str(self.paths.context),
                status=str(status_file),
                output=str(output_file),
                progress=str(self.paths.progress),
            ),
            model=model if provider else (model or stage.model),
            command=stage.command,
            fixtures=str(stage.fixtures) if stage.fixtures else None,
            mock_delay=stage.mock_delay,
            resume_session=self._resumed(label),
        )
        what = f"{label} of " if label else ""
        self.recorder.log(
            f"{what}iteration {iteration}/{self.plan.cap} of {node.id} starting "
            f"({provider_name}{', ' + invocation.model if invocation.model else ''})"
        )

        mark = contain.new_mark()

        def on_start(pid: int) -> None:
            self.recorder.agent_started(pid, mark)
            faults.checkpoint("agent_running", iteration)

        faults.checkpoint("before_agent", iteration)
        with self.guard.agent_running():
            outcome = self.launcher.launch(
                provider_name, invocation, timeout=stage.timeout, on_start=on_start, mark=mark
            )
        self.recorder.agent_ended()
        self.output_dropped += outcome.output_dropped
        self.durations.append(outcome.result.duration)
        if outcome.result.exit_code is not None:
            self.exit_codes.append(outcome.result.exit_code)
        self._keep_printed(output_file, outcome.output)
        if outcome.report is not None:
            self.reports.append(outcome.report)
            if label is None and outcome.report.agent_session_id:  # the stage's own agent
                self.agent_session_id = outcome.report.agent_session_id
            where = transcript_file(self.paths.folder, output_file, self.paths.output)
            write_atomic(where, self.recorder.redactor.text(outcome.transcript or ""))
        if outcome.result.stopped:
            raise Stopped
        faults.checkpoint("after_agent", iteration)
        return verdict(outcome, status_file)

    def _resumed(self, label: str | None) -> str | None:
        """Return the conversation the stage's agent continues (``session_mode: continue``)."""
        if label is not None or self.plan.node.stage.session_mode != "continue":
            return None
        return self.recorder.current.stages[self.plan.index].agent_session_id

    def _keep_printed(self, output_file: Path, printed: str) -> None:
        """Keep what the agent printed as its output when it wrote no output file.

        Done whatever became of the agent (failed, stopped), so a failed iteration's
        ``output.md`` still shows what went wrong. An agent whose stage writes its output
        into the project (``output_path``) has that file copied once the iteration ends.
        """
        if output_file == self.paths.output:
            target = self.run_output
            if output_file != self.run_output and output_file.is_file():
                return  # the agent wrote the project file: it is copied afterwards
        else:
            target = output_file  # a further agent's output, where the type asked for it
        if not target.exists() or target.stat().st_size == 0:
            write_atomic(target, self.recorder.redactor.text(printed))


def run_iteration(
    plan: IterationPlan,
    stage_type: StageType,
    *,
    recorder: Recorder,
    launcher: AgentLauncher,
    guard: InterruptGuard,
    branches: BranchRunning | None = None,
) -> AgentStatus:
    """Run one iteration through ``stage_type`` and record it; return its status.

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
    if folder.exists():  # what an interrupted run of this iteration left must not decide it
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
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
        agent_output = paths.project / render(stage.output_path, values)
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
    # not fsynced: if lost in a crash, the iteration re-runs and writes it again
    write_atomic(
        it_paths.context,
        json.dumps(recorder.redactor.data(document), indent=2) + "\n",
        durable=False,
    )
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
    side = _AgentSide(plan, it_paths, run_output, prompt, launcher, recorder, guard, branches)
    ctx = IterationContext(
        session=paths.name,
        stage_id=node.id,
        iteration=iteration,
        max_iterations=plan.cap,
        project=paths.project,
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
        write_atomic(it_paths.status, json.dumps(convert.unstructure(status), indent=2) + "\n")
    output_text = run_output.read_text(encoding="utf-8", errors="replace")
    # a copy of the iteration's output.md, written again if lost
    write_atomic(
        ctxmod.stage_output(paths, plan.index, node),
        recorder.redactor.text(output_text),
        durable=False,
    )
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
    data = {**verdict_data(status), "exit_code": exit_code, "duration": round(duration, 3)}
    if side.output_dropped:  # output past the cap: counted, never dropped silently
        data["output_truncated_bytes"] = side.output_dropped
    if report is not None:
        data.update(report_data(report))
    recorder.events.append(events.ITERATION_COMPLETE, stage=node.id, iteration=iteration, data=data)
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
    side: _AgentSide,
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
    elif not run_output.exists():  # a type that ran no agent and wrote no output
        write_atomic(run_output, "")


def verdict_data(status: AgentStatus) -> dict[str, str]:
    """Return what an ``iteration_complete`` event says of the decision."""
    return {
        "decision": status.decision.value,
        "reason": status.reason,
        "summary": status.summary,
    }
