"""Pipelines, judgment termination, and resume after crashes at every phase of an iteration."""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import NamedTuple

import pytest

from looprunner import Session
from looprunner.models import Health
from looprunner.names import ProjectPaths
from tests.conftest import wait_until

pytestmark = pytest.mark.tmux

PIPELINE = """\
name: three
commands:
  test: "pytest -q"
nodes:
  - id: plan
    stage: plan
    runs: 2
  - id: tasks
    stage: tasks
    runs: 2
    inputs:
      from: plan
  - id: build
    stage: build
    runs: 3
    inputs:
      from: [plan, tasks]
      select: all
"""


@pytest.fixture
def three_stage_project(project: Path, make_stage) -> Path:
    for name in ("plan", "tasks", "build"):
        make_stage(
            name,
            termination={"type": "fixed", "iterations": 5},
            outputs={"default": f"{name} output\n"},
        )
    pipelines = project / ".looprunner" / "pipelines"
    pipelines.mkdir(parents=True)
    (pipelines / "three.yaml").write_text(PIPELINE)
    (project / "plan.md").write_text("the plan\n")
    return project


def completions(session: Session) -> Counter[tuple[str | None, int | None]]:
    return Counter(
        (e.stage, e.iteration) for e in session.events() if e.type == "iteration_complete"
    )


EXPECTED = {
    ("plan", 1),
    ("plan", 2),
    ("tasks", 1),
    ("tasks", 2),
    ("build", 1),
    ("build", 2),
    ("build", 3),
}


def test_three_stage_pipeline_runs_to_complete_with_inputs_wired(three_stage_project, cli):
    project = three_stage_project
    started = cli("start", "p3", "--pipeline", "three", "--input", str(project / "plan.md"))
    assert started.returncode == 0, started.stderr
    assert cli("wait", "p3", "--timeout", "120").returncode == 0
    session = Session("p3", project)
    state = session.status().state
    assert state.status == "complete" and state.completion_reason == "all_stages_complete"
    assert [(s.id, s.iterations_completed, s.status) for s in state.stages] == [
        ("plan", 2, "complete"),
        ("tasks", 2, "complete"),
        ("build", 3, "complete"),
    ]
    assert set(completions(session)) == EXPECTED
    run = ProjectPaths.of(project).session("p3")
    context = json.loads((run.iteration_dir(2, "build", 2) / "context.json").read_text())
    assert context["inputs"]["from_initial"] == [str(project / "plan.md")]
    assert [Path(p).parent.name for p in context["inputs"]["from_stage"]["plan"]] == ["001", "002"]
    assert context["inputs"]["from_stage"]["tasks"] == [
        str(p) for p in sorted((run.stage_dir(1, "tasks") / "iterations").glob("*/output.md"))
    ]
    assert context["inputs"]["from_previous_iterations"] == [
        str(run.iteration_dir(2, "build", 1) / "output.md")
    ]
    assert context["commands"] == {"test": "pytest -q"}
    assert context["previous"]["iteration"] == 1
    tasks_ctx = json.loads((run.iteration_dir(1, "tasks", 1) / "context.json").read_text())
    assert tasks_ctx["inputs"]["from_stage"] == {
        "plan": [str(run.stage_dir(0, "plan") / "output.md")]
    }
    assert (run.stage_dir(0, "plan") / "output.md").read_text() == "plan output\n"


class JudgmentCase(NamedTuple):
    test_id: str
    stops: set[int]
    min_iterations: int
    consensus: int
    max: int
    ends_after: int
    reason: str


JUDGMENT_CASES = [
    JudgmentCase("two-in-a-row", {1, 3, 4}, 1, 2, 8, 4, "consensus"),
    JudgmentCase("waits-for-min", {1, 2, 3}, 3, 2, 8, 3, "consensus"),
    JudgmentCase("continue-resets-streak", {1, 2, 4, 6, 7}, 3, 2, 8, 7, "consensus"),
    JudgmentCase("budget-without-consensus", {2, 4}, 1, 2, 5, 5, "max_iterations"),
]


@pytest.mark.parametrize("case", JUDGMENT_CASES, ids=lambda c: c.test_id)
def test_judgment_stops_exactly_at_consensus_after_min_iterations(project, make_stage, cli, case):
    statuses = {
        n: {"decision": "stop" if n in case.stops else "continue"} for n in range(1, case.max + 1)
    }
    make_stage(
        "judge",
        termination={
            "type": "judgment",
            "min_iterations": case.min_iterations,
            "consensus": case.consensus,
            "max": case.max,
        },
        statuses=statuses,
    )
    assert cli("start", "j", "--stage", "judge", "--foreground").returncode == 0
    state = Session("j", project).status().state
    assert state.iteration_completed == case.ends_after
    assert state.completion_reason == case.reason


class CrashCase(NamedTuple):
    test_id: str
    point: str


CRASH_POINTS = [
    CrashCase("before-agent", "before_agent:2"),
    CrashCase("during-agent", "agent_running:2"),
    CrashCase("after-status-written", "after_agent:2"),
    CrashCase("between-state-and-event", "state_written:2"),
    CrashCase("after-stage-completion-saved", "stage_complete_saved:2"),
]


@pytest.mark.parametrize("case", CRASH_POINTS, ids=lambda c: c.test_id)
def test_sigkill_at_each_phase_then_resume_records_every_iteration_once(
    three_stage_project, cli, case
):
    project = three_stage_project
    started = cli("start", "crash", "--pipeline", "three", env={"LOOPRUNNER_CRASH_AT": case.point})
    assert started.returncode == 0, started.stderr
    session = Session("crash", project)
    crashed = wait_until(
        lambda: (s := session.status()).health is Health.CRASHED and s, timeout=60, what="crash"
    )
    assert crashed.state is not None
    assert "died" in crashed.detail

    resumed = cli("resume", "crash")
    assert resumed.returncode == 0, resumed.stderr
    assert cli("wait", "crash", "--timeout", "120").returncode == 0
    final = session.status()
    assert final.health is Health.COMPLETE
    counts = completions(session)
    assert set(counts) == EXPECTED
    assert all(n == 1 for n in counts.values()), counts
    assert [s.iterations_completed for s in final.state.stages] == [2, 2, 3]
    types = [e.type for e in session.events()]
    assert types.count("session_resumed") == 1
    assert types.count("stage_complete") == 3
    seqs = [e.seq for e in session.events()]
    assert seqs == list(range(1, len(seqs) + 1))


def test_agent_crash_then_resume_reruns_only_the_failed_iteration(project, make_stage, cli):
    folder = make_stage(
        "work",
        termination={"type": "fixed", "iterations": 4},
        statuses={"default": {"decision": "continue"}, 3: {"crash": True}},
    )
    assert cli("start", "flaky", "--stage", "work").returncode == 0
    assert cli("wait", "flaky", "--timeout", "60").returncode == 1
    session = Session("flaky", project)
    assert session.status().state.error.type == "provider_exit"
    (folder / "fixtures" / "status-3.json").write_text(json.dumps({"decision": "continue"}))
    # the resolved pipeline was stored at start: the fixture folder is read at run time
    assert cli("resume", "flaky").returncode == 0
    assert cli("wait", "flaky", "--timeout", "60").returncode == 0
    assert sorted(completions(session)) == [("work", n) for n in (1, 2, 3, 4)]
    assert session.status().state.error is None


def test_resume_of_killed_session_continues_after_the_last_completed_iteration(
    project, make_stage, cli
):
    make_stage("work", termination={"type": "fixed", "iterations": 3})
    # the agent takes its pace from the environment of whoever started (or resumed) it
    assert (
        cli("start", "paused", "--stage", "work", env={"LOOPRUNNER_MOCK_DELAY": "60"}).returncode
        == 0
    )
    session = Session("paused", project)
    wait_until(lambda: (s := session.status().state) and s.agent_pid, what="agent start")
    assert cli("kill", "paused", "--yes").returncode == 0
    killed = session.status()
    assert killed.health is Health.KILLED and killed.state.iteration_completed == 0

    resumed = cli("resume", "paused", env={"LOOPRUNNER_MOCK_DELAY": "0"})
    assert resumed.returncode == 0, resumed.stderr
    assert cli("wait", "paused", "--timeout", "60").returncode == 0
    assert sorted(completions(session).elements()) == [("work", 1), ("work", 2), ("work", 3)]
    assert [e.type for e in session.events()].count("session_killed") == 1


def test_resume_refuses_running_and_completed_sessions(project, make_stage, cli):
    make_stage("work", termination={"type": "fixed", "iterations": 1})
    assert cli("start", "done", "--stage", "work", "--foreground").returncode == 0
    refused = cli("resume", "done")
    assert refused.returncode == 1
    assert "already completed" in refused.stderr
    assert cli("resume", "ghost").returncode == 4


def test_a_crashed_session_is_never_restarted_without_force(project, make_stage, cli):
    make_stage("work", termination={"type": "fixed", "iterations": 3})
    assert (
        cli(
            "start", "c", "--stage", "work", env={"LOOPRUNNER_CRASH_AT": "before_agent:2"}
        ).returncode
        == 0
    )
    session = Session("c", project)
    wait_until(lambda: session.status().health is Health.CRASHED, what="crash")
    again = cli("start", "c", "--stage", "work")
    assert again.returncode == 3
    assert "resume" in again.stderr


def test_changed_boot_id_is_reported_as_reboot_and_never_signalled(project, make_stage, cli):
    make_stage("work", termination={"type": "fixed", "iterations": 2})
    assert cli("start", "rb", "--stage", "work", "--foreground").returncode == 0
    run = ProjectPaths.of(project).session("rb")
    state = json.loads(run.state_file.read_text())
    # pretend it was running before a reboot, with pids that now belong to this test process
    state.update(
        status="running",
        finished_at=None,
        boot_id="00000000-dead-beef-0000-000000000000",
        pid=os.getpid(),
        agent_pid=os.getpid(),
        agent_start_time=1,
    )
    run.state_file.write_text(json.dumps(state))
    status = json.loads(cli("--json", "status", "rb").stdout)
    assert status["health"] == "crashed"
    assert "rebooted" in status["detail"]
    killed = cli("kill", "rb", "--yes")
    assert killed.returncode == 0, killed.stderr  # and this test process is still alive
    assert json.loads(run.state_file.read_text())["status"] == "killed"


def test_queue_termination_stops_when_the_queue_command_prints_nothing(project, make_stage, cli):
    queue = project / "queue.txt"
    queue.write_text("task-a\ntask-b\n")
    # the agent takes one item off the queue per iteration, as a real worker would
    agent = project / "worker.py"
    agent.write_text(
        "import json, os, pathlib, sys\n"
        "sys.stdin.read()\n"
        "q = pathlib.Path('queue.txt'); items = q.read_text().split()\n"
        "q.write_text(''.join(i + '\\n' for i in items[1:]))\n"
        "status = {'decision': 'continue', 'summary': items[0]}\n"
        "pathlib.Path(os.environ['LOOPRUNNER_STATUS']).write_text(json.dumps(status))\n"
    )
    make_stage(
        "worker",
        provider="command",
        termination={"type": "queue", "max": 10, "queue_command": ["cat", str(queue)]},
        extra=f'command: ["{sys.executable}", "{agent}"]\n',
    )
    done = cli("start", "q", "--stage", "worker", "--foreground")
    assert done.returncode == 0, done.stdout + done.stderr
    state = Session("q", project).status().state
    assert state.iteration_completed == 2
    assert state.completion_reason == "queue_empty"


def test_failing_queue_command_fails_the_session_with_its_message(project, make_stage, cli):
    make_stage("worker", termination={"type": "queue", "queue_command": ["false"]})
    assert cli("start", "qf", "--stage", "worker", "--foreground").returncode == 1
    error = Session("qf", project).status().state.error
    assert error.type == "termination_error"
    assert "exited with status 1" in error.message


def judged_stage(project, make_stage, judge_statuses: dict[int, dict]) -> None:
    folder = make_stage(
        "judged",
        termination={"type": "judgment", "consensus": 2, "max": 8, "judge": {"provider": "mock"}},
        statuses={"default": {"decision": "stop", "reason": "worker thinks it is done"}},
    )
    judge = folder / "fixtures" / "judge"
    judge.mkdir()
    for n, status in judge_statuses.items():
        (judge / f"status-{n}.json").write_text(json.dumps(status))
    (judge / "status.json").write_text(json.dumps({"decision": "continue", "reason": "more"}))


def test_a_judge_agent_decides_a_judgment_stage_instead_of_the_workers(project, make_stage, cli):
    # the workers say "stop" every time; only the judge's verdicts count
    judged_stage(
        project,
        make_stage,
        {
            1: {"decision": "continue"},
            2: {"decision": "stop", "reason": "plateau"},
            3: {"decision": "stop", "reason": "plateau"},
        },
    )
    assert cli("start", "judged", "--stage", "judged", "--foreground").returncode == 0
    session = Session("judged", project)
    state = session.status().state
    assert (state.iteration_completed, state.completion_reason) == (3, "consensus")
    verdicts = [
        (e.iteration, e.data["decision"]) for e in session.events() if e.type == "judge_complete"
    ]
    assert verdicts == [(1, "continue"), (2, "stop"), (3, "stop")]
    run = ProjectPaths.of(project).session("judged")
    assert (
        json.loads((run.iteration_dir(0, "judged", 3) / "judge" / "status.json").read_text())[
            "reason"
        ]
        == "plateau"
    )


def test_a_failing_judge_counts_as_continue_and_three_in_a_row_fail_the_session(
    project, make_stage, cli
):
    judged_stage(project, make_stage, {1: {"crash": True}, 2: {"crash": True}, 3: {"crash": True}})
    assert cli("start", "badjudge", "--stage", "judged", "--foreground").returncode == 1
    session = Session("badjudge", project)
    state = session.status().state
    assert state.error.type == "judge_error"
    assert state.iteration_completed == 3
    assert [e.iteration for e in session.events() if e.type == "judge_failed"] == [1, 2, 3]


def test_a_judge_on_a_fixed_stage_is_refused(project, make_stage, cli):
    make_stage(
        "fixedjudge", termination={"type": "fixed", "iterations": 2, "judge": {"provider": "mock"}}
    )
    refused = cli("start", "fj", "--stage", "fixedjudge")
    assert refused.returncode == 2
    assert "judgment" in refused.stderr
