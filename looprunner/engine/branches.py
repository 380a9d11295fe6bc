"""Branches: several lines of stages run at once inside one iteration (parallel blocks).

A stage type asks for branches through ``IterationContext.run_branches``; this module
runs each in a thread of its own, as a small pipeline laid out like a run folder inside
the node's block folder (``parallel-NN-ID/NAME/``): its stage folders, progress file and
``state.json``. Its agents run on a child of the engine's process runner, so ``kill``
reaches every branch; a branch that fails stops the others, and the block waits for all.

Each branch's ``state.json`` is what makes a block resumable: when the block's
iteration runs again after a crash or a ``kill``, a branch recorded complete is not run
again and an unfinished one continues from its last completed iteration, exactly as a
session resumes. ``manifest.json`` lists every branch's stages and outputs, and is
what later nodes' ``inputs.from_parallel`` read.
"""

from __future__ import annotations

import json
import threading
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from looprunner.engine import context as ctxmod
from looprunner.engine import recovery
from looprunner.engine.agents import AgentLauncher, Stopped
from looprunner.engine.branch_spend import BlockSpend, BranchBudget
from looprunner.engine.budget import BudgetReached
from looprunner.engine.disk import fault_of
from looprunner.engine.guard import InterruptGuard
from looprunner.engine.iteration import IterationFailed, IterationPlan
from looprunner.engine.process import AgentRunner
from looprunner.engine.recorder import Recorder
from looprunner.engine.stages import StageLoop
from looprunner.errors import AgentFailed, LooprunnerError
from looprunner.models import (
    Branch,
    BranchResult,
    Node,
    ParallelInput,
    Pipeline,
    RunError,
    RunState,
    RunStatus,
    StageState,
)
from looprunner.names import BranchPaths, SessionPaths
from looprunner.plugins.registry import Registries
from looprunner.store.atomic import write_atomic
from looprunner.store.events import utc_now
from looprunner.store.state import read_state, write_state

MANIFEST_FILE = "manifest.json"

MakeLauncher = Callable[[Recorder, AgentRunner], AgentLauncher]


@attrs.define
class _Outcome:
    """What one branch's thread left: its result, or what it raised that is not a failure."""

    result: BranchResult | None = None
    raised: BaseException | None = None


class BranchRunner:
    """Runs the branches of the session's nodes; one per engine."""

    def __init__(
        self,
        recorder: Recorder,
        pipeline: Pipeline,
        *,
        registries: Registries,
        runner: AgentRunner,
        make_launcher: MakeLauncher,
        check_lock: Callable[[], None],
    ) -> None:
        self.recorder = recorder
        self.pipeline = pipeline
        self.registries = registries
        self.runner = runner
        self.make_launcher = make_launcher
        self._check_lock = check_lock
        self._lock_check = threading.Lock()

    # ------------------------------------------------------------------ inputs

    def node_inputs(self, pipeline: Pipeline, index: int) -> dict[str, list[str]]:
        """Return what node ``index`` of the session reads from earlier blocks."""
        return resolve_from_parallel(
            self.recorder.paths, self.pipeline, index, pipeline.nodes[index].inputs.from_parallel
        )

    # ------------------------------------------------------------------ running

    def run(
        self, plan: IterationPlan, block: Path, branches: Sequence[Branch]
    ) -> list[BranchResult]:
        """Run ``branches`` concurrently in ``block``; wait for all; see the module docstring.

        Raises
        ------
        AgentFailed
            A branch failed (the others were stopped); its error type is kept.
        Stopped
            The session is being stopped (every branch was stopped first).
        """
        names = [b.name for b in branches]
        if len(set(names)) != len(names):
            raise LooprunnerError(f"branch names must differ, got {', '.join(names)}")
        block.mkdir(parents=True, exist_ok=True)
        runners = [self.runner.child() for _ in branches]
        outcomes = [_Outcome() for _ in branches]
        spend = BlockSpend(self.recorder, self.pipeline, plan.index)

        def work(i: int) -> None:
            try:
                outcomes[i].result = self._run_branch(plan, branches[i], runners[i], spend)
            except BaseException as exc:  # handed to the engine's thread below
                outcomes[i].raised = exc
            result = outcomes[i].result
            if outcomes[i].raised is not None or (result and result.status == "failed"):
                for j, other in enumerate(runners):  # the block fails: stop the others
                    if j != i:
                        other.request_stop()

        threads = [
            threading.Thread(target=work, args=(i,), name=f"branch-{b.name}", daemon=True)
            for i, b in enumerate(branches)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for child in runners:
            self.runner.forget(child)
        results = [o.result for o in outcomes if o.result is not None]
        write_manifest(block, plan.node.id, results, self.recorder.paths, plan.index)
        for outcome in outcomes:
            if outcome.raised is not None:
                raise outcome.raised
        if self.runner.stop_requested:
            raise Stopped
        for result in results:
            if result.error is not None:
                error_type, message = result.error
                raise AgentFailed(error_type, f"provider {result.name} failed: {message}")
        return results

    def _run_branch(
        self, plan: IterationPlan, branch: Branch, runner: AgentRunner, spend: BlockSpend
    ) -> BranchResult:
        paths = self.recorder.paths.branch(plan.index, plan.node.id, branch.name)
        rec = self.recorder.branch(paths, branch.name, plan.node.id)
        pipeline = branch_pipeline(self.pipeline, plan.node.id, branch)
        previous = read_state(paths.state_file)
        if previous is not None and previous.status is RunStatus.COMPLETE:
            spend.counted(branch.name, previous)
            return _result(branch.name, previous, paths, pipeline)
        rec.state = self._begin(rec, pipeline, previous)
        spend.counted(branch.name, rec.current)  # what it spent before was added then
        budget = BranchBudget(spend, branch.name, rec)
        launcher = self.make_launcher(rec, runner)
        parallel_inputs = branch.from_parallel

        def inputs(nested: Pipeline, index: int) -> dict[str, list[str]]:
            specs = (*parallel_inputs, *nested.nodes[index].inputs.from_parallel)
            return resolve_from_parallel(self.recorder.paths, self.pipeline, plan.index, specs)

        stages = StageLoop(
            rec,
            launcher,
            registries=self.registries,
            guard=InterruptGuard(),  # a branch is stopped through its runner, never a signal
            check_lock=self.check_lock,
            branches=None,
            from_parallel=inputs,
            outer=budget,
        )

        def end(status: RunStatus, error: RunError | None) -> BranchResult:
            state = _end(rec, status, error)
            budget.sync()  # what its last iteration (or a failed one) cost
            return _result(branch.name, state, paths, pipeline)

        try:
            for index in range(rec.current.current_stage, len(pipeline.nodes)):
                if rec.current.stages[index].status is not RunStatus.COMPLETE:
                    stages.run_stage(pipeline, index)
        except BudgetReached as spent:
            rec.log(f"branch complete: {spent.message}")
            return end(RunStatus.COMPLETE, None)
        except Stopped:
            rec.log("branch stopped")
            return end(RunStatus.KILLED, None)
        except IterationFailed as failure:
            error = failure.error
        except LooprunnerError as exc:
            error = RunError("config", exc.message, rec.current.iteration or None)
        except Exception as exc:
            if fault_of(exc, self.recorder.paths, rec.current.iteration or None) is not None:
                raise  # the disk refused a write: the engine ends the whole run
            rec.log(traceback.format_exc())
            error = RunError(
                "engine_error", f"{type(exc).__name__}: {exc}", rec.current.iteration or None
            )
        else:
            rec.log("branch complete")
            return end(RunStatus.COMPLETE, None)
        rec.log(f"branch failed: {error.type}: {error.message}")
        return end(RunStatus.FAILED, error)

    def _begin(self, rec: Recorder, pipeline: Pipeline, previous: RunState | None) -> RunState:
        """Return the branch's state to run from: a fresh one, or the last one resumed."""
        now = utc_now()
        if previous is None:
            rec.paths.run_dir.mkdir(parents=True, exist_ok=True)
            state = RunState(
                session=rec.paths.name,
                type="pipeline",
                pipeline=pipeline.name,
                status=RunStatus.RUNNING,
                started_at=now,
                updated_at=now,
                backend=self.recorder.current.backend,
                stages=tuple(
                    StageState(id=n.id, stage=n.stage.name, max_iterations=n.cap)
                    for n in pipeline.nodes
                ),
                **rec.identity(),
            )
            write_state(rec.paths.state_file, state)
            rec.log(f"branch started: {len(pipeline.nodes)} stage(s)")
            return state
        recovery.stop_leftover_agent(rec, previous)
        index = min(previous.current_stage, len(previous.stages) - 1)
        stage = previous.stages[index]
        if stage.status is not RunStatus.COMPLETE:
            previous = previous.with_stage(index, attrs.evolve(stage, status=RunStatus.RUNNING))
        rec.state = recovery.reopened(previous, rec.identity())
        recovery.reconcile_events(rec, pipeline)
        rec.save()
        done = rec.current.stages[rec.current.current_stage].iterations_completed
        rec.log(f"branch resumed at stage {rec.current.current_stage + 1}, after iteration {done}")
        return rec.current

    def check_lock(self) -> None:
        """Check the session's lock from a branch's thread (one thread at a time)."""
        with self._lock_check:
            self._check_lock()


def branch_pipeline(session: Pipeline, block: str, branch: Branch) -> Pipeline:
    """Return the small pipeline a branch runs: its nodes with its provider and model."""
    nodes = tuple(_with_provider(node, branch) for node in branch.nodes)
    return Pipeline(
        name=f"{block}/{branch.name}",
        nodes=nodes,
        commands=session.commands,
        inputs=session.inputs,
        context=session.context,
    )


def _with_provider(node: Node, branch: Branch) -> Node:
    stage = node.stage
    if branch.provider is not None and branch.provider != stage.provider_name:
        stage = attrs.evolve(stage, provider=branch.provider, model=branch.model)
    elif branch.model is not None:
        stage = attrs.evolve(stage, model=branch.model)
    return attrs.evolve(node, stage=stage)


def _end(rec: Recorder, status: RunStatus, error: RunError | None) -> RunState:
    """Record the branch's ending in its state file (the session's ending is the engine's)."""
    if error is not None:
        error = RunError(error.type, rec.redactor.text(error.message), error.iteration)
    reason = "all_stages_complete" if status is RunStatus.COMPLETE else None
    rec.state = rec.current.ended(status, at=utc_now(), reason=reason, error=error)
    write_state(rec.paths.state_file, rec.state)
    return rec.state


def _result(name: str, state: RunState, paths: BranchPaths, pipeline: Pipeline) -> BranchResult:
    outputs = {
        node.id: str(ctxmod.stage_output(paths, index, node))
        for index, node in enumerate(pipeline.nodes)
    }
    return BranchResult(
        name=name,
        status=state.status.value,
        stages={s.id: (s.iterations_completed, s.termination_reason) for s in state.stages},
        outputs=outputs,
        error=(state.error.type, state.error.message) if state.error else None,
    )


# ---------------------------------------------------------------------- manifest


def write_manifest(
    block: Path,
    node_id: str,
    results: Sequence[BranchResult],
    session: SessionPaths,
    index: int,
) -> None:
    """Write ``manifest.json``: each branch's status, and per stage its outputs."""
    providers: dict[str, Any] = {}
    for result in results:
        paths = session.branch(index, node_id, result.name)
        stages: dict[str, Any] = {}
        for position, (stage_id, (iterations, reason)) in enumerate(result.stages.items()):
            folder = paths.stage_dir(position, stage_id)
            stages[stage_id] = {
                "index": position,
                "iterations": iterations,
                "termination_reason": reason,
                "output": result.outputs.get(stage_id),
                "history": [
                    str(folder / "iterations" / f"{n:03d}" / ctxmod.OUTPUT_FILE)
                    for n in range(1, iterations + 1)
                ],
            }
        providers[result.name] = {
            "status": result.status,
            "folder": str(paths.folder),
            "stages": stages,
            "error": dict(zip(("type", "message"), result.error, strict=True))
            if result.error
            else None,
        }
    document = {"block": node_id, "updated_at": utc_now(), "providers": providers}
    write_atomic(block / MANIFEST_FILE, json.dumps(document, indent=2) + "\n")


def read_manifest(path: Path) -> Mapping[str, Any] | None:
    """Return a block's manifest, or None if it has none (yet) or it cannot be read."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def resolve_from_parallel(
    session: SessionPaths,
    pipeline: Pipeline,
    before: int,
    specs: Sequence[ParallelInput],
) -> dict[str, list[str]]:
    """Return, per provider, the output files ``specs`` select from blocks before ``before``.

    Each spec reads the latest block (of the nodes before ``before``) that has a stage of
    its id (and the given block id, if any). Files that do not exist are left out.
    """
    found: dict[str, list[str]] = {}
    if not specs:
        return found
    manifests = [
        (node.id, read_manifest(session.block_dir(i, node.id) / MANIFEST_FILE))
        for i, node in enumerate(pipeline.nodes[:before])
    ]
    for spec in specs:
        for block_id, manifest in reversed(manifests):
            if manifest is None or (spec.block is not None and spec.block != block_id):
                continue
            providers = manifest.get("providers") or {}
            if not any(spec.stage in (p.get("stages") or {}) for p in providers.values()):
                continue
            for name, provider in providers.items():
                if spec.providers is not None and name not in spec.providers:
                    continue
                entry = (provider.get("stages") or {}).get(spec.stage)
                if not entry:
                    continue
                files = entry.get("history", []) if spec.select == "history" else [entry["output"]]
                kept = [f for f in files if f and Path(f).is_file()]
                found.setdefault(name, []).extend(kept)
            break
    return found
