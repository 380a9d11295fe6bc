"""Running one node to its termination: the loop the session and every branch share.

The session's engine runs its pipeline's nodes through a :class:`StageLoop`; each branch
of a parallel block runs its own nodes through another, with a recorder that writes the
branch's state file and tags its events. So a stage inside a block obeys exactly the
rules of a stage outside: its termination asks before every iteration, the state is
written before the event, and a resume continues from the last completed iteration.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from looprunner.builtin.defaults import STAGE_TYPE
from looprunner.engine import context as ctxmod
from looprunner.engine import faults
from looprunner.engine.agent_status import read_history
from looprunner.engine.agents import AgentLauncher, Stopped
from looprunner.engine.budget import BudgetKeeper, BudgetReached
from looprunner.engine.guard import InterruptGuard
from looprunner.engine.iteration import (
    BranchRunning,
    IterationFailed,
    IterationPlan,
    run_iteration,
)
from looprunner.engine.judge import JUDGE_DIR, JudgeFailedTooOften, run_judge
from looprunner.engine.recorder import Recorder
from looprunner.errors import LooprunnerError
from looprunner.models import (
    AgentStatus,
    Decision,
    Pipeline,
    RunError,
    RunStatus,
    StageResult,
)
from looprunner.models import events as ev
from looprunner.plugins.registry import Registries
from looprunner.protocols import StageProgress, StageType

MAX_DELAY_ENV = "LOOPRUNNER_MAX_DELAY"


class OuterBudget(Protocol):
    """The budgets above a branch's own (see ``StageLoop``'s ``outer``)."""

    def sync(self) -> None:
        """Add what the branch has spent since the last call to the block and session."""

    def reached(self) -> BudgetReached | None:
        """Return the block's or the session's budget that is spent, if any."""


#: failures no number of tries mends: they fail the session at once, whatever the budget
NEVER_TOLERATED = frozenset({"provider_auth"})


def delay_between(stage_delay: float, env: Mapping[str, str]) -> float:
    """Return the pause before an iteration: the stage's ``delay``, capped by the env.

    ``LOOPRUNNER_MAX_DELAY`` (seconds, 0 allowed) caps every stage's delay, so a
    pipeline written for rate-limited agents can be tried with fakes without waiting;
    a value that is not a number is ignored.
    """
    try:
        cap = float(env.get(MAX_DELAY_ENV, ""))
    except ValueError:
        return stage_delay
    return min(stage_delay, cap) if cap >= 0 else stage_delay


class StageLoop:
    """Runs the nodes of one pipeline (the session's, or a branch's) for one recorder.

    Parameters
    ----------
    recorder, launcher:
        Where the nodes' state and events go, and what runs their agents.
    registries:
        The stage types and terminations to build.
    guard:
        Tells the signal handler whether a stage type's own code is running.
    check_lock:
        Called before every iteration: raises if the session's lock was lost.
    branches:
        What a stage type's ``run_branches`` calls (None where branches cannot nest).
    from_parallel:
        Outputs of earlier blocks every node of this pipeline reads (a branch's own
        ``inputs.from_parallel``); each node's own are added to them.
    outer:
        A branch's view of the budgets above it (the block's node and the session's):
        told after each iteration what the branch spent, and asked before the next
        whether one of those budgets is spent. Reached, the branch's stage ends with the
        budget's reason; the session's own loop announces the budget and ends the run.
    """

    def __init__(
        self,
        recorder: Recorder,
        launcher: AgentLauncher,
        *,
        registries: Registries,
        guard: InterruptGuard,
        check_lock: Callable[[], None],
        branches: BranchRunning | None,
        from_parallel: Callable[[Pipeline, int], Mapping[str, list[str]]],
        outer: OuterBudget | None = None,
    ) -> None:
        self.recorder = recorder
        self.launcher = launcher
        self.registries = registries
        self.guard = guard
        self.check_lock = check_lock
        self.branches = branches
        self.from_parallel = from_parallel
        self.budget = BudgetKeeper(recorder)
        self.budget.reset_errors()
        self.outer = outer

    def stage_type(self, pipeline: Pipeline, index: int) -> StageType:
        """Build and validate node ``index``'s stage type."""
        stage = pipeline.nodes[index].stage
        stage_type = self.registries.stage_types.get(stage.type or STAGE_TYPE)(stage)
        stage_type.validate()
        return stage_type

    def run_stage(self, pipeline: Pipeline, index: int) -> None:
        """Run node ``index`` from where its state says until its termination says stop.

        Raises
        ------
        IterationFailed
            An iteration (or the termination) failed.
        Stopped
            The session is being stopped.
        BudgetReached
            A budget of the stage or the pipeline is spent (the stage is recorded
            complete with the budget's reason).
        """
        rec = self.recorder
        runner = self.launcher.runner
        node = pipeline.nodes[index]
        stage_state = rec.current.stages[index]
        termination = self.registries.terminations.get(node.stage.termination.type)(
            node.stage.termination
        )
        termination.validate()
        stage_type = self.stage_type(pipeline, index)
        cap = stage_state.max_iterations
        completed = stage_state.iterations_completed if index == rec.current.current_stage else 0
        history = self._history(index, node.id, completed, ctxmod.STATUS_FILE)
        judge = node.stage.termination.judge
        # with a judge, the judge's verdicts (a failed judge counts as "continue") decide
        verdicts = (
            self._history(index, node.id, completed, f"{JUDGE_DIR}/{ctxmod.STATUS_FILE}")
            if judge is not None
            else history
        )
        if completed == 0 and stage_state.status is RunStatus.PENDING:
            # state first (the stage is running), then its event: a crash in between
            # leaves the event to be re-appended on resume, never appended twice
            rec.set_stage(index, status=RunStatus.RUNNING)
            rec.save(current_stage=index, iteration=0, iteration_completed=0)
            rec.events.append(
                ev.STAGE_START,
                stage=node.id,
                data={"stage": node.stage.name, "max_iterations": cap},
            )
            runs = (
                f"type {node.stage.type}"
                if node.stage.type
                else f"provider {node.stage.provider_name}"
            )
            rec.log(
                f"stage {index + 1}/{len(pipeline.nodes)} {node.id} ({node.stage.name}): "
                f"up to {cap} iteration(s), {runs}"
            )
        else:
            rec.set_stage(index, status=RunStatus.RUNNING)
        parallel_inputs = self.from_parallel(pipeline, index)
        while True:
            progress = StageProgress(
                completed=completed,
                cap=cap,
                history=verdicts,
                project=rec.paths.agent_dir,
                session=rec.paths.name,
            )
            try:
                reason = termination.decide(progress)
            except LooprunnerError as exc:
                raise IterationFailed(
                    RunError("termination_error", exc.message, completed + 1)
                ) from exc
            if reason is None and completed >= cap:
                reason = termination.cap_reason
            if reason is not None:
                break
            spent = self._budget_reached(pipeline, index, node.id, completed)
            if spent is not None:  # asked after the termination: a stop decision wins
                last = history[-1] if history else None
                self._complete_stage(pipeline, index, completed, spent.reason, last)
                raise spent
            if runner.stop_requested:
                raise Stopped
            self.check_lock()
            delay = delay_between(node.stage.delay, self.launcher.env)
            if completed > 0 and delay > 0 and runner.wait_stop(delay):
                raise Stopped
            plan = IterationPlan(
                pipeline,
                index,
                completed + 1,
                cap,
                history[-1] if history else None,
                from_parallel=parallel_inputs,
            )
            try:
                status = run_iteration(
                    plan,
                    stage_type,
                    recorder=rec,
                    launcher=self.launcher,
                    guard=self.guard,
                    branches=self.branches,
                    keeper=self.budget,
                )
            except IterationFailed as failure:
                status = self._tolerate(pipeline, index, failure)
                completed += 1
                history.append(status)
                if judge is not None:
                    verdicts.append(status)
                continue
            completed += 1
            history.append(status)
            if judge is not None:
                verdicts.append(self._judge(pipeline, index, completed))
        self._complete_stage(pipeline, index, completed, reason, history[-1] if history else None)

    def _budget_reached(
        self, pipeline: Pipeline, index: int, node_id: str, completed: int
    ) -> BudgetReached | None:
        """Return the budget that is spent, if any; announce one of this loop's own.

        A budget of this loop's stage or pipeline gets its ``budget_reached`` event here,
        once: the run ends right after. One above a branch (``outer``) is announced by
        the session's loop, which finds it spent when the block's iteration is over.
        """
        if self.outer is not None:
            self.outer.sync()
        spent = self.budget.reached(pipeline, index)
        if spent is not None:
            self.recorder.events.append(
                ev.BUDGET_REACHED, stage=node_id, iteration=completed, data=spent.event_data()
            )
        elif self.outer is not None:
            spent = self.outer.reached()
        if spent is not None:
            self.recorder.log(spent.message)
        return spent

    def _tolerate(self, pipeline: Pipeline, index: int, failure: IterationFailed) -> AgentStatus:
        """Go on after a failed iteration if ``max_consecutive_errors`` allows, else raise.

        A tolerated failure counts as a completed iteration (a resume goes on after it)
        whose decision is ``error``; the failures in a row reaching the limit fail the
        session with ``too_many_errors``.
        """
        error = failure.error
        limit = self.budget.error_limit(pipeline, index)
        if limit is None or error.type in NEVER_TOLERATED:
            raise failure
        count = self.budget.failed(index)
        if count >= limit:
            raise IterationFailed(
                RunError(
                    "too_many_errors",
                    f"{count} iteration(s) in a row failed (max_consecutive_errors {limit}); "
                    f"the last: {error.type}: {error.message}",
                    error.iteration,
                )
            ) from failure
        rec = self.recorder
        iteration = error.iteration or rec.current.iteration
        rec.set_stage(index, iterations_completed=iteration)
        rec.save(iteration_completed=iteration, iteration_started=None)
        rec.log(
            f"iteration {iteration} failed ({error.type}); going on, "
            f"{count} of {limit} failures in a row allowed"
        )
        return AgentStatus(decision=Decision.ERROR, reason=error.message)

    def _complete_stage(
        self,
        pipeline: Pipeline,
        index: int,
        completed: int,
        reason: str,
        last: AgentStatus | None,
    ) -> None:
        rec = self.recorder
        node = pipeline.nodes[index]
        rec.set_stage(index, status=RunStatus.COMPLETE, termination_reason=reason)
        if index + 1 < len(pipeline.nodes):
            rec.save(current_stage=index + 1, iteration=0, iteration_completed=0)
        else:
            rec.save()
        faults.checkpoint("stage_complete_saved", completed)
        rec.events.append(
            ev.STAGE_COMPLETE,
            stage=node.id,
            iteration=completed,
            data={
                "reason": reason,
                "iterations": completed,
                "agent_reason": last.reason if last else None,
            },
        )
        rec.log(f"stage {node.id} complete after {completed} iteration(s): {reason}")
        rec.hook(
            "on_stage_complete",
            stage=node,
            result=StageResult(
                id=node.id, stage=node.stage.name, iterations=completed, reason=reason
            ),
        )

    def _history(self, index: int, node_id: str, completed: int, name: str) -> list[AgentStatus]:
        paths = self.recorder.paths
        return read_history(
            [paths.iteration_dir(index, node_id, n) / name for n in range(1, completed + 1)]
        )

    def _judge(self, pipeline: Pipeline, index: int, iteration: int) -> AgentStatus:
        """Ask the stage's judge agent for its verdict (see :mod:`looprunner.engine.judge`)."""
        try:
            return run_judge(self.recorder, self.launcher, pipeline, index, iteration)
        except JudgeFailedTooOften as exc:
            raise IterationFailed(RunError("judge_error", str(exc), iteration)) from exc
