"""state.json is a projection of the event log: lost or rolled back, it is rebuilt exactly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from looprunner import Session, convert
from looprunner.models import Health
from looprunner.names import ProjectPaths
from looprunner.store.events import read_events
from looprunner.store.projection import logged_state
from looprunner.store.state import previous_path, read_state
from tests.conftest import wait_until

PIPELINE = """\
name: two
nodes:
  - id: first
    stage: work
    runs: 2
  - id: second
    stage: work
    runs: 3
"""


@pytest.fixture
def two_stage(project: Path, make_stage) -> Path:
    make_stage(
        "work",
        termination={"type": "fixed", "iterations": 5},
        statuses={
            "default": {"decision": "continue", "cost_usd": 0.25, "usage": {"input_tokens": 10}}
        },
    )
    folder = project / ".looprunner" / "pipelines"
    folder.mkdir(parents=True)
    (folder / "two.yaml").write_text(PIPELINE)
    return project


def status_state(cli, name: str) -> dict:
    shown = cli("--json", "status", name)
    assert shown.returncode == 0, shown.stderr
    answer = json.loads(shown.stdout)
    return {key: answer[key] for key in ("status", "stages", "iteration_completed", "spent")}


def test_the_whole_log_rebuilds_the_state_the_engine_wrote(two_stage, cli):
    assert cli("start", "p", "--pipeline", "two", "--foreground").returncode == 0
    paths = ProjectPaths.of(two_stage).session("p")
    written = read_state(paths.state_file)
    assert written is not None and written.spent.cost_usd == pytest.approx(1.25)
    assert logged_state(paths.events_file) == written
    # one change per event that changed something, never the whole state after the first
    changes = [e for e in read_events(paths.events_file) if e.state is not None]
    assert changes[0].type == "session_start" and "stages" in changes[0].state
    assert all("session" not in e.state for e in changes[1:])


@pytest.mark.parametrize("how", ["deleted", "rolled back", "damaged", "nested too deep"])
def test_a_lost_state_file_is_rebuilt_from_the_log(two_stage, cli, how):
    assert cli("start", "p", "--pipeline", "two", "--foreground").returncode == 0
    paths = ProjectPaths.of(two_stage).session("p")
    before = status_state(cli, "p")
    written = read_state(paths.state_file)
    if how == "deleted":
        paths.state_file.unlink()
        previous_path(paths.state_file).unlink()
    elif how == "rolled back":  # the run's first state, as a power cut could leave it
        shutil.copy(previous_path(paths.state_file), paths.state_file)
        assert read_state(paths.state_file).status.value == "running"
    elif how == "damaged":
        paths.state_file.write_text('{"session": "p", "stat')
        previous_path(paths.state_file).unlink()
    else:  # deeper than the parser goes: malformed, not a crash of status and list
        paths.state_file.write_text("[" * 100_000 + "]" * 100_000)
        previous_path(paths.state_file).unlink()
    assert status_state(cli, "p") == before
    assert Session("p", two_stage).status().state == written
    listed = json.loads(cli("--json", "list").stdout)
    assert [(s["session"], s["health"]) for s in listed] == [("p", "complete")]


def test_resume_after_a_crash_and_a_rolled_back_state_runs_each_iteration_once(two_stage, cli):
    started = cli("start", "c", "--pipeline", "two", env={"LOOPRUNNER_CRASH_AT": "state_written:2"})
    assert started.returncode == 0, started.stderr
    session = Session("c", two_stage)
    wait_until(lambda: session.status().health is Health.CRASHED, timeout=60, what="the crash")
    paths = session.paths
    # the power cut: the state file goes back to the run's start; the log kept its events
    shutil.copy(previous_path(paths.state_file), paths.state_file)
    crashed = session.status().state
    assert crashed is not None and crashed.stages[0].iterations_completed == 1

    assert cli("resume", "c").returncode == 0
    assert cli("wait", "c", "--timeout", "120").returncode == 0
    events = list(session.events())
    done = sorted((e.stage, e.iteration) for e in events if e.type == "iteration_complete")
    assert done == [("first", 1), ("first", 2), ("second", 1), ("second", 2), ("second", 3)]
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    final = read_state(paths.state_file)
    assert final is not None and final.status.value == "complete"
    assert logged_state(paths.events_file) == final


def test_a_state_written_by_an_older_version_is_taken_as_it_is(two_stage, cli):
    assert cli("start", "old", "--pipeline", "two", "--foreground").returncode == 0
    paths = ProjectPaths.of(two_stage).session("old")
    # what an older version left: no seq in the state, no changes in the events
    raw = convert.unstructure(read_state(paths.state_file))
    del raw["seq"]
    raw["iteration_completed"] = 7  # a value no event of the log says
    paths.state_file.write_text(json.dumps(raw))
    lines = [json.loads(line) for line in paths.events_file.read_text().splitlines()]
    paths.events_file.write_text(
        "".join(json.dumps({k: v for k, v in e.items() if k != "state"}) + "\n" for e in lines)
    )
    assert status_state(cli, "old")["iteration_completed"] == 7


def test_an_ending_the_log_never_received_is_appended_by_one_cleanup(two_stage, cli):
    """The engine dies between writing its ending to state.json and to the log."""
    started = cli(
        "start", "e", "--pipeline", "two", env={"LOOPRUNNER_CRASH_AT": "ending_written:3"}
    )
    assert started.returncode == 0, started.stderr
    session = Session("e", two_stage)
    wait_until(
        lambda: session.status().health is Health.COMPLETE and not session.status().resources.tmux,
        timeout=60,
        what="the ending, and the engine gone",
    )
    assert "session_complete" not in [e.type for e in session.events()]

    # the dead engine's lock file is left too: one pass repairs both
    found = {p["kind"]: p for p in json.loads(cli("--json", "cleanup").stdout)["problems"]}
    assert set(found) == {"unlogged_ending", "stale_lock"}
    assert "lacks its session_complete" in found["unlogged_ending"]["detail"]
    fixed = cli("--json", "cleanup", "--fix", "--yes")
    assert fixed.returncode == 0, fixed.stderr
    actions = {p["kind"]: p["action"] for p in json.loads(fixed.stdout)["problems"]}
    assert actions["unlogged_ending"] == "appended session_complete"
    last = list(session.events())[-1]
    assert last.type == "session_complete" and last.data["recovered"] is True
    assert last.data["reason"] == "all_stages_complete"
    assert logged_state(session.paths.events_file) == read_state(session.paths.state_file)
    assert json.loads(cli("--json", "cleanup").stdout)["problems"] == []
