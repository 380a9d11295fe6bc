"""The engine's side of an iteration context: how a stage type's agents and branches run.

Every agent a stage type runs goes through here: retried on rate limits, its process
marked and swept, its output and transcript kept, its report counted.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

import attrs

from looprunner.engine import contain, faults
from looprunner.engine.agents import AgentLauncher, Stopped, verdict
from looprunner.engine.guard import InterruptGuard
from looprunner.engine.plan import BranchRunning, IterationPlan
from looprunner.engine.recorder import Recorder
from looprunner.engine.retry import with_retries
from looprunner.engine.usage import transcript_file
from looprunner.errors import LooprunnerError
from looprunner.models import (
    AgentPaths,
    AgentReport,
    AgentRun,
    Branch,
    BranchResult,
    Invocation,
    IterationPaths,
)
from looprunner.store.atomic import write_atomic, write_new


class AgentSide:
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
        #: output files written from what an agent printed (a retry starts without them)
        self.printed: set[Path] = set()
        self.reports: list[AgentReport] = []
        self.agent_session_id: str | None = None

    @property
    def stop_requested(self) -> bool:
        """True once the session is being stopped."""
        return self.launcher.runner.stop_requested

    def log(self, message: str) -> None:
        """Write a line to engine.log."""
        self.recorder.log(message)

    def run_branches(self, branches: Sequence[Branch]) -> list[BranchResult]:
        """Run branches side by side (see IterationContext.run_branches)."""
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
        """Run one agent under every engine rule (see IterationContext.run_agent)."""
        node, iteration = self.plan.node, self.plan.iteration
        stage = node.stage
        status_file = status or self.paths.status
        output_file = output or self.paths.output
        for folder in {status_file.parent, output_file.parent} - {self.paths.folder}:
            folder.mkdir(parents=True, exist_ok=True)  # the iteration's own is made already
        provider_name = provider or stage.provider_name
        invocation = Invocation(
            session=self.recorder.paths.name,
            project=str(self.recorder.paths.agent_dir),
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

        attempts = 0

        def once() -> AgentRun:
            nonlocal attempts
            attempts += 1
            if attempts > 1:  # what the failed attempt left must not decide this one
                for leftover in (status_file, *self.printed):
                    leftover.unlink(missing_ok=True)
            return self._launch(provider_name, invocation, status_file, output_file, label)

        return with_retries(
            once,
            retry=stage.retry,
            runner=self.launcher.runner,
            events=self.recorder.events,
            stage=node.id,
            iteration=iteration,
            log=self.recorder.log,
        )

    def _launch(
        self,
        provider_name: str,
        invocation: Invocation,
        status_file: Path,
        output_file: Path,
        label: str | None,
    ) -> AgentRun:
        """Run the agent once under every engine rule and judge how it went."""
        stage, iteration = self.plan.node.stage, self.plan.iteration
        mark = contain.new_mark()

        def on_start(pid: int) -> None:
            self.recorder.agent_started(pid, mark)
            faults.checkpoint("agent_running", iteration)

        faults.checkpoint("before_agent", iteration)
        with self.guard.agent_running():
            outcome = self.launcher.launch(
                provider_name,
                invocation,
                timeout=stage.timeout,
                on_start=on_start,
                mark=mark,
                idle_timeout=stage.idle_timeout,
                watch=(self.paths.folder, status_file, output_file),
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
        run = verdict(outcome, status_file, self.recorder.redactor.text)
        report = outcome.report
        if report is not None and run.status.cost_usd is None and run.status.usage is None:
            # what the CLI reported counts against the budgets as a status.json's own would
            usage = attrs.asdict(report.usage) if report.usage is not None else None
            run = attrs.evolve(
                run, status=attrs.evolve(run.status, cost_usd=report.cost_usd, usage=usage)
            )
        return run

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
        if not target.exists():
            text = self.recorder.redactor.text(printed)
            if text:
                write_atomic(target, text)
            else:  # nothing printed: an empty file is never torn and has nothing to lose
                with contextlib.suppress(FileExistsError):  # what it left wrote one meanwhile
                    write_new(target, "")
            self.printed.add(target)
        elif target.stat().st_size == 0:
            write_atomic(target, self.recorder.redactor.text(printed))
            self.printed.add(target)
