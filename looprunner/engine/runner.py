"""The engine: runs a session's pipeline, one fresh agent per iteration.

Per iteration it clears what an interrupted run of that iteration left, writes
``context.json``, renders the prompt, runs the provider in its own process group,
captures the output, reads ``status.json``, records the iteration in state and events,
and asks the stage's termination whether to go on. State is written before the matching
event, so after a crash the state is never behind the event log.

Only this process writes the session's state and events, and only while it holds the
session lock.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

import attrs

from looprunner import procinfo
from looprunner._version import __version__
from looprunner.engine import context as ctxmod
from looprunner.engine import faults
from looprunner.engine.agent_status import StatusProblem, read_agent_status, read_history
from looprunner.engine.process import (
    AgentRunner,
    ProcessResult,
    kill_grace,
    stop_leftover_group,
)
from looprunner.engine.prompt import render, template_values
from looprunner.engine.redact import Redactor
from looprunner.errors import LooprunnerError, SessionConflictError
from looprunner.models import (
    AgentPaths,
    AgentStatus,
    Decision,
    Invocation,
    IterationResult,
    Pipeline,
    RunError,
    RunState,
    RunStatus,
    StageResult,
    StageState,
    events,
)
from looprunner.names import SessionPaths
from looprunner.plugins import Registries, call_lifecycle
from looprunner.protocols import StageProgress
from looprunner.store.atomic import sweep_temp_files, write_atomic
from looprunner.store.events import EventLog, iter_events, utc_now
from looprunner.store.lock import SessionLock
from looprunner.store.state import read_state, write_state

#: how long the engine waits for the lock its launcher may still be releasing
LOCK_TIMEOUT = 10.0
#: output kept in memory per iteration, for output.md when the agent writes none
MAX_CAPTURE = 16 * 1024 * 1024
#: where a judge agent's verdict goes, inside the iteration's folder
JUDGE_DIR = "judge"
JUDGE_PROMPT = Path(__file__).resolve().parent.parent / "builtin" / "prompts" / "judge.md"
#: a judge that fails this many times in a row fails the session
JUDGE_FAILURES = 3


class _Stopped(Exception):
    """A stop was requested (SIGTERM, SIGINT, SIGHUP or ``request_stop``)."""


class JudgeFailedTooOften(Exception):
    """The judge failed JUDGE_FAILURES times in a row."""


class JudgeStopped(Exception):
    """A stop was requested while the judge ran."""


def _verdict(status: AgentStatus) -> dict[str, str]:
    """Return what an ``iteration_complete`` event says of the agent's decision."""
    return {
        "decision": status.decision.value,
        "reason": status.reason,
        "summary": status.summary,
    }


class OutputCapture:
    """What an agent printed: echoed as it comes, kept (up to MAX_CAPTURE) for output.md."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        self._echo = echo
        self._data = bytearray()

    def feed(self, chunk: bytes) -> None:
        """Take one chunk of output."""
        self._data.extend(chunk[: max(0, MAX_CAPTURE - len(self._data))])
        self._echo(chunk.decode("utf-8", "replace"))

    def text(self) -> str:
        """Everything kept, as text."""
        return self._data.decode("utf-8", "replace")


class _EngineLogHandler(logging.Handler):
    """Puts what plugins log (``logging``, level INFO and up) into engine.log, redacted."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(level=logging.INFO)
        self.engine = engine

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.engine._log(f"{record.name}: {record.getMessage()}")
        except Exception:  # logging must never break the engine
            self.handleError(record)


class _LockLost(Exception):
    """Another process holds this session's lock now: this engine must write nothing more."""


class _IterationFailed(Exception):
    def __init__(self, error: RunError) -> None:
        super().__init__(error.message)
        self.error = error


class Engine:
    """Runs one session to its end; see the module docstring for the protocol."""

    def __init__(
        self,
        paths: SessionPaths,
        *,
        backend: str,
        registries: Registries,
        env: Mapping[str, str] | None = None,
        out: TextIO | None = None,
    ) -> None:
        self.paths = paths
        self.backend = backend
        self.registries = registries
        self.env = dict(os.environ if env is None else env)
        self.out = out if out is not None else sys.stdout
        self.redactor = Redactor(self.env)
        self.runner = AgentRunner()
        self.lock = SessionLock(paths.lock_file)
        self.events = EventLog(paths.events_file, paths.name, redact=self.redactor.data)
        self.state: RunState | None = None
        self._session_api: Any = None
        self._log_handle: Any = None
        self._log_lock = threading.Lock()

    # ------------------------------------------------------------------ public

    @property
    def session_api(self) -> Any:
        """The :class:`~looprunner.session.Session` that hooks receive."""
        if self._session_api is None:
            from looprunner.session import Session

            self._session_api = Session(
                self.paths.name, self.paths.project, plugin_manager=self.registries.pm
            )
            self._session_api._registries = self.registries
        return self._session_api

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
        restore = self._install_signal_handlers()
        log_handler = _EngineLogHandler(self)
        logging.getLogger().addHandler(log_handler)
        try:
            self._open_log()
            self.lock.write_metadata(self._lock_metadata())
            sweep_temp_files(self.paths.run_dir)
            return self._run_locked(resume=resume)
        finally:
            logging.getLogger().removeHandler(log_handler)
            restore()
            self.runner.close()
            finished = self.state is not None and self.state.status.finished
            self.lock.release(remove=finished)
            self._close_log()

    # ------------------------------------------------------------------ main loop

    def _run_locked(self, *, resume: bool) -> RunState:
        from looprunner import convert

        pipeline = convert.load_resolved_pipeline(self.paths.pipeline_file)
        previous = read_state(self.paths.state_file) if resume else None
        if previous is not None:
            self.state = attrs.evolve(
                previous,
                status=RunStatus.RUNNING,
                finished_at=None,
                completion_reason=None,
                error=None,
                backend=self.backend,
                iteration_started=None,
                agent_pid=None,
                agent_start_time=None,
                **self._identity(),
            )
        else:
            self.state = self._fresh_state(pipeline)
        if not self.paths.progress_file.exists():
            write_atomic(self.paths.progress_file, f"# Progress: {self.paths.name}\n\n")
        self._save()
        if previous is not None:
            self._stop_leftover_agent(previous)
            self._reconcile_events(pipeline)
            self.events.append(
                events.SESSION_RESUMED,
                stage=self.state.current.id,
                iteration=self.state.iteration_completed + 1,
                data={"from_iteration": self.state.iteration_completed + 1},
            )
            self._log(
                f"resumed at stage {self.state.current.id}, "
                f"iteration {self.state.iteration_completed + 1}"
            )
        else:
            self.events.append(
                events.SESSION_START,
                data={"pipeline": pipeline.name, "backend": self.backend, "type": pipeline.kind},
            )
            self._log(
                f"session {self.paths.name} started: {pipeline.kind} {pipeline.name!r}, "
                f"{len(pipeline.nodes)} stage(s)"
            )
        self._hook("on_session_start", pipeline=pipeline)
        try:
            for index in range(self.state.current_stage, len(pipeline.nodes)):
                if self.state.stages[index].status is not RunStatus.COMPLETE:
                    self._run_stage(pipeline, index)
        except _Stopped:
            return self._finish_killed()
        except _LockLost:
            self._log("another engine took over this session's lock; stopping without writing")
            return self.state
        except _IterationFailed as failure:
            return self._finish_failed(failure.error)
        except LooprunnerError as exc:
            return self._finish_failed(
                RunError(type="config", message=exc.message, iteration=self.state.iteration or None)
            )
        except Exception as exc:
            self._log(traceback.format_exc())
            return self._finish_failed(
                RunError(
                    type="engine_error",
                    message=f"{type(exc).__name__}: {exc}",
                    iteration=self.state.iteration or None,
                )
            )
        reason = (
            "all_stages_complete"
            if pipeline.kind == "pipeline"
            else (self.state.stages[-1].termination_reason or "complete")
        )
        self._save(status=RunStatus.COMPLETE, finished_at=utc_now(), completion_reason=reason)
        self.events.append(events.SESSION_COMPLETE, data={"reason": reason})
        self._log(f"session complete: {reason}")
        self._hook("on_complete", state=self.state)
        return self.state

    def _run_stage(self, pipeline: Pipeline, index: int) -> None:
        assert self.state is not None
        node = pipeline.nodes[index]
        stage_state = self.state.stages[index]
        termination = self.registries.terminations.get(node.stage.termination.type)(
            node.stage.termination
        )
        termination.validate()
        provider = self.registries.providers.get(node.stage.provider_name)()
        cap = stage_state.max_iterations
        completed = stage_state.iterations_completed if index == self.state.current_stage else 0
        history = read_history(
            [
                self.paths.iteration_dir(index, node.id, n) / ctxmod.STATUS_FILE
                for n in range(1, completed + 1)
            ]
        )
        judge = node.stage.termination.judge
        # with a judge, the judge's verdicts (a failed judge counts as "continue") decide
        verdicts = (
            read_history(
                [
                    self.paths.iteration_dir(index, node.id, n) / JUDGE_DIR / ctxmod.STATUS_FILE
                    for n in range(1, completed + 1)
                ]
            )
            if judge is not None
            else history
        )
        if completed == 0 and stage_state.status is RunStatus.PENDING:
            # state first (the stage is running), then its event: a crash in between
            # leaves the event to be re-appended on resume, never appended twice
            self._set_stage(index, status=RunStatus.RUNNING)
            self._save(current_stage=index, iteration=0, iteration_completed=0)
            self.events.append(
                events.STAGE_START,
                stage=node.id,
                data={"stage": node.stage.name, "max_iterations": cap},
            )
            self._log(
                f"stage {index + 1}/{len(pipeline.nodes)} {node.id} ({node.stage.name}): "
                f"up to {cap} iteration(s), provider {node.stage.provider_name}"
            )
        else:
            self._set_stage(index, status=RunStatus.RUNNING)
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
                raise _IterationFailed(
                    RunError("termination_error", exc.message, completed + 1)
                ) from exc
            if reason is None and completed >= cap:
                reason = termination.cap_reason
            if reason is not None:
                break
            if self.runner.stop_requested:
                raise _Stopped
            self._check_lock()
            if completed > 0 and node.stage.delay > 0 and self.runner.wait_stop(node.stage.delay):
                raise _Stopped
            status = self._run_iteration(
                pipeline, index, completed + 1, cap, provider, history[-1] if history else None
            )
            completed += 1
            history.append(status)
            if judge is not None:
                verdicts.append(self._run_judge(pipeline, index, completed, cap))
        self._set_stage(index, status=RunStatus.COMPLETE, termination_reason=reason)
        if index + 1 < len(pipeline.nodes):
            self._save(current_stage=index + 1, iteration=0, iteration_completed=0)
        else:
            self._save()
        faults.checkpoint("stage_complete_saved", completed)
        last = history[-1] if history else None
        self.events.append(
            events.STAGE_COMPLETE,
            stage=node.id,
            iteration=completed,
            data={
                "reason": reason,
                "iterations": completed,
                "agent_reason": last.reason if last else None,
            },
        )
        self._log(f"stage {node.id} complete after {completed} iteration(s): {reason}")
        self._hook(
            "on_stage_complete",
            stage=node,
            result=StageResult(
                id=node.id, stage=node.stage.name, iterations=completed, reason=reason
            ),
        )

    def _run_iteration(
        self,
        pipeline: Pipeline,
        index: int,
        iteration: int,
        cap: int,
        provider: Any,
        previous: AgentStatus | None,
    ) -> AgentStatus:
        node = pipeline.nodes[index]
        stage = node.stage
        folder = self.paths.iteration_dir(index, node.id, iteration)
        if folder.exists():  # what an interrupted run of this iteration left must not decide it
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        context_file = folder / ctxmod.CONTEXT_FILE
        status_file = folder / ctxmod.STATUS_FILE
        output_file = folder / ctxmod.OUTPUT_FILE
        agent_output = output_file
        values = template_values(
            ctx=str(context_file),
            status=str(status_file),
            progress=str(self.paths.progress_file),
            output=str(output_file),
            iteration=iteration,
            session=self.paths.name,
            context=stage.context,
        )
        if stage.output_path:
            agent_output = self.paths.project / render(stage.output_path, values)
            agent_output.parent.mkdir(parents=True, exist_ok=True)
            values.update(OUTPUT=str(agent_output), OUTPUT_PATH=str(agent_output))
        document = ctxmod.build_context(
            paths=self.paths,
            pipeline=pipeline,
            index=index,
            iteration=iteration,
            cap=cap,
            previous=previous,
            output_path=agent_output,
        )
        # not fsynced: if lost in a crash, the iteration re-runs and writes it again
        write_atomic(
            context_file, json.dumps(self.redactor.data(document), indent=2) + "\n", durable=False
        )
        self._hook("on_iteration_start", stage=node, iteration=iteration, context=document)
        prompt = render(stage.prompt, values)
        invocation = Invocation(
            session=self.paths.name,
            project=str(self.paths.project),
            stage_id=node.id,
            iteration=iteration,
            prompt=prompt,
            paths=AgentPaths(
                context=str(context_file),
                status=str(status_file),
                output=str(agent_output),
                progress=str(self.paths.progress_file),
            ),
            model=stage.model,
            command=stage.command,
            fixtures=str(stage.fixtures) if stage.fixtures else None,
            mock_delay=stage.mock_delay,
        )
        self._log(
            f"iteration {iteration}/{cap} of {node.id} starting "
            f"({stage.provider_name}{', ' + stage.model if stage.model else ''})"
        )
        try:
            command = provider.command(invocation)
        except LooprunnerError as exc:
            raise _IterationFailed(
                RunError(type="provider_exit", message=exc.message, iteration=iteration)
            ) from exc
        captured = self.capture()
        on_output = captured.feed

        def on_start(pid: int) -> None:
            # bookkeeping, not history: atomic but not fsynced (the next durable write of
            # state or events carries it to disk)
            self._save(
                durable=False,
                iteration=iteration,
                iteration_started=utc_now(),
                agent_pid=pid,
                agent_start_time=procinfo.start_time(pid),
            )
            self.events.append(
                events.ITERATION_START,
                durable=False,
                stage=node.id,
                iteration=iteration,
                data={"provider": stage.provider_name, "model": stage.model},
            )
            faults.checkpoint("agent_running", iteration)

        faults.checkpoint("before_agent", iteration)
        result = self.runner.run(
            command,
            cwd=self.paths.project,
            env=self.env,
            timeout=stage.timeout,
            on_output=on_output,
            on_start=on_start,
        )
        assert self.state is not None
        self.state = attrs.evolve(self.state, agent_pid=None, agent_start_time=None)
        if agent_output != output_file and agent_output.is_file():
            # the stage writes its output into the project: keep a copy with the run
            text = agent_output.read_text(encoding="utf-8", errors="replace")
            write_atomic(output_file, self.redactor.text(text))
        elif not output_file.exists() or output_file.stat().st_size == 0:
            write_atomic(output_file, self.redactor.text(captured.text()))
        if result.stopped:
            raise _Stopped
        faults.checkpoint("after_agent", iteration)
        status = self._judge(result, status_file, iteration, node.id)
        output_text = output_file.read_text(encoding="utf-8", errors="replace")
        # a copy of the iteration's output.md, written again if lost
        write_atomic(
            ctxmod.stage_output(self.paths, index, node),
            self.redactor.text(output_text),
            durable=False,
        )
        self._set_stage(index, iterations_completed=iteration)
        self._save(iteration_completed=iteration, iteration_started=None)
        faults.checkpoint("state_written", iteration)
        self.events.append(
            events.ITERATION_COMPLETE,
            stage=node.id,
            iteration=iteration,
            data={
                **_verdict(status),
                "exit_code": result.exit_code,
                "duration": round(result.duration, 3),
            },
        )
        self._log(
            f"iteration {iteration} done: {status.decision.value}"
            + (f" ({status.summary})" if status.summary else "")
        )
        self._hook(
            "on_iteration",
            stage=node,
            iteration=iteration,
            result=IterationResult(
                decision=status.decision,
                reason=status.reason,
                summary=status.summary,
                exit_code=result.exit_code,
                duration=result.duration,
                status=status,
            ),
        )
        return status

    def _judge(
        self, result: ProcessResult, status_file: Path, iteration: int, node_id: str
    ) -> AgentStatus:
        """Turn the agent's exit and status file into a status, or fail the iteration."""
        error: RunError | None = None
        if result.spawn_error is not None:
            error = RunError(
                "provider_exit", f"could not start the agent: {result.spawn_error}", iteration
            )
        elif result.timed_out:
            error = RunError(
                "provider_timeout",
                f"the agent ran past the stage timeout and was stopped (exit {result.exit_code})",
                iteration,
            )
        elif result.exit_code != 0:
            error = RunError(
                "provider_exit", f"the agent exited with status {result.exit_code}", iteration
            )
        else:
            try:
                status = read_agent_status(status_file)
            except StatusProblem as problem:
                error = RunError(problem.type, problem.message, iteration)
            else:
                if status.decision is Decision.ERROR:
                    error = RunError(
                        "agent_error", status.reason or "the agent reported an error", iteration
                    )
                else:
                    return status
        self.events.append(
            events.ITERATION_FAILED,
            stage=node_id,
            iteration=iteration,
            data={"type": error.type, "message": error.message},
        )
        raise _IterationFailed(error)

    def _hook(self, name: str, **kwargs: Any) -> None:
        """Call a lifecycle hook; a plugin that raises is reported, never fatal."""

        def report(plugin: str, hook: str, exc: BaseException) -> None:
            message = f"{type(exc).__name__}: {exc}"
            self._log(f"plugin {plugin} failed in {hook}: {message}")
            self.events.append(
                events.HOOK_ERROR, data={"plugin": plugin, "hook": hook, "error": message}
            )

        call_lifecycle(self.registries.pm, name, report, session=self.session_api, **kwargs)

    def capture(self) -> OutputCapture:
        """Collect an agent's output (up to MAX_CAPTURE) while echoing it to the log."""
        return OutputCapture(self._write_out)

    def _check_lock(self) -> None:
        """Notice a lock file deleted by hand, and put it back (or stop if it was taken)."""
        if self.lock.still_ours():
            return
        if not self.lock.reassert():
            raise _LockLost
        self.lock.write_metadata(self._lock_metadata())
        self._log("the lock file was deleted while this engine ran; it has been recreated")

    def _run_judge(self, pipeline: Pipeline, index: int, iteration: int, cap: int) -> AgentStatus:
        """Ask the stage's judge agent for its verdict (see :mod:`looprunner.engine.judge`)."""
        from looprunner.engine.judge import run_judge

        try:
            return run_judge(self, pipeline, index, iteration)
        except JudgeFailedTooOften as exc:
            raise _IterationFailed(RunError("judge_error", str(exc), iteration)) from exc
        except JudgeStopped as exc:
            raise _Stopped from exc

    # ------------------------------------------------------------------ resume

    def _stop_leftover_agent(self, previous: RunState) -> None:
        """End an agent a dead engine left running, so it cannot write into a re-run."""
        if stop_leftover_group(
            previous.agent_pid, previous.agent_start_time, previous.boot_id, kill_grace()
        ):
            self._log(f"stopped what the previous engine's agent (group {previous.agent_pid}) left")

    def _reconcile_events(self, pipeline: Pipeline) -> None:
        """Append events a crash kept from the log, so each one exists exactly once.

        State is always written before its event, so after a crash the state may be one
        step ahead of the log, never behind: an iteration recorded complete in state
        without its ``iteration_complete`` event, or a stage recorded complete without
        its ``stage_complete``. Both are rebuilt from what is on disk.
        """
        assert self.state is not None
        logged = list(iter_events(self.paths.events_file))
        done = {(e.stage, e.iteration) for e in logged if e.type == events.ITERATION_COMPLETE}
        stages_done = {e.stage for e in logged if e.type == events.STAGE_COMPLETE}
        stages_started = {e.stage for e in logged if e.type == events.STAGE_START}
        if not any(e.type == events.SESSION_START for e in logged):
            self.events.append(
                events.SESSION_START,
                data={"pipeline": pipeline.name, "type": pipeline.kind, "recovered": True},
            )
        for index, stage_state in enumerate(self.state.stages[: self.state.current_stage + 1]):
            node = pipeline.nodes[index]
            if stage_state.status is not RunStatus.PENDING and node.id not in stages_started:
                self.events.append(
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
                status_file = self.paths.iteration_dir(index, node.id, n) / ctxmod.STATUS_FILE
                status = read_history([status_file])[0]
                self.events.append(
                    events.ITERATION_COMPLETE,
                    stage=node.id,
                    iteration=n,
                    data={
                        **_verdict(status),
                        "recovered": True,
                    },
                )
            if stage_state.status is RunStatus.COMPLETE and node.id not in stages_done:
                self.events.append(
                    events.STAGE_COMPLETE,
                    stage=node.id,
                    iteration=stage_state.iterations_completed,
                    data={
                        "reason": stage_state.termination_reason,
                        "iterations": stage_state.iterations_completed,
                        "recovered": True,
                    },
                )

    # ------------------------------------------------------------------ endings

    def _finish_failed(self, error: RunError) -> RunState:
        error = RunError(error.type, self.redactor.text(error.message), error.iteration)
        assert self.state is not None
        self._set_stage(self.state.current_stage, status=RunStatus.FAILED)
        self._save(
            status=RunStatus.FAILED, finished_at=utc_now(), error=error, iteration_started=None
        )
        self.events.append(
            events.SESSION_FAILED,
            stage=self.state.current.id,
            iteration=error.iteration,
            data={"type": error.type, "message": error.message},
        )
        self._log(f"session failed: {error.type}: {error.message}")
        self._hook("on_error", error=error)
        return self.state

    def _finish_killed(self) -> RunState:
        assert self.state is not None
        self._set_stage(self.state.current_stage, status=RunStatus.KILLED)
        self._save(
            status=RunStatus.KILLED,
            finished_at=utc_now(),
            completion_reason="killed",
            iteration_started=None,
        )
        self.events.append(
            events.SESSION_KILLED,
            stage=self.state.current.id,
            iteration=self.state.iteration or None,
        )
        self._log("session killed")
        return self.state

    # ------------------------------------------------------------------ helpers

    def _identity(self) -> dict[str, Any]:
        pid = os.getpid()
        return {
            "pid": pid,
            "pid_start_time": procinfo.start_time(pid),
            "host": procinfo.hostname(),
            "boot_id": procinfo.boot_id(),
            "version": __version__,
        }

    def _lock_metadata(self) -> dict[str, Any]:
        identity = self._identity()
        return {
            "session": self.paths.name,
            "pid": identity["pid"],
            "pid_start_time": identity["pid_start_time"],
            "host": identity["host"],
            "boot_id": identity["boot_id"],
            "started_at": utc_now(),
            "backend": self.backend,
            "version": __version__,
        }

    def _fresh_state(self, pipeline: Pipeline) -> RunState:
        now = utc_now()
        return RunState(
            session=self.paths.name,
            type=pipeline.kind,
            pipeline=pipeline.name,
            status=RunStatus.RUNNING,
            started_at=now,
            updated_at=now,
            backend=self.backend,
            stages=tuple(
                StageState(id=node.id, stage=node.stage.name, max_iterations=node.cap)
                for node in pipeline.nodes
            ),
            **self._identity(),
        )

    def _save(self, *, durable: bool = True, **changes: Any) -> None:
        assert self.state is not None
        self.state = attrs.evolve(self.state, updated_at=utc_now(), **changes)
        write_state(self.paths.state_file, self.state, durable=durable)

    def _set_stage(self, index: int, **changes: Any) -> None:
        assert self.state is not None
        stage = attrs.evolve(self.state.stages[index], **changes)
        self.state = self.state.with_stage(index, stage)

    def _open_log(self) -> None:
        self.paths.run_dir.mkdir(parents=True, exist_ok=True)
        self._log_handle = self.paths.engine_log.open("a", encoding="utf-8")

    def _close_log(self) -> None:
        if self._log_handle is not None:
            self._log_handle.close()
            self._log_handle = None

    def _write_out(self, text: str) -> None:
        text = self.redactor.text(text)
        with self._log_lock:
            if self._log_handle is not None:
                self._log_handle.write(text)
                self._log_handle.flush()
            with contextlib.suppress(OSError, ValueError):
                self.out.write(text)
                self.out.flush()

    def _log(self, message: str) -> None:
        stamp = utc_now()[11:19]
        self._write_out(f"[looprunner {stamp}] {message}\n")

    def _install_signal_handlers(self) -> Any:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {}

        def handler(signum: int, frame: object) -> None:
            self.request_stop()

        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            previous[sig] = signal.signal(sig, handler)

        def restore() -> None:
            for sig, old in previous.items():
                signal.signal(sig, old)

        return restore
