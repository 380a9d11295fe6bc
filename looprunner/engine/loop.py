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
import sys
import threading
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

import attrs

from looprunner import convert
from looprunner.engine import contain, disk, recovery
from looprunner.engine.agents import AgentLauncher, Stopped, agent_variables
from looprunner.engine.branches import BranchRunner
from looprunner.engine.budget import BudgetReached
from looprunner.engine.guard import InterruptGuard
from looprunner.engine.iteration import IterationFailed
from looprunner.engine.process import AgentRunner
from looprunner.engine.recorder import EngineLogHandler, Recorder
from looprunner.engine.stages import StageLoop
from looprunner.errors import ConfigError, LooprunnerError, SessionConflictError
from looprunner.models import Pipeline, RunError, RunState, RunStatus, Worktree
from looprunner.models import events as ev
from looprunner.names import SessionPaths
from looprunner.plugins.registry import Registries
from looprunner.protocols import SessionView
from looprunner.store import holders
from looprunner.store.atomic import sweep_temp_files
from looprunner.store.diskfault import recorded_fault
from looprunner.store.lock import SessionLock, read_metadata
from looprunner.store.projection import read_projected
from looprunner.store.worktree import read_worktree

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
    own_process:
        The engine owns its process (``python -m looprunner engine``): it then makes the
        process adopt orphaned descendants, so programs its agents detach stay findable
        (:mod:`looprunner.engine.contain`). An engine sharing its caller's process
        leaves the process as it is.
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
        own_process: bool = False,
        launch_token: str | None = None,
    ) -> None:
        self.paths = paths
        self.own_process = own_process
        self.launch_token = launch_token
        self.backend = backend
        self.registries = registries
        self.env = dict(os.environ if env is None else env)
        self.runner = AgentRunner()
        self.lock = SessionLock(paths.lock_file)
        self.recorder = Recorder(
            paths, env=self.env, registries=registries, session_view=session_view, out=out
        )
        self.launcher = self._launcher_for(self.recorder, self.runner)
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
        if self.own_process:
            self.runner.adopter = contain.adopt()
        # a fault the previous engine could record only in the lock file, read before the
        # engine's own metadata replaces it
        previous = read_metadata(self.paths.lock_file)
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
        #: the ending is only in the lock file (a disk fault): keep the file
        ending_in_lock = False
        try:
            self.recorder.open_log()
            sweep_temp_files(self.paths.run_dir)
            return self._run_locked(resume=resume, previous_lock=previous)
        except Exception as exc:
            iteration = self.state.iteration or None if self.state is not None else None
            error = disk.fault_of(exc, self.paths, iteration)
            if error is None or self.state is None:
                raise
            state, in_state = disk.end_by_fault(self.recorder, self.lock, error, err=sys.stderr)
            ending_in_lock = not in_state
            self.recorder.hook("on_error", error=state.error)
            return state
        finally:
            logging.getLogger().removeHandler(log_handler)
            restore()
            self.runner.close()
            final = self.recorder.state
            finished = final is not None and final.status.finished
            self.lock.release(remove=finished and not ending_in_lock)
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
                    state = read_projected(self.paths.state_file, self.paths.events_file)
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

    def _run_locked(self, *, resume: bool, previous_lock: dict[str, Any]) -> RunState:
        rec = self.recorder
        pipeline = convert.load_resolved_pipeline(self.paths.pipeline_file)
        worktree = self._work_in_worktree()
        # every launcher (a parallel block's too) shares this mapping: set once, seen by all
        self.env.update(agent_variables(pipeline, self.paths.name))
        identity = {**rec.identity(), "backend": self.backend, "worktree": worktree}
        resumed = recovery.begin(rec, pipeline, identity=identity, resume=resume)
        if resumed is not None:
            recovery.stop_leftover_agent(rec, resumed)
            fault = recorded_fault(previous_lock, resumed)
            recovery.reconcile_events(rec, pipeline, previous=resumed, fault=fault)
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
        stages = self._stage_loop(pipeline)
        try:
            self._check_workdir()
            for index in range(rec.current.current_stage, len(pipeline.nodes)):
                if rec.current.stages[index].status is not RunStatus.COMPLETE:
                    stages.run_stage(pipeline, index)
        except Stopped:
            rec.log("session killed")
            return rec.end(RunStatus.KILLED, reason="killed")
        except BudgetReached as spent:
            state = rec.end(RunStatus.COMPLETE, reason=spent.reason)
            rec.log(f"session complete: {spent.reason}")
            rec.hook("on_complete", state=state)
            return state
        except _LockLost:
            rec.log("another engine took over this session's lock; stopping without writing")
            return rec.current
        except IterationFailed as failure:
            return self._fail(failure.error)
        except LooprunnerError as exc:
            return self._fail(RunError("config", exc.message, rec.current.iteration or None))
        except Exception as exc:
            if disk.fault_of(exc, self.paths, rec.current.iteration or None) is not None:
                raise  # the disk refused a write: run() records what it can
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

    def _work_in_worktree(self) -> Worktree | None:
        """Point every agent of this run at the worktree its launcher recorded, if any.

        The state, lock, event log and context files stay in the project's run folder;
        only where the agents work (and what they are told the project is) changes.
        """
        try:
            worktree = read_worktree(self.paths.run_dir)
        except ValueError as exc:
            raise ConfigError(str(exc), path=self.paths.run_dir) from exc
        if worktree is not None:
            self.paths = attrs.evolve(self.paths, workdir=Path(worktree.workdir))
            self.recorder.paths = self.paths
            self.launcher.cwd = self.paths.agent_dir
        return worktree

    def _check_workdir(self) -> None:
        """Fail the run (resumably) when its worktree was removed under it."""
        if not self.paths.agent_dir.is_dir():
            raise LooprunnerError(
                f"the session's worktree {self.paths.agent_dir} is missing; "
                f"'looprunner resume {self.paths.name}' makes it again from its branch"
            )

    def _stage_loop(self, pipeline: Pipeline) -> StageLoop:
        """Return the loop that runs the session's own nodes."""
        branches = BranchRunner(
            self.recorder,
            pipeline,
            registries=self.registries,
            runner=self.runner,
            make_launcher=self._launcher_for,
            check_lock=self._check_lock,
        )
        return StageLoop(
            self.recorder,
            self.launcher,
            registries=self.registries,
            guard=self.guard,
            check_lock=self._check_lock,
            branches=branches,
            from_parallel=branches.node_inputs,
        )

    def _launcher_for(self, recorder: Recorder, runner: AgentRunner) -> AgentLauncher:
        """Return a launcher like the engine's that runs on ``runner``, echoing to ``recorder``."""
        return AgentLauncher(
            providers=self.registries.providers,
            runner=runner,
            cwd=self.paths.agent_dir,
            env=self.env,
            echo=recorder.write_out,
            end_echo=recorder.end_output,
            note=recorder.log,
            settle=recorder.raw_events.settle,
        )

    def _fail(self, error: RunError) -> RunState:
        disk.check_run_folder(self.paths, error.iteration)  # never recorded in a new folder
        try:
            state = self.recorder.end(RunStatus.FAILED, error=error)
        except OSError as exc:
            fault = disk.after_failure(exc, self.paths, error)
            if fault is None:
                raise
            raise fault from exc
        assert state.error is not None
        self.recorder.log(f"session failed: {state.error.type}: {state.error.message}")
        self.recorder.hook("on_error", error=state.error)
        return state

    def _check_lock(self) -> None:
        """Notice a lock file deleted by hand, and put it back (or stop if it was taken).

        Called before every iteration; a run folder deleted meanwhile ends the run here,
        before the iteration could make its folders (and so the run folder) again.
        """
        state = self.recorder.state
        disk.check_run_folder(self.paths, state.iteration_completed + 1 if state else None)
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
