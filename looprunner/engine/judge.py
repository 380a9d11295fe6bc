"""Judge agents: a separate agent decides whether a ``judgment`` stage is done.

After each iteration the judge reads that iteration (its context.json, output and the
progress file, through the shipped judge prompt) and writes its verdict to
``iterations/NNN/judge/status.json``. A judge that fails is recorded and counts as
"continue"; after JUDGE_FAILURES failures in a row the session fails (``judge_error``).
"""

from __future__ import annotations

import contextlib
import shutil
from typing import TYPE_CHECKING

from looprunner.engine import context as ctxmod
from looprunner.engine.agent_status import StatusProblem, read_agent_status
from looprunner.engine.prompt import render, template_values
from looprunner.engine.runner import (
    JUDGE_DIR,
    JUDGE_FAILURES,
    JUDGE_PROMPT,
    JudgeFailedTooOften,
    JudgeStopped,
)
from looprunner.errors import LooprunnerError
from looprunner.models import AgentPaths, AgentStatus, Decision, Invocation, Pipeline, events
from looprunner.store.atomic import write_atomic

if TYPE_CHECKING:
    from looprunner.engine.runner import Engine


def run_judge(engine: Engine, pipeline: Pipeline, index: int, iteration: int) -> AgentStatus:
    """Ask the stage's judge agent whether the stage is done; return its verdict.

    The judge reads the iteration that just ended and writes its decision to
    ``iterations/NNN/judge/status.json``. A judge that fails is recorded (event
    ``judge_failed``) and counts as "continue"; three failures in a row fail the
    session (``judge_error``), since the stage could then never be judged done.
    """
    node = pipeline.nodes[index]
    stage = node.stage
    spec = stage.termination.judge
    assert spec is not None
    iteration_dir = engine.paths.iteration_dir(index, node.id, iteration)
    folder = iteration_dir / JUDGE_DIR
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    status_file = folder / ctxmod.STATUS_FILE
    values = template_values(
        ctx=str(iteration_dir / ctxmod.CONTEXT_FILE),
        status=str(status_file),
        progress=str(engine.paths.progress_file),
        output=str(iteration_dir / ctxmod.OUTPUT_FILE),
        iteration=iteration,
        session=engine.paths.name,
        context=stage.context,
    )
    values["STAGE"] = node.id
    prompt = render(JUDGE_PROMPT.read_text(encoding="utf-8"), values)
    provider_name = spec.provider or stage.provider_name
    invocation = Invocation(
        session=engine.paths.name,
        project=str(engine.paths.project),
        stage_id=node.id,
        iteration=iteration,
        prompt=prompt,
        paths=AgentPaths(
            context=values["CTX"],
            status=str(status_file),
            output=str(folder / ctxmod.OUTPUT_FILE),
            progress=str(engine.paths.progress_file),
        ),
        model=spec.model if spec.provider else (spec.model or stage.model),
        command=stage.command,
        fixtures=str(stage.fixtures / JUDGE_DIR) if stage.fixtures else None,
        mock_delay=stage.mock_delay,
    )
    engine._log(f"judge of {node.id} iteration {iteration} ({provider_name}) starting")
    captured = engine.capture()

    failure: str | None = None
    try:
        command = engine.registries.providers.get(provider_name)().command(invocation)
    except LooprunnerError as exc:
        failure = exc.message
    else:
        result = engine.runner.run(
            command,
            cwd=engine.paths.project,
            env=engine.env,
            timeout=stage.timeout,
            on_output=captured.feed,
        )
        write_atomic(
            folder / ctxmod.OUTPUT_FILE,
            engine.redactor.text(captured.text()),
            durable=False,
        )
        if result.stopped:
            raise JudgeStopped
        if result.spawn_error or result.timed_out or result.exit_code != 0:
            failure = result.spawn_error or (
                "timed out" if result.timed_out else f"exited with status {result.exit_code}"
            )
    if failure is None:
        try:
            verdict = read_agent_status(status_file)
        except StatusProblem as problem:
            failure = problem.message
        else:
            if verdict.decision is Decision.ERROR:
                failure = verdict.reason or "the judge reported an error"
            else:
                engine.events.append(
                    events.JUDGE_COMPLETE,
                    stage=node.id,
                    iteration=iteration,
                    data={"decision": verdict.decision.value, "reason": verdict.reason},
                )
                engine._log(f"judge says {verdict.decision.value}: {verdict.reason}")
                return verdict
    with contextlib.suppress(FileNotFoundError):
        status_file.unlink()  # a failed verdict must never count on resume
    engine.events.append(
        events.JUDGE_FAILED, stage=node.id, iteration=iteration, data={"message": failure}
    )
    engine._log(f"judge failed ({failure}); counting it as continue")
    streak = 0
    for n in range(iteration, 0, -1):
        if (
            engine.paths.iteration_dir(index, node.id, n) / JUDGE_DIR / ctxmod.STATUS_FILE
        ).exists():
            break
        streak += 1
    if streak >= JUDGE_FAILURES:
        raise JudgeFailedTooOften(f"the judge failed {streak} times in a row: {failure}")
    from looprunner import convert

    return convert.agent_status_from_dict({"decision": "continue", "reason": "judge failed"})
