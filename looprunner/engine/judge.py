"""Judge agents: a separate agent decides whether a ``judgment`` stage is done.

After each iteration the judge reads that iteration (its context.json, output and the
progress file, through the shipped judge prompt or the one the stage's judge names) and
writes its verdict to ``iterations/NNN/judge/status.json`` (or prints it, as
loop-agents' judge prompt asks). A judge that fails is recorded and counts as
"continue"; after JUDGE_FAILURES failures in a row the session fails (``judge_error``).
The judge runs through the same agent launcher as every stage's agents.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

import attrs

from looprunner.engine import contain
from looprunner.engine import context as ctxmod
from looprunner.engine.agents import AgentLauncher, Stopped, verdict
from looprunner.engine.prompt import render, template_values
from looprunner.engine.recorder import Recorder
from looprunner.engine.usage import TRANSCRIPT_FILE, add_report, report_data
from looprunner.errors import AgentFailed
from looprunner.models import AgentPaths, AgentStatus, Decision, Invocation, Pipeline, events
from looprunner.names import SessionPaths
from looprunner.store.atomic import write_atomic

#: where a judge agent's verdict goes, inside the iteration's folder
JUDGE_DIR = "judge"
JUDGE_PROMPT = Path(__file__).resolve().parent.parent / "builtin" / "prompts" / "judge.md"
#: a judge that fails this many times in a row fails the session
JUDGE_FAILURES = 3


#: earlier iterations' outputs a loop-agents judge prompt sees in ${ITERATION_HISTORY}
JUDGE_HISTORY = 10
_FENCED = re.compile(r"```(?:json)?\s*\n(.*?)```", re.DOTALL)


class JudgeFailedTooOften(Exception):
    """The judge failed JUDGE_FAILURES times in a row."""


def run_judge(
    rec: Recorder, launcher: AgentLauncher, pipeline: Pipeline, index: int, iteration: int
) -> AgentStatus:
    """Ask the stage's judge agent whether the stage is done; return its verdict.

    The judge reads the iteration that just ended and writes its decision to
    ``iterations/NNN/judge/status.json``. A judge that fails is recorded (event
    ``judge_failed``) and counts as "continue"; three failures in a row fail the
    session (``judge_error``), since the stage could then never be judged done.
    """
    paths = rec.paths
    node = pipeline.nodes[index]
    stage = node.stage
    spec = stage.termination.judge
    assert spec is not None
    iteration_dir = paths.iteration_dir(index, node.id, iteration)
    folder = iteration_dir / JUDGE_DIR
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    status_file = folder / ctxmod.STATUS_FILE
    values = template_values(
        ctx=str(iteration_dir / ctxmod.CONTEXT_FILE),
        status=str(status_file),
        progress=str(paths.progress_file),
        output=str(iteration_dir / ctxmod.OUTPUT_FILE),
        iteration=iteration,
        session=paths.name,
        context=stage.context,
    )
    values["STAGE"] = node.id
    values.update(loop_agents_values(paths, pipeline, index, iteration))
    template = spec.prompt if spec.prompt is not None else JUDGE_PROMPT.read_text(encoding="utf-8")
    prompt = render(template, values)
    provider_name = spec.provider or stage.provider_name
    invocation = Invocation(
        session=paths.name,
        project=str(paths.agent_dir),
        stage_id=node.id,
        iteration=iteration,
        prompt=prompt,
        paths=AgentPaths(
            context=values["CTX"],
            status=str(status_file),
            output=str(folder / ctxmod.OUTPUT_FILE),
            progress=str(paths.progress_file),
        ),
        model=spec.model if spec.provider else (spec.model or stage.model),
        command=stage.command,
        fixtures=str(stage.fixtures / JUDGE_DIR) if stage.fixtures else None,
        mock_delay=stage.mock_delay,
    )
    rec.log(f"judge of {node.id} iteration {iteration} ({provider_name}) starting")
    cost: dict[str, Any] = {}
    try:
        mark = contain.new_mark()
        outcome = launcher.launch(
            provider_name,
            invocation,
            timeout=stage.timeout,
            on_start=lambda pid: rec.agent_started(pid, mark),
            mark=mark,
        )
        rec.agent_ended()
        write_atomic(folder / ctxmod.OUTPUT_FILE, rec.redactor.text(outcome.output), durable=False)
        if outcome.report is not None:  # the judge's tokens and cost count like any agent's
            cost = report_data(outcome.report)
            rec.state = add_report(rec.current, index, outcome.report)
            transcript = rec.redactor.text(outcome.transcript or "")
            write_atomic(folder / TRANSCRIPT_FILE, transcript, durable=False)
        if outcome.result.stopped:
            raise Stopped
        printed = printed_verdict(outcome.output)
        if printed is not None and not status_file.exists():
            write_atomic(status_file, json.dumps(printed), durable=False)
        verdict_run = verdict(outcome, status_file)
    except AgentFailed as exc:
        failure = exc.message
    else:
        status = verdict_run.status
        rec.events.append(
            events.JUDGE_COMPLETE,
            stage=node.id,
            iteration=iteration,
            data={"decision": status.decision.value, "reason": status.reason, **cost},
        )
        rec.log(f"judge says {status.decision.value}: {status.reason}")
        return status
    with contextlib.suppress(FileNotFoundError):
        status_file.unlink()  # a failed verdict must never count on resume
    rec.events.append(
        events.JUDGE_FAILED, stage=node.id, iteration=iteration, data={"message": failure}
    )
    rec.log(f"judge failed ({failure}); counting it as continue")
    streak = 0
    for n in range(iteration, 0, -1):
        if (paths.iteration_dir(index, node.id, n) / JUDGE_DIR / ctxmod.STATUS_FILE).exists():
            break
        streak += 1
    if streak >= JUDGE_FAILURES:
        raise JudgeFailedTooOften(f"the judge failed {streak} times in a row: {failure}")
    return AgentStatus(decision=Decision.CONTINUE, reason="judge failed")


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def loop_agents_values(
    paths: SessionPaths, pipeline: Pipeline, index: int, iteration: int
) -> dict[str, str]:
    """Return the variables of loop-agents' judge prompt (``scripts/prompts/judge.md``).

    ``${STAGE_NAME}``, ``${TERMINATION_CRITERIA}`` (the termination as JSON),
    ``${RESULT_JSON}`` (the iteration's status), ``${NODE_OUTPUT}``,
    ``${ITERATION_HISTORY}`` (the last :data:`JUDGE_HISTORY` earlier outputs) and
    ``${PROGRESS_MD}``, each the text itself, as loop-agents pasted them in.
    """
    node = pipeline.nodes[index]
    term = node.stage.termination
    criteria = {
        k: v for k, v in attrs.asdict(term).items() if v is not None and k not in ("judge",)
    }
    iteration_dir = paths.iteration_dir(index, node.id, iteration)
    history = [
        f"### Iteration {n}\n{_read(paths.iteration_dir(index, node.id, n) / ctxmod.OUTPUT_FILE)}"
        for n in range(max(1, iteration - JUDGE_HISTORY), iteration)
    ]
    return {
        "STAGE_NAME": node.id,
        "TERMINATION_CRITERIA": json.dumps(criteria),
        "RESULT_JSON": _read(iteration_dir / ctxmod.STATUS_FILE),
        "NODE_OUTPUT": _read(iteration_dir / ctxmod.OUTPUT_FILE),
        "ITERATION_HISTORY": "\n\n".join(history),
        "PROGRESS_MD": _read(paths.progress_file),
    }


def printed_verdict(output: str) -> dict[str, str] | None:
    """Read a verdict a judge printed instead of writing ``status.json``, if it did.

    loop-agents' judge prompt asks for ``{"stop": true|false, "reason": ..., "confidence":
    ...}`` on stdout (perhaps in a code fence); that becomes a status with decision
    ``stop`` or ``continue``. Anything else is None, and the judge's missing status then
    fails it as usual.
    """
    texts = [output.strip(), *_FENCED.findall(output)]
    first, last = output.find("{"), output.rfind("}")
    if 0 <= first < last:
        texts.append(output[first : last + 1])
    for text in texts:
        try:
            data = json.loads(text)
        except ValueError:
            continue
        if isinstance(data, dict) and isinstance(data.get("stop"), bool):
            confidence = data.get("confidence")
            return {
                "decision": "stop" if data["stop"] else "continue",
                "reason": str(data.get("reason") or ""),
                "summary": f"confidence {confidence}" if confidence is not None else "",
            }
    return None
