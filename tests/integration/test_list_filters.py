"""``list --health/--stage/--since/--sort``, ``Session.list(...)``, and one table for both."""

from __future__ import annotations

import itertools
import json
import os
import re
from pathlib import Path

import pytest

from looprunner import Session
from looprunner.errors import UsageError
from tests.conftest import tree
from tests.fakes import paying_claude

CONTINUE = {"decision": "continue", "reason": "more", "summary": "did one"}


@pytest.fixture
def finished(project: Path, make_stage, cli, tmp_path, monkeypatch) -> Path:
    """Four finished sessions, started in this order: cheap, oops, dear, other.

    ``cheap`` ($0.30) and ``dear`` ($1.50) ran stage ``paid``; ``oops`` failed on stage
    ``broken`` (no cost reported); ``other`` completed stage ``second``.
    """
    folder = paying_claude.install(tmp_path / "agents")
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    make_stage("paid", provider="claude", termination={"type": "fixed", "iterations": 3})
    make_stage("broken", statuses={"default": CONTINUE, 2: {"crash": True}})
    make_stage("second", termination={"type": "fixed", "iterations": 1})
    runs = (
        ("cheap", "paid", "0.1", 0),
        ("oops", "broken", "0", 1),
        ("dear", "paid", "0.5", 0),
        ("other", "second", "0", 0),
    )
    for name, stage, cost, code in runs:
        done = cli("start", name, "--stage", stage, "--foreground", env={"FAKE_COST": cost})
        assert done.returncode == code, done.stderr
    return project


def names(cli, *args: str) -> list[str]:
    shown = cli("--json", "list", *args)
    assert shown.returncode == 0, shown.stderr
    return [s["session"] for s in json.loads(shown.stdout)]


def table_names(cli, *args: str) -> list[str]:
    shown = cli("list", *args)
    assert shown.returncode == 0, shown.stderr
    rows = shown.stdout.split("\n\n")[0].splitlines()[1:]
    return [row.split()[0] for row in rows]


def started(project: Path, name: str) -> str:
    return Session(name, project).status().state.started_at


def test_list_filters_by_health_stage_and_start(finished, cli):
    assert names(cli, "--health", "failed") == ["oops"]
    assert table_names(cli, "--health", "failed") == ["oops"]
    assert names(cli, "--health", "failed,killed,running") == ["oops"]
    assert names(cli, "--health", "complete") == ["cheap", "dear", "other"]
    assert names(cli, "--stage", "paid") == ["cheap", "dear"]
    assert table_names(cli, "--stage", "second") == ["other"]
    assert names(cli, "--health", "complete", "--stage", "paid") == ["cheap", "dear"]
    since = started(finished, "dear")
    assert names(cli, "--since", since) == ["dear", "other"]
    assert names(cli, "--since", "1h") == ["cheap", "dear", "oops", "other"]
    assert names(cli, "--since", "2999-01-01") == []
    assert "match" in cli("list", "--since", "2999-01-01").stdout
    # the Python API takes the same filters
    assert [s.session for s in Session.list(finished, health="failed")] == ["oops"]
    assert [s.session for s in Session.list(finished, stage="paid", since=since)] == ["dear"]


def test_list_sorts_by_name_age_or_cost(finished, cli):
    assert names(cli) == ["cheap", "dear", "oops", "other"]
    assert names(cli, "--sort", "name") == ["cheap", "dear", "oops", "other"]
    assert names(cli, "--sort", "age") == ["other", "dear", "oops", "cheap"]  # newest first
    # most expensive first; unknown cost (never counted as $0) last, by name
    assert names(cli, "--sort", "cost") == ["dear", "cheap", "oops", "other"]
    assert table_names(cli, "--sort", "cost") == ["dear", "cheap", "oops", "other"]
    listed = Session.list(finished, sort="age", health=["complete"])
    assert [s.session for s in listed] == ["other", "dear", "cheap"]


BAD = [
    (["--health", "running,bogus"], "'bogus'"),
    (["--health", ","], "no health given"),
    (["--since", "yesterday"], "'yesterday'"),
    (["--since", "2h30"], "'2h30'"),
    (["--sort", "size"], "'size'"),
]


def test_list_refuses_a_bad_filter_naming_it(finished, cli):
    before = tree(finished)
    for args, named in BAD:
        shown = cli("list", *args)
        assert shown.returncode == 2, args
        assert shown.stdout == ""
        assert shown.stderr.startswith("looprunner: error: ") and named in shown.stderr
        assert len(shown.stderr.strip().splitlines()) == 1
        as_json = cli("--json", "list", *args)
        assert as_json.returncode == 2
        assert json.loads(as_json.stdout)["error"]["type"] == "usage"
    assert tree(finished) == before


def test_session_list_refuses_a_bad_filter(project):
    with pytest.raises(UsageError, match="'bogus'"):
        Session.list(project, health="running,bogus")
    with pytest.raises(UsageError, match="'soon'"):
        Session.list(project, since="soon")
    with pytest.raises(UsageError, match="'size'"):
        Session.list(project, sort="size")


def test_the_notebook_table_has_the_columns_and_cells_of_list(finished, cli):
    shown = cli("list").stdout.split("\n\n")[0].splitlines()
    table = str(Session.list(finished)).splitlines()
    assert table[0].split() == shown[0].split() == [
        "NAME", "TYPE", "STAGE", "ITER", "HEALTH", "AGE", "COST",
    ]  # fmt: skip

    def cells(lines: list[str]) -> list[list[str]]:
        """Each row's cells, cut where the header's words start, without AGE (it ticks)."""
        starts = [m.start() for m in re.finditer(r"\S+", lines[0])] + [10_000]
        rows = [[line[a:b].strip() for a, b in itertools.pairwise(starts)] for line in lines[1:]]
        return [row[:5] + row[6:] for row in rows]

    assert cells(table) == cells(shown)
    assert cells(table)[0] == ["cheap", "stage", "paid", "3/3", "complete", "$0.3000"]
    html = Session.list(finished)._repr_html_()
    assert re.findall(r"<th>(.*?)</th>", html) == shown[0].split()
