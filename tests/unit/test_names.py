"""Session names, node ids and every path derived from them (DESIGN.md: resource triple)."""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import NamedTuple

import pytest

from looprunner.errors import EXIT_BAD_INPUT, ConfigError, InvalidSessionNameError
from looprunner.names import (
    ProjectPaths,
    is_valid_session_name,
    session_from_tmux_name,
    tmux_session_name,
    validate_node_id,
    validate_session_name,
)
from tests.conftest import tree


class NameCase(NamedTuple):
    test_id: str
    name: str


VALID_NAMES = [
    NameCase("word", "auth"),
    NameCase("hyphenated", "billing-refactor"),
    NameCase("one-letter", "a"),
    NameCase("one-digit", "7"),
    NameCase("digits-and-hyphens", "v2-run-10"),
    NameCase("48-chars", "a" * 48),
    NameCase("48-chars-hyphens", "-".join(["abc"] * 12)),
]

INVALID_NAMES = [
    NameCase("empty", ""),
    NameCase("upper-case", "Auth"),
    NameCase("all-upper", "AUTH"),
    NameCase("dot", "a.b"),
    NameCase("colon", "a:b"),
    NameCase("slash", "a/b"),
    NameCase("double-hyphen", "a--b"),
    NameCase("leading-hyphen", "-auth"),
    NameCase("trailing-hyphen", "auth-"),
    NameCase("only-hyphen", "-"),
    NameCase("49-chars", "a" * 49),
    NameCase("unicode-letter", "café"),
    NameCase("unicode-digit", "run\u0663"),
    NameCase("parent-dir", "../x"),
    NameCase("dot-dot", ".."),
    NameCase("underscore", "a_b"),
    NameCase("space", "a b"),
    NameCase("trailing-newline", "auth\n"),
    NameCase("tmux-exact-prefix", "=auth"),
    NameCase("nul", "a\x00b"),
]


@pytest.mark.parametrize("case", VALID_NAMES, ids=[c.test_id for c in VALID_NAMES])
def test_valid_session_names_are_accepted(case: NameCase) -> None:
    assert validate_session_name(case.name) == case.name
    assert is_valid_session_name(case.name)


@pytest.mark.parametrize("case", INVALID_NAMES, ids=[c.test_id for c in INVALID_NAMES])
def test_invalid_session_names_are_refused(case: NameCase) -> None:
    with pytest.raises(InvalidSessionNameError) as info:
        validate_session_name(case.name)
    assert not is_valid_session_name(case.name)
    assert info.value.exit_code == EXIT_BAD_INPUT
    assert isinstance(info.value, ValueError)
    if case.name:
        assert repr(case.name[:60]) in str(info.value), "the message shows the bad name"


def test_empty_name_message_says_it_is_empty() -> None:
    with pytest.raises(InvalidSessionNameError, match="empty"):
        validate_session_name("")


def test_too_long_name_message_gives_the_limit() -> None:
    with pytest.raises(InvalidSessionNameError, match="48"):
        validate_session_name("a" * 49)


def test_the_rule_is_the_documented_expression() -> None:
    """Names are checked by hand (no :mod:`re` for a quick look), as the expression reads."""
    rule = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
    alphabet = "az09-AZ_.é\u0663 \n"
    for length in range(5):
        for chars in itertools.product(alphabet, repeat=length):
            name = "".join(chars)
            assert is_valid_session_name(name) == bool(rule.fullmatch(name)), repr(name)
    assert is_valid_session_name("a" * 48)
    assert not is_valid_session_name("a" * 49)
    assert not is_valid_session_name(None)  # type: ignore[arg-type]


def test_every_accepted_name_is_safe_as_a_path_and_a_tmux_target() -> None:
    """Every string of up to 4 characters from a hostile alphabet, accepted or refused."""
    alphabet = "a0-A._/:é \n"
    accepted = 0
    for length in range(5):
        for chars in itertools.product(alphabet, repeat=length):
            name = "".join(chars)
            if not is_valid_session_name(name):
                with pytest.raises(InvalidSessionNameError):
                    validate_session_name(name)
                continue
            accepted += 1
            assert validate_session_name(name) == name
            assert len(name) >= 1
            assert set(name) <= set("a0-")
            assert "--" not in name
            assert not name.startswith("-")
            assert not name.endswith("-")
            paths = ProjectPaths.of("/p").session(name)
            assert paths.run_dir.parent == Path("/p/.claude/pipeline-runs")
            assert paths.lock_file.parent == Path("/p/.claude/locks")
    assert accepted > 20


def test_invalid_name_is_refused_before_touching_the_project(project: Path) -> None:
    before = tree(project)
    with pytest.raises(InvalidSessionNameError):
        ProjectPaths.of(project).session("../x")
    assert tree(project) == before
    assert list(project.iterdir()) == []


def test_tmux_session_name_has_the_pipeline_prefix() -> None:
    assert tmux_session_name("auth") == "pipeline-auth"
    assert (
        ProjectPaths.of("/p").session("billing-refactor").tmux_name == "pipeline-billing-refactor"
    )


def test_tmux_session_name_refuses_invalid_names() -> None:
    with pytest.raises(InvalidSessionNameError):
        tmux_session_name("a.b")


class TmuxNameCase(NamedTuple):
    test_id: str
    tmux_name: str
    session: str | None


TMUX_NAMES = [
    TmuxNameCase("ours", "pipeline-auth", "auth"),
    TmuxNameCase("ours-hyphenated", "pipeline-billing-refactor", "billing-refactor"),
    TmuxNameCase("no-prefix", "auth", None),
    TmuxNameCase("prefix-only", "pipeline-", None),
    TmuxNameCase("invalid-rest", "pipeline-Auth", None),
    TmuxNameCase("rewritten-dot", "pipeline-a_b", None),
    TmuxNameCase("other-prefix", "pipelines-auth", None),
]


@pytest.mark.parametrize("case", TMUX_NAMES, ids=[c.test_id for c in TMUX_NAMES])
def test_session_from_tmux_name(case: TmuxNameCase) -> None:
    assert session_from_tmux_name(case.tmux_name) == case.session


class NodeIdCase(NamedTuple):
    test_id: str
    node_id: str
    valid: bool


NODE_IDS = [
    NodeIdCase("word", "work", True),
    NodeIdCase("underscore", "plan_2", True),
    NodeIdCase("mixed-case", "Improve-Plan", True),
    NodeIdCase("digit-first", "2nd", True),
    NodeIdCase("64-chars", "a" * 64, True),
    NodeIdCase("empty", "", False),
    NodeIdCase("65-chars", "a" * 65, False),
    NodeIdCase("leading-hyphen", "-x", False),
    NodeIdCase("leading-underscore", "_x", False),
    NodeIdCase("dot", "a.b", False),
    NodeIdCase("slash", "a/b", False),
    NodeIdCase("parent-dir", "../x", False),
    NodeIdCase("space", "a b", False),
    NodeIdCase("unicode", "étape", False),
]


@pytest.mark.parametrize("case", NODE_IDS, ids=[c.test_id for c in NODE_IDS])
def test_node_ids(case: NodeIdCase) -> None:
    if case.valid:
        assert validate_node_id(case.node_id) == case.node_id
        return
    with pytest.raises(ConfigError) as info:
        validate_node_id(case.node_id, where="nodes[1].id")
    assert info.value.field == "nodes[1].id"
    assert str(info.value).startswith("nodes[1].id: ")
    assert repr(case.node_id) in str(info.value)


def test_project_paths_layout(project: Path) -> None:
    paths = ProjectPaths.of(project)
    base = project.resolve()
    assert paths.project == base
    assert paths.root == base / ".claude"
    assert paths.locks == base / ".claude" / "locks"
    assert paths.runs == base / ".claude" / "pipeline-runs"


def test_session_paths_layout(project: Path) -> None:
    base = project.resolve()
    run = base / ".claude" / "pipeline-runs" / "auth"
    paths = ProjectPaths.of(project).session("auth")
    assert paths.name == "auth"
    assert paths.lock_file == base / ".claude" / "locks" / "auth.lock"
    assert paths.run_dir == run
    assert paths.state_file == run / "state.json"
    assert paths.events_file == run / "events.jsonl"
    assert paths.pipeline_file == run / "pipeline.yaml"
    assert paths.progress_file == run / "progress-auth.md"
    assert paths.engine_log == run / "engine.log"
    assert paths.stage_dir(0, "plan") == run / "stage-00-plan"
    assert paths.stage_dir(12, "work") == run / "stage-12-work"
    assert paths.iteration_dir(0, "plan", 1) == run / "stage-00-plan" / "iterations" / "001"
    assert paths.iteration_dir(3, "w", 123) == run / "stage-03-w" / "iterations" / "123"


def test_computing_paths_creates_nothing(project: Path) -> None:
    paths = ProjectPaths.of(project).session("auth")
    _ = (paths.lock_file, paths.state_file, paths.iteration_dir(0, "w", 1))
    assert list(project.iterdir()) == []


def test_relative_project_is_made_absolute(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)
    paths = ProjectPaths.of(".")
    assert paths.project == project.resolve()
    assert paths.root.is_absolute()


def test_state_dir_override_relative_is_under_the_project(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("LOOPRUNNER_STATE_DIR", "state/lr")
    paths = ProjectPaths.of(project)
    base = project.resolve()
    assert paths.root == base / "state" / "lr"
    assert paths.session("auth").lock_file == base / "state" / "lr" / "locks" / "auth.lock"
    assert paths.session("auth").run_dir == base / "state" / "lr" / "pipeline-runs" / "auth"


def test_state_dir_override_absolute_is_used_as_is(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "shared-state"
    monkeypatch.setenv("LOOPRUNNER_STATE_DIR", str(target))
    paths = ProjectPaths.of(project).session("auth")
    assert paths.lock_file == target / "locks" / "auth.lock"
    assert paths.state_file == target / "pipeline-runs" / "auth" / "state.json"
    assert paths.project == project.resolve()


def test_empty_state_dir_override_means_the_default(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOPRUNNER_STATE_DIR", "")
    assert ProjectPaths.of(project).root == project.resolve() / ".claude"
