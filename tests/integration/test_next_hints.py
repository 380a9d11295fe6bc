"""The answers docs/cli.md says carry ``next`` really do, on real sessions."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from looprunner.cli.app import cli as group
from tests.conftest import REPO

pytestmark = pytest.mark.tmux


def documented_answers() -> set[str]:
    """The first column of the table in docs/cli.md's "Next actions" section."""
    text = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    section = text.split("\n## Next actions\n", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([^`]+)` \|", section, re.MULTILINE))


def commands_of(answer: dict) -> list[list[str]]:
    assert answer.get("next"), f"no next in {json.dumps(answer)[:300]}"
    for step in answer["next"]:
        assert step["why"]
        assert step["command"][:2] == ["looprunner", "--json"]
    return [step["command"] for step in answer["next"]]


def test_every_answer_documented_with_next_carries_runnable_next(cli, project, make_stage):
    make_stage("work", termination={"type": "fixed", "iterations": 2})
    make_stage("slow", termination={"type": "fixed", "iterations": 50}, extra="mock_delay: 5\n")

    def answer(*args: str, code: int = 0) -> dict:
        result = cli("--json", *args)
        assert result.returncode == code, result.stdout + result.stderr
        return json.loads(result.stdout)

    got = {"start": answer("start", "done", "--stage", "work")}
    assert ["looprunner", "--json", "wait", "done"] in commands_of(got["start"])
    assert cli("wait", "done", "--timeout", "60").returncode == 0
    got["status"] = answer("status", "done")
    assert ["looprunner", "--json", "tail", "done", "--lines", "20"] in commands_of(got["status"])
    got["error conflict"] = answer("start", "done", "--stage", "work", code=3)
    again = commands_of(got["error conflict"])[-1]  # the same start, in the same project
    assert again[2:] == ["--project", str(project), "start", "done", "--stage", "work", "--force"]
    got["error not_found"] = answer("status", "nope", code=4)
    assert commands_of(got["error not_found"]) == [["looprunner", "--json", "list"]]

    assert cli("start", "slow", "--stage", "slow").returncode == 0
    assert cli("kill", "slow", "--yes").returncode == 0
    got["resume"] = answer("resume", "slow")
    assert ["looprunner", "--json", "status", "slow"] in commands_of(got["resume"])
    listed = answer("list")
    got["list"] = listed[0]
    running = next(entry for entry in listed if entry["session"] == "slow")
    assert ["looprunner", "--json", "kill", "slow", "--yes"] in commands_of(running)
    assert all(commands_of(entry) for entry in listed)
    assert cli("kill", "slow", "--yes").returncode == 0

    assert documented_answers() == set(got), "docs/cli.md's Next actions table and this test"
    for name, data in got.items():
        for command in commands_of(data):
            # the hint parses as a command line of this project (click reads it all first)
            result = CliRunner().invoke(group, ["--project", str(project), *command[1:], "--help"])
            assert result.exit_code == 0, f"{name}: {command}: {result.output}"
