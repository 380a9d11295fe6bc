"""Command-line edges operators hit: global options after the command, Ctrl-C, quiet waits,
dry-run as strict as start, and what a machine without tmux is told."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest


def looprunner(project: Path, *args: str, **kwargs: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "looprunner", "--project", str(project), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def test_global_options_are_accepted_after_the_command(project: Path, make_stage, cli) -> None:
    make_stage("work", termination={"type": "fixed", "iterations": 1})
    assert cli("start", "g1", "--stage", "work", "--foreground").returncode == 0
    after = cli("status", "g1", "--json")
    assert after.returncode == 0, after.stderr
    assert json.loads(after.stdout)["health"] == "complete"
    listed = subprocess.run(
        [sys.executable, "-m", "looprunner", "list", "--json", "--project", str(project)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert [s["session"] for s in json.loads(listed.stdout)] == ["g1"]


@pytest.mark.tmux
@pytest.mark.parametrize(
    ("command", "ready"),
    [
        (("wait", "c1"), "stderr"),
        (("tail", "c1", "-f"), "stdout"),
        (("monitor", "c1", "-f"), "stdout"),
    ],
    ids=["wait", "tail-f", "monitor-f"],
)
def test_ctrl_c_exits_130(project: Path, make_stage, cli, command, ready) -> None:
    make_stage("slow", termination={"type": "fixed", "iterations": 50}, extra="mock_delay: 2\n")
    assert cli("start", "c1", "--stage", "slow").returncode == 0
    proc = looprunner(project, *command)
    stream = proc.stderr if ready == "stderr" else proc.stdout
    assert stream is not None
    assert stream.readline(), f"{command} printed nothing"  # it is waiting or following now
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    cli("kill", "c1", "--yes")


@pytest.mark.tmux
def test_wait_without_a_terminal_prints_only_changes_and_quiet_prints_none(
    project: Path, make_stage, cli
) -> None:
    make_stage("paced", termination={"type": "fixed", "iterations": 3}, extra="mock_delay: 1.5\n")
    assert cli("start", "w1", "--stage", "paced").returncode == 0
    quiet = looprunner(project, "wait", "w1", "--quiet")
    loud = cli("wait", "w1")
    assert loud.returncode == 0
    news = [line.rsplit(" · ", 1)[0] for line in loud.stderr.splitlines()]
    assert news and len(news) == len(set(news)), loud.stderr  # a line per change, none twice
    assert len(news) <= 5  # running at 0, 1 and 2 done; complete (the wait takes over 4 s)
    out, err = quiet.communicate(timeout=60)
    assert quiet.returncode == 0 and err == "" and "w1: complete" in out


def test_dry_run_refuses_what_start_refuses_and_warns_of_missing_programs(
    project: Path, cli, tmp_path: Path
) -> None:
    stages = project / ".looprunner" / "stages"
    for name, provider in (("bad", "gpt"), ("needs-codex", "codex")):
        (stages / name).mkdir(parents=True)
        (stages / name / "stage.yaml").write_text(f"name: {name}\nprovider: {provider}\n")
        (stages / name / "prompt.md").write_text("hi\n")
    bad = cli("dry-run", "--stage", "bad")
    assert bad.returncode == 2 and "unknown provider 'gpt'" in bad.stderr
    assert cli("start", "b1", "--stage", "bad").returncode == 2
    empty = tmp_path / "bin"
    empty.mkdir()
    missing = cli("dry-run", "--stage", "needs-codex", env={"PATH": str(empty)})
    assert missing.returncode == 0, missing.stderr
    assert "warning: provider 'codex' needs the 'codex' program" in missing.stdout


def test_start_without_tmux_suggests_foreground(project: Path, make_stage, cli, tmp_path) -> None:
    make_stage("work")
    empty = tmp_path / "bin"
    empty.mkdir()
    result = cli("start", "t1", "--stage", "work", env={"PATH": str(empty)})
    assert result.returncode == 1
    assert "tmux is not installed" in result.stderr and "--foreground" in result.stderr
    assert not (project / ".claude" / "pipeline-runs" / "t1").exists()
    assert os.environ["PATH"]  # the test changed only the child's PATH


def test_mistakes_are_caught_before_anything_starts(project: Path, make_stage, cli) -> None:
    nowhere = cli("--project", str(project / "nope"), "list")
    assert nowhere.returncode == 2 and "no such folder" in nowhere.stderr
    stage = project / ".looprunner" / "stages" / "script"
    stage.mkdir(parents=True)
    (stage / "stage.yaml").write_text("name: script\nprovider: command\ncommand: ./missing.sh\n")
    (stage / "prompt.md").write_text("hi\n")
    missing = cli("start", "m1", "--stage", "script", "--foreground")
    assert missing.returncode == 2
    assert "command './missing.sh' not found" in missing.stderr
    assert not (project / ".claude" / "pipeline-runs" / "m1").exists()
    make_stage("own", termination={"type": "fixed", "iterations": 1})  # provider: mock
    ignored = cli("start", "m2", "--stage", "own", "--provider", "codex", "--foreground")
    assert ignored.returncode == 0, ignored.stderr
    assert "--provider codex is not used for 'own': its stage sets provider mock" in (
        ignored.stderr
    )


def test_an_empty_or_missing_prompt_is_flagged_by_stages_lint_and_start(
    project: Path, make_stage, cli
) -> None:
    make_stage("empty", prompt="  \n")
    (project / ".looprunner" / "stages" / "empty" / "prompt.md").write_text("  \n")
    make_stage("noprompt")
    (project / ".looprunner" / "stages" / "noprompt" / "prompt.md").unlink()
    listed = {row["name"]: row["problem"] for row in json.loads(cli("--json", "stages").stdout)}
    assert listed["empty"] == "the prompt is empty"
    assert "prompt.md not found" in listed["noprompt"]
    lint = cli("lint")
    assert lint.returncode == 2 and "the prompt is empty" in lint.stdout + lint.stderr
    start = cli("start", "e1", "--stage", "empty", "--foreground")
    assert start.returncode == 2 and "the prompt is empty" in start.stderr


def test_help_lists_whole_summaries_and_completion_offers_stages_and_pipelines(
    project: Path, make_stage, cli
) -> None:
    commands = cli("--help").stdout.split("Commands:")[1]
    assert "..." not in commands  # click cuts long summaries with "..." unless told not to
    make_stage("work")
    make_stage("review")
    (project / ".looprunner" / "pipelines").mkdir(parents=True)
    (project / ".looprunner" / "pipelines" / "ship.yaml").write_text(
        "nodes:\n  - id: a\n    stage: work\n"
    )

    def complete(words: str) -> list[str]:
        env = {
            "_LOOPRUNNER_COMPLETE": "bash_complete",
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split(" ")) - 1),
        }
        done = subprocess.run(
            [sys.executable, "-m", "looprunner"],
            capture_output=True,
            text=True,
            env={**os.environ, **env},
            cwd=project,
            check=False,
        )
        return [line.split(",", 1)[1] for line in done.stdout.splitlines() if "," in line]

    assert complete("looprunner start s1 --stage w") == ["work"]
    assert "review" in complete("looprunner dry-run --stage ")
    assert complete("looprunner start s1 --pipeline s") == ["ship"]


@pytest.mark.parametrize(
    "args",
    [("list",), ("--json", "list"), ("status", "done"), ("stages",), ("--help",)],
    ids=["list", "list-json", "status", "stages-through-click", "help"],
)
def test_a_reader_that_stops_reading_ends_the_command_quietly(
    project: Path, make_stage, cli, args
) -> None:
    """``looprunner list | head -1``: no "internal error", no traceback; exit 1 as click's."""
    make_stage("work", termination={"type": "fixed", "iterations": 1})
    assert cli("start", "done", "--stage", "work", "--foreground").returncode == 0
    read, write = os.pipe()
    os.close(read)  # the reader is gone before anything is written
    try:
        done = subprocess.run(
            [sys.executable, "-m", "looprunner", "--project", str(project), *args],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
            timeout=120,
        )
    finally:
        os.close(write)
    assert (done.returncode, done.stderr) == (1, "")
