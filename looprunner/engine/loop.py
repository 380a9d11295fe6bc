"""The engine: runs a session's pipeline, one stage-type iteration at a time.

Per stage it builds the stage's type and termination from the registries; per iteration
it asks the termination whether to go on, then lets :mod:`looprunner.engine.iteration`
run and record it. State is written before the matching event, so after a crash the
state is never behind the event log (:mod:`looprunner.engine.recovery` rebuilds what the
log missed).

Only this process writes the session's state and events, and only while it holds the
session lock.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import traceback
from collections.abc import Callable, Mapping
from typing import TextIO

from looprunner import convert
from looprunner.builtin.defaults import STAGE_TYPE
from looprunner.engine import context as ctxmod
from looprunner.engine import faults, recovery
from looprunner.engine.agent_status import read_history
from looprunner.engine.agents import AgentLauncher, Stopped
from looprunner.engine.iteration import (
    InterruptGuard,
    IterationFailed,
    IterationPlan,
    run_iteration,
)
from looprunner.engine.judge import JUDGE_DIR, JudgeFailedTooOften, run_judge
from looprunner.engine.process import AgentRunner
from looprunner.engine.recorder import EngineLogHandler, Recorder
from looprunner.errors import LooprunnerError, SessionConflictError
from looprunner.models import AgentStatus, Pipeline, RunError, RunState, RunStatus, StageResult
from looprunner.models import events as ev
from looprunner.names import SessionPaths
from looprunner.plugins.registry import Registries
from looprunner.protocols import SessionView, StageProgress, StageType
from looprunner.store import holders
from looprunner.store.atomic import sweep_temp_files
from looprunner.store.lock import SessionLock
from looprunner.store.state import read_state

#: how long the engine waits for the lock its launcher may still be releasing
LOCK_TIMEOUT = 10.0


class _LockLost(Exception):
    """Another process holds this session's lock now: this engine must write nothing more."""


class Engine:
    """Runs one session to its end; see the module docstring for the protocol.

    Parameters
    ----------
    paths:
        The session's files.
    backend:
        The name of the backend running this engine (recorded in state and lock).
    registries:
        The stage types, providers and terminations to use.
    session_view:
        What lifecycle hooks receive as ``session``.
    launch_token:
        The token of the launch that started this engine: it runs only if the lock file
        still holds that launch's record when it takes the lock (see
        :mod:`looprunner.store.holders`). None for an engine nobody launched.
    """

    def __init__(
        self,
        paths: SessionPaths,
        *,
        backend: str,
        registries: Registries,
        session_view: SessionView,
        env: Mapping[str, str] | None = None,
        out: TextIO | None = None,
        launch_token: str | None = None,
    ) -> None:
        self.paths = paths
        self.launch_token = launch_token
        self.backend = backend
        self.registries = registries
        self.env = dict(os.environ if env is None else env)
        self.runner = AgentRunner()
        self.lock = SessionLock(paths.lock_file)
        self.recorder = Recorder(
            paths, env=self.env, registries=registries, session_view=session_view, out=out
        )
        self.launcher = AgentLauncher(
            providers=registries.providers,
            runner=self.runner,
            cwd=paths.project,
            env=self.env,
            echo=self.recorder.write_out,
            end_echo=self.recorder.end_output,
        )
        self.guard = InterruptGuard()

    @property
    def state(self) -> RunState | None:
        """The state as last recorded, or None before the engine recorded one."""
        return self.recorder.state

    @property
    def recorded(self) -> bool:
        """True once the engine has written its state."""
        return self.recorder.state is not None

    def request_stop(self) -> None:
        """Stop the session: the agent's group is ended and the session recorded killed."""
        self.runner.request_stop()

    def run(self, *, resume: bool = False) -> RunState:
        """Run (or resume) the session to its end and return the final state.

        Raises
        ------
        SessionConflictError
            If another engine holds the session's lock.
        """
        if not self.lock.acquire(timeout=LOCK_TIMEOUT):
            raise SessionConflictError(
                f"session {self.paths.name!r} is already running (its lock is held)",
                session=self.paths.name,
            )
        # the handlers first: once the lock file names this engine, ``kill`` may signal
        # it, and a stop must be recorded (before any iteration), not kill it unrecorded
        restore = self._install_signal_handlers()
        try:
            self._claim_launch()
        except BaseException:
            restore()
            raise
        log_handler = EngineLogHandler(self.recorder)
        logging.getLogger().addHandler(log_handler)
        try:
            self.recorder.open_log()
            sweep_temp_files(self.paths.run_dir)
            return self._run_locked(resume=resume)
        finally:
            logging.getLogger().removeHandler(log_handler)
            restore()
            self.runner.close()
            state = self.recorder.state
            self.lock.release(remove=state is not None and state.status.finished)
            self.recorder.close_log()

    def _claim_launch(self) -> None:
        """Take over from the launch that started this engine, or stop before writing.

        Between the launcher letting go of the lock and this engine taking it, a
        ``kill``, a ``cleanup`` or a second launch may have taken it and recorded an
        ending, removed the lock file or written a launch of its own: then the launch
        record is not ours any more, and this engine must not run the session on. The
        engine's own metadata replaces the record, so no other engine can claim it.
        """
        if self.launch_token is not None:
            launch = holders.launch_of(self.lock.metadata())
            why = None
            if launch is None or launch.get("token") != self.launch_token:
                why = "its launch was overtaken (killed, cleaned up or launched again)"
            elif launch.get("resumes") is not None:
                try:
                    state = read_state(self.paths.state_file)
                except ValueError:
                    state = None
                if state is None or holders.fingerprint(state) != launch["resumes"]:
                    now = state.status.value if state is not None else "unreadable"
                    why = f"its state changed since the launch (now {now})"
            if why is not None:
                # nobody else may hold a lock file we hold: ours to remove unless another
                # launch's record is in it, which that launch's engine must still find
                self.lock.release(remove=launch is None or launch.get("token") == self.launch_token)
                raise SessionConflictError(
                    f"session {self.paths.name!r} was not started: {why} while its engine "
                    "was starting; see 'looprunner status'",
                    session=self.paths.name,
                )
        self.lock.write_metadata(self.recorder.lock_metadata(self.backend))

    # ------------------------------------------------------------------ main loop

    def _run_locked(self, *, resume: bool) -> RunState:
        rec = self.recorder
        pipeline = convert.load_resolved_pipeline(self.paths.pipeline_file)
        identity = {**rec.identity(), "backend": self.backend}
        resumed = recovery.begin(rec, pipeline, identity=identity, resume=resume)
        if resumed is not None:
            recovery.stop_leftover_agent(rec, resumed)
            recovery.reconcile_events(rec, pipeline)
            recovery.announce_resume(rec, resumed)
        else:
            rec.events.append(
                ev.SESSION_START,
                data={"pipeline": pipeline.name, "backend": self.backend, "type": pipeline.kind},
            )
            rec.log(
                f"session {self.paths.name} started: {pipeline.kind} {pipeline.name!r}, "
                f"{len(pipeline.nodes)} stage(s)"
            )
        rec.hook("on_session_start", pipeline=pipeline)
        try:
            for index in range(rec.current.current_stage, len(pipeline.nodes)):
                if rec.current.stages[index].status is not RunStatus.COMPLETE:
                    self._run_stage(pipeline, index)
        except Stopped:
            rec.log("session killed")
            return rec.end(RunStatus.KILLED, reason="killed")
        except _LockLost:
            rec.log("another engine took over this session's lock; stopping without writing")
            return rec.current
        except IterationFailed as failure:
            return self._fail(failure.error)
        except LooprunnerError as exc:
            return self._fail(RunError("config", exc.message, rec.current.iteration or None))
        except Exception as exc:
            rec.log(traceback.format_exc())
            return self._fail(
                RunError(
                    "engine_error",
                    f"{type(exc).__name__}: {exc}",
                    rec.current.iteration or None,
                )
            )
        reason = (
            "all_stages_complete"
            if pipeline.kind == "pipeline"
            else (rec.current.stages[-1].termination_reason or "complete")
        )
        state = rec.end(RunStatus.COMPLETE, reason=reason)
        rec.log(f"session complete: {reason}")
        rec.hook("on_complete", state=state)
        return state

    def _fail(self, error: RunError) -> RunState:
        state = self.recorder.end(RunStatus.FAILED, error=error)
        assert state.error is not None
        self.recorder.log(f"session failed: {state.error.type}: {state.error.message}")
        self.recorder.hook("on_error", error=state.error)
        return state

    def _stage_type(self, pipeline: Pipeline, index: int) -> StageType:
        stage = pipeline.nodes[index].stage
        stage_type = self.registries.stage_types.get(stage.type or STAGE_TYPE)(stage)
        stage_type.validate()
        return stage_type

    def _run_stage(self, pipeline: Pipeline, index: int) -> None:
        rec = self.recorder
        node = pipeline.nodes[index]
        stage_state = rec.current.stages[index]
        termination = self.registries.terminations.get(node.stage.termination.type)(
            node.stage.termination
        )
        termination.validate()
        stage_type = self._stage_type(pipeline, index)
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
            rec.log(
                f"stage {index + 1}/{len(pipeline.nodes)} {node.id} ({node.stage.name}): "
                f"up to {cap} iteration(s), provider {node.stage.provider_name}"
            )
        else:
            rec.set_stage(index, status=RunStatus.RUNNING)
        while True:
            progress = StageProgress(
                completed=completed,
                cap=cap,
                history=verdicts,
                project=self.paths.project,
                session=self.paths.name,
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
            if self.runner.stop_requested:
                raise Stopped
            self._check_lock()
            if completed > 0 and node.stage.delay > 0 and self.runner.wait_stop(node.stage.delay):
                raise Stopped
            plan = IterationPlan(
                pipeline, index, completed + 1, cap, history[-1] if history else None
            )
            status = run_iteration(
                plan, stage_type, recorder=rec, launcher=self.launcher, guard=self.guard
            )
            completed += 1
            history.append(status)
            if judge is not None:
                verdicts.append(self._judge(pipeline, index, completed))
        self._complete_stage(pipeline, index, completed, reason, history[-1] if history else None)

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
        return read_history(
            [self.paths.iteration_dir(index, node_id, n) / name for n in range(1, completed + 1)]
        )

    def _judge(self, pipeline: Pipeline, index: int, iteration: int) -> AgentStatus:
        """Ask the stage's judge agent for its verdict (see :mod:`looprunner.engine.judge`)."""
        try:
            return run_judge(self.recorder, self.launcher, pipeline, index, iteration)
        except JudgeFailedTooOften as exc:
            raise IterationFailed(RunError("judge_error", str(exc), iteration)) from exc

    def _check_lock(self) -> None:
        """Notice a lock file deleted by hand, and put it back (or stop if it was taken)."""
        if self.lock.still_ours():
            return
        if not self.lock.reassert():
            raise _LockLost
        self.lock.write_metadata(self.recorder.lock_metadata(self.backend))
        self.recorder.log("the lock file was deleted while this engine ran; it has been recreated")

    def _install_signal_handlers(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {}

        def handler(signum: int, frame: object) -> None:
            self.request_stop()
            if self.guard.in_type_code:
                self.guard.in_type_code = False
                raise Stopped  # a stage type's own code: unwind it now

        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            previous[sig] = signal.signal(sig, handler)

        def restore() -> None:
            for sig, old in previous.items():
                signal.signal(sig, old)

        return restore
