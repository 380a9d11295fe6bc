"""The next-action hints: what each health offers, and every hint is a real command line."""

from __future__ import annotations

from typing import NamedTuple

import pytest
from click.testing import CliRunner

from looprunner.cli.app import cli
from looprunner.models import Health
from looprunner.views import hints


class HealthCase(NamedTuple):
    test_id: str
    health: Health
    first: list[str]


CASES = [
    HealthCase("running", Health.RUNNING, ["monitor", "s", "--lines", "50"]),
    HealthCase("crashed", Health.CRASHED, ["resume", "s"]),
    HealthCase("failed", Health.FAILED, ["tail", "s", "--lines", "20"]),
    HealthCase("killed", Health.KILLED, ["resume", "s"]),
    HealthCase("complete", Health.COMPLETE, ["monitor", "s", "--lines", "50"]),
    HealthCase("orphaned", Health.ORPHANED, ["cleanup", "--fix", "--yes"]),
    HealthCase("unknown", Health.UNKNOWN, ["status", "s"]),
    HealthCase("not_found", Health.NOT_FOUND, ["list"]),
]


def runs(command: list[str]) -> bool:
    """The argv parses as a looprunner command line (click reads it all before --help)."""
    assert command[:2] == ["looprunner", "--json"]
    return CliRunner().invoke(cli, [*command[1:], "--help"]).exit_code == 0


def test_every_health_is_covered():
    assert {case.health for case in CASES} == set(Health)


@pytest.mark.parametrize("case", CASES, ids=[c.test_id for c in CASES])
def test_each_health_offers_its_way_on_as_runnable_commands(case):
    offered = hints.for_health("s", case.health)
    assert offered[0]["command"] == ["looprunner", "--json", *case.first]
    for hint in offered:
        assert runs(hint["command"]), hint
        assert hint["why"]
        if {"kill", "--fix"} & set(hint["command"]):  # stopping or repairing: ask first
            assert "ask the user first" in hint["why"]


def test_a_conflict_on_start_offers_the_same_start_with_force(tmp_path):
    argv = ["--project", str(tmp_path), "start", "auth", "--stage", "work", "-n", "3", "--json"]
    offered = hints.for_error("conflict", command="start", argv=argv, session="auth")
    commands = [h["command"] for h in offered]
    assert commands == [
        ["looprunner", "--json", "status", "auth"],
        ["looprunner", "--json", "kill", "auth", "--yes"],
        [
            "looprunner",
            "--json",
            "--project",
            str(tmp_path),
            "start",
            "auth",
            "--stage",
            "work",
            "-n",
            "3",
            "--force",
        ],
    ]
    assert all(runs(c) for c in commands)


def test_errors_without_a_way_on_carry_no_hints():
    assert hints.for_error("config", command="start", argv=["start", "a"], session=None) == []
    assert hints.for_error("conflict", command="kill", argv=["kill", "a"], session="a")[-1][
        "command"
    ] == ["looprunner", "--json", "kill", "a", "--yes"]


@pytest.mark.parametrize("health", [Health.COMPLETE, Health.FAILED, Health.KILLED])
def test_a_finished_session_offers_a_restart(health):
    offered = [h["command"] for h in hints.for_health("s", health)]
    assert ["looprunner", "--json", "restart", "s"] in offered
    assert all(runs(command) for command in offered)
