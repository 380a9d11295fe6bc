"""Earlier runs kept aside by ``start --force``: seen (``runs``, ``status``, ``tail``,
``monitor``), removed (``rm``, ``prune``, never a live session), and ``restart``.

Most sessions here run in the foreground (the inline backend): tmux is used only where
a live session is the point.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import pytest

import looprunner
from looprunner import InvalidSessionNameError, Session
from tests.conftest import tree

RUNS = Path(".claude") / "pipeline-runs"


def kept_names(project: Path, session: str) -> list[str]:
    """The folders ``start --force`` moved aside for ``session`` (read from the disk)."""
    runs = project / RUNS
    return sorted(p.name for p in runs.iterdir() if p.name.startswith(f"{session}."))


def run_twice(project: Path, cli, name: str) -> str:
    """Run ``name`` to its end, then again with --force; return the kept run's name."""
    assert cli("start", name, "--stage", "work", "--foreground").returncode == 0
    again = cli("start", name, "--stage", "work", "--foreground", "--force")
    assert again.returncode == 0, again.stderr
    return kept_names(project, name)[-1]


def age_run(run_dir: Path, days: float) -> None:
    """Make a run look as if it ended ``days`` ago (its recorded timestamps moved back)."""
    state_file = run_dir / "state.json"
    state = json.loads(state_file.read_text())
    then = (datetime.now(UTC) - timedelta(days=days)).isoformat().replace("+00:00", "Z")
    for key in ("started_at", "updated_at", "finished_at"):
        state[key] = then
    state_file.write_text(json.dumps(state))


def test_status_tail_and_monitor_accept_a_kept_runs_full_name(
    project: Path, make_stage, cli
) -> None:
    make_stage("work", termination={"type": "fixed", "iterations": 2})
    kept = run_twice(project, cli, "old")
    status = cli("--json", "status", kept)
    assert status.returncode == 0, status.stderr
    shown = json.loads(status.stdout)
    assert shown["health"] == "complete"
    assert shown["session"] == "old" and shown["run"] == kept
    assert shown["resources"] == {"lock": False, "state": True, "tmux": False}
    text = cli("status", kept)
    assert "an earlier run of session 'old'" in text.stdout
    assert f"looprunner rm {kept}" in text.stdout  # not "resume": it is not a session
    tail = cli("tail", kept)
    assert tail.returncode == 0 and "session_complete" in tail.stdout
    monitor = cli("monitor", kept, "-n", "5")
    assert monitor.returncode == 0 and "session complete" in monitor.stdout
    # the session itself is untouched by all this: still the newer run
    assert json.loads(cli("--json", "status", "old").stdout)["health"] == "complete"


class BadName(NamedTuple):
    test_id: str
    name: str


#: near misses of a real kept run's name (tests/unit/test_kept_run_names.py has the rest)
BAD_NAMES = [
    BadName("no-stamp", "old.2026"),
    BadName("traversal", "old.20261129T163736/../../x"),
    BadName("leading-dots", "../old.20261129T163736"),
    BadName("zero-suffix", "old.20261129T163736-0"),
]
COMMANDS = [("status",), ("tail",), ("monitor",), ("rm", "--yes")]


def test_a_kept_runs_name_is_checked_strictly(project: Path, make_stage, cli) -> None:
    make_stage("work", termination={"type": "fixed", "iterations": 1})
    kept = run_twice(project, cli, "old")
    before = tree(project)
    assert cli("status", kept).returncode == 0  # the real name is accepted...
    for case, (command, *extra) in zip(BAD_NAMES, COMMANDS, strict=True):
        refused = cli(command, case.name, *extra)
        assert refused.returncode == 2, (case.test_id, command, refused.stderr)  # ...never these
        assert "invalid session name" in refused.stderr
    assert tree(project) == before


def test_a_kept_run_is_looked_at_never_driven(project: Path, make_stage, cli) -> None:
    make_stage("work", termination={"type": "fixed", "iterations": 1})
    kept = run_twice(project, cli, "old")
    before = tree(project)
    for args in (("kill", kept, "--yes"), ("resume", kept), ("restart", kept)):
        refused = cli(*args)
        assert refused.returncode == 2, (args, refused.stderr)
        assert "earlier run of session 'old'" in refused.stderr
    assert cli("start", kept, "--stage", "work").returncode == 2
    assert tree(project) == before


def test_runs_lists_the_kept_runs_with_json(project: Path, make_stage, cli) -> None:
    make_stage("work", termination={"type": "fixed", "iterations": 2})
    first = run_twice(project, cli, "alpha")
    assert cli("start", "alpha", "--stage", "work", "--foreground", "--force").returncode == 0
    assert cli("start", "beta", "--stage", "work", "--foreground").returncode == 0
    listed = cli("--json", "runs")
    assert listed.returncode == 0, listed.stderr
    runs = json.loads(listed.stdout)
    assert [r["name"] for r in runs] == kept_names(project, "alpha")
    assert len(runs) == 2 and runs[0]["name"] == first
    entry = runs[0]
    assert entry["session"] == "alpha" and entry["health"] == "complete"
    assert entry["stage"] == "work" and entry["iteration"] == 2 and entry["max_iterations"] == 2
    assert entry["kept_at"].startswith(first.split(".")[1][:4])  # the year of its stamp
    assert "cost_usd" in entry and entry["cost_usd"] is None  # the mock reports no cost
    text = cli("runs", "alpha")
    assert first in text.stdout and "SESSION" in text.stdout
    assert json.loads(cli("--json", "runs", "beta").stdout) == []
    assert cli("runs", "nobody").returncode == 4


def test_rm_removes_a_finished_session_and_a_kept_run(project: Path, make_stage, cli) -> None:
    make_stage("work", termination={"type": "fixed", "iterations": 1})
    kept = run_twice(project, cli, "old")
    assert (project / ".claude" / "locks").exists()
    removed = cli("--json", "rm", "old", kept, "--yes")
    assert removed.returncode == 0, removed.stderr
    assert sorted(r["name"] for r in json.loads(removed.stdout)["removed"]) == sorted(["old", kept])
    assert not (project / RUNS / "old").exists() and not (project / RUNS / kept).exists()
    assert not (project / ".claude" / "locks" / "old.lock").exists()
    assert json.loads(cli("--json", "list").stdout) == []
    assert cli("status", "old").returncode == 4


def test_rm_asks_first_and_refuses_unknown_names(project: Path, make_stage, cli) -> None:
    make_stage("work", termination={"type": "fixed", "iterations": 1})
    kept = run_twice(project, cli, "old")
    before = tree(project)
    no_terminal = cli("rm", kept, input="")
    assert no_terminal.returncode == 2 and "--yes" in no_terminal.stderr
    as_json = cli("--json", "rm", kept, input="")
    assert as_json.returncode == 2 and json.loads(as_json.stdout)["error"]["type"] == "usage"
    unknown = cli("rm", kept, "nope", "--yes")
    assert unknown.returncode == 4 and "'nope'" in unknown.stderr
    missing = cli("rm", "old.20000101T000000", "--yes")
    assert missing.returncode == 4 and kept in missing.stderr  # names the runs that exist
    assert tree(project) == before  # nothing removed: not even the names that were fine


@pytest.mark.tmux
def test_rm_and_prune_never_remove_a_live_session(project: Path, make_stage, cli) -> None:
    make_stage("work", termination={"type": "fixed", "iterations": 1})
    make_stage("slow", termination={"type": "fixed", "iterations": 50}, extra="mock_delay: 2\n")
    kept = run_twice(project, cli, "done")
    assert cli("start", "live", "--stage", "slow").returncode == 0
    try:
        before = tree(project / RUNS / "done")
        refused = cli("rm", "done", kept, "live", "--yes")
        assert refused.returncode == 3
        assert "'live'" in refused.stderr and "running" in refused.stderr
        assert tree(project / RUNS / "done") == before and (project / RUNS / kept).is_dir()
        assert cli("restart", "live").returncode == 3
        pruned = cli("--json", "prune", "--yes")
        assert pruned.returncode == 0, pruned.stderr
        assert sorted(r["name"] for r in json.loads(pruned.stdout)["removed"]) == sorted(
            ["done", kept]
        )
        assert json.loads(cli("--json", "status", "live").stdout)["health"] == "running"
        assert (project / RUNS / "live" / "state.json").is_file()
    finally:
        cli("kill", "live", "--yes")


def test_prune_by_age_and_health_with_a_dry_run(project: Path, make_stage, cli) -> None:
    make_stage("work", termination={"type": "fixed", "iterations": 1})
    make_stage("broken", statuses={"default": {"decision": "error", "reason": "no", "summary": ""}})
    kept = run_twice(project, cli, "old")
    assert cli("start", "bad", "--stage", "broken", "--foreground").returncode == 1
    age_run(project / RUNS / kept, days=10)
    before = tree(project)
    dry = cli("--json", "prune", "--older-than", "7d", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    report = json.loads(dry.stdout)
    assert report["dry_run"] is True and [r["name"] for r in report["removed"]] == [kept]
    assert "Would remove 1 run(s)" in cli("prune", "--older-than", "7d", "--dry-run").stdout
    assert tree(project) == before
    for bad in (("--older-than", "7x"), ("--older-than", "-1d"), ("--health", "sleepy")):
        refused = cli("prune", *bad, "--yes")
        assert refused.returncode == 2 and bad[0] in refused.stderr, refused.stderr
    assert tree(project) == before
    failed = cli("--json", "prune", "--health", "failed", "--yes")
    assert [r["name"] for r in json.loads(failed.stdout)["removed"]] == ["bad"]
    old = cli("prune", "--older-than", "7d", "--yes")
    assert old.returncode == 0 and f"Removed {kept}" in old.stdout
    assert (project / RUNS / "old").is_dir() and not (project / RUNS / kept).exists()


def test_restart_runs_the_same_definition_and_keeps_the_old_run(
    project: Path, make_stage, cli
) -> None:
    make_stage("work", termination={"type": "fixed", "iterations": 5})
    notes = project / "notes.txt"
    notes.write_text("input\n")
    first = cli(
        "start", "job", "--stage", "work", "--foreground", "-n", "2",
        "--context", "be brief", "--input", str(notes),
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    recorded = (project / RUNS / "job" / "pipeline.yaml").read_text()
    again = cli("--json", "restart", "job")
    assert again.returncode == 0, again.stderr
    shown = json.loads(again.stdout)
    kept = kept_names(project, "job")
    assert shown["health"] == "complete" and [shown["previous_run"]] == kept
    assert shown["backend"] == "inline"  # the backend it ran on
    assert shown["stages"][0]["max_iterations"] == 2  # -n, not the stage's 5
    assert (project / RUNS / "job" / "pipeline.yaml").read_text() == recorded
    context = json.loads(
        (
            project / RUNS / "job" / "stage-00-work" / "iterations" / "001" / "context.json"
        ).read_text()
    )
    assert "be brief" in json.dumps(context) and str(notes) in json.dumps(context)
    assert (project / RUNS / kept[0] / "state.json").is_file()  # the old run, kept whole


def test_restart_refuses_what_it_cannot_restart(project: Path, make_stage, cli) -> None:
    make_stage("work", termination={"type": "fixed", "iterations": 1})
    assert cli("restart", "ghost").returncode == 4
    assert cli("start", "job", "--stage", "work", "--foreground").returncode == 0
    (project / RUNS / "job" / "pipeline.yaml").unlink()  # as a run from before it was kept
    before = tree(project)
    refused = cli("restart", "job")
    assert refused.returncode == 1 and "no pipeline.yaml" in refused.stderr
    assert tree(project) == before


def test_demo_keeps_only_its_newest_earlier_runs(project: Path, cli) -> None:
    assert cli("demo", "--dir", str(project), "--foreground", "--pace", "0").returncode == 0
    run = project / RUNS / "demo"
    for stamp in ("20200101T000001", "20200101T000002", "20200101T000003", "20200101T000004"):
        (project / RUNS / f"demo.{stamp}").mkdir()
        (project / RUNS / f"demo.{stamp}" / "state.json").write_bytes(
            (run / "state.json").read_bytes()
        )
    mine = project / RUNS / "demo.20200101T000000"  # a run of something else, by that name
    mine.mkdir()
    state = json.loads((run / "state.json").read_text())
    (mine / "state.json").write_text(json.dumps({**state, "pipeline": "my-work"}))
    again = cli("demo", "--dir", str(project), "--foreground", "--pace", "0")
    assert again.returncode == 0, again.stderr
    assert "Removed 2 older demo run(s)" in again.stdout
    left = kept_names(project, "demo")
    assert len(left) == 4 and mine.name in left  # the user's run, and the newest three
    assert "demo.20200101T000004" in left and "demo.20200101T000002" not in left


def test_the_python_api_lists_removes_and_prunes(project: Path, make_stage, cli) -> None:
    make_stage("work", termination={"type": "fixed", "iterations": 1})
    kept = run_twice(project, cli, "old")
    assert [run.name for run in Session.runs(project)] == [kept]
    earlier = Session(kept, project)
    assert earlier.kept and earlier.status().health.value == "complete"
    with pytest.raises(InvalidSessionNameError):
        earlier.kill()
    dry = looprunner.prune(project, dry_run=True)
    assert dry.dry_run and {r.name for r in dry.removed} == {"old", kept}
    report = Session.remove([kept], project, confirm=lambda runs: False)
    assert report.removed == () and (project / RUNS / kept).is_dir()
    report = Session.remove([kept], project)
    assert [r.name for r in report.removed] == [kept] and not (project / RUNS / kept).exists()
    assert looprunner.prune(project, session="old").removed[0].name == "old"
