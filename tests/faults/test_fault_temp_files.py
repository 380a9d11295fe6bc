"""A writer killed between fsync and rename leaves a ``.tmp-*`` file: the old file stands.

``write_atomic`` writes a temporary file beside its target, fsyncs it and renames it over
the target; a crash before the rename leaves the temporary file (whole, even) and the
target unchanged. Readers must keep reading the target, and the next engine to take the
session (resume) must sweep the leftovers away.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from looprunner import Session, convert
from looprunner.models import Health
from looprunner.names import ProjectPaths
from looprunner.testing import wait_until
from tests.faults.faultkit import no_traceback

pytestmark = pytest.mark.tmux


def crashed_session(project: Path, make_stage, cli, name: str) -> Session:
    """A session whose engine SIGKILLed itself before iteration 2's agent."""
    make_stage("work", termination={"type": "fixed", "iterations": 3})
    started = cli("start", name, "--stage", "work", env={"LOOPRUNNER_CRASH_AT": "before_agent:2"})
    assert started.returncode == 0, started.stderr
    session = Session(name, project)
    wait_until(lambda: session.status().health is Health.CRASHED, timeout=60, what="the crash")
    return session


def newer_state(state_file: Path) -> str:
    """What a writer killed before its rename would have left: a whole, newer state."""
    data = json.loads(state_file.read_text())
    data.update(status="complete", iteration_completed=3, completion_reason="from the temp file")
    data["stages"][0].update(status="complete", iterations_completed=3)
    return json.dumps(data, indent=2) + "\n"


def test_a_temp_state_beside_a_good_one_is_ignored_then_swept_by_resume(
    project, tmux_keeper, make_stage, cli
):
    session = crashed_session(project, make_stage, cli, "tmp")
    paths = ProjectPaths.of(project).session("tmp")
    good = paths.state_file.read_text()
    leftovers = {
        paths.run_dir / ".tmp-state.json.k3j4h5": newer_state(paths.state_file),
        paths.run_dir / ".tmp-state.json.q9w8e7": newer_state(paths.state_file)[:57],  # torn
        paths.run_dir / ".tmp-state.prev.json.4242": good,  # write_state's link, not renamed
        paths.run_dir / ".tmp-progress-tmp.md.x1y2z3": "# Progress: half",
    }
    for path, text in leftovers.items():
        path.write_text(text)

    status = session.status()
    assert status.health is Health.CRASHED
    assert status.state == convert.state_from_json(good), "the old state stands"
    shown = cli("--json", "status", "tmp")
    no_traceback(shown)
    assert json.loads(shown.stdout)["iteration_completed"] == 1
    assert json.loads(shown.stdout)["health"] == "crashed"

    resumed = cli("resume", "tmp")
    assert resumed.returncode == 0, resumed.stderr
    assert cli("wait", "tmp", "--timeout", "60").returncode == 0
    assert [p for p in leftovers if p.exists()] == [], "resume swept every leftover"
    assert not list(paths.run_dir.glob(".tmp-*"))
    final = session.status()
    assert final.state.completion_reason != "from the temp file"
    done = [(e.stage, e.iteration) for e in session.events() if e.type == "iteration_complete"]
    assert done == [("work", 1), ("work", 2), ("work", 3)], "the temp state decided nothing"


def test_temp_files_in_stage_and_iteration_folders_are_swept_too(
    project, tmux_keeper, make_stage, cli
):
    session = crashed_session(project, make_stage, cli, "deep")
    paths = ProjectPaths.of(project).session("deep")
    stage_dir = paths.stage_dir(0, "work")
    leftovers = [
        stage_dir / ".tmp-output.md.a1b2c3",
        paths.iteration_dir(0, "work", 1) / ".tmp-context.json.d4e5f6",
        paths.iteration_dir(0, "work", 1) / ".tmp-output.md.g7h8i9",
    ]
    for path in leftovers:
        assert path.parent.is_dir()
        path.write_text("left by a writer killed before its rename")
    assert cli("resume", "deep").returncode == 0
    assert cli("wait", "deep", "--timeout", "60").returncode == 0
    assert session.status().health is Health.COMPLETE
    assert [p.relative_to(paths.run_dir) for p in leftovers if p.exists()] == []
