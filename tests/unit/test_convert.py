"""Reading stage files (errors that say where), run files round trips, the catalog."""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import pytest

from looprunner import convert
from looprunner.definitions import catalog
from looprunner.errors import EXIT_BAD_INPUT, ConfigError
from looprunner.models import (
    Decision,
    JudgeSpec,
    Node,
    NodeInputs,
    Pipeline,
    RunError,
    RunState,
    RunStatus,
    Stage,
    StageState,
    Termination,
    WorkDone,
)
from tests.conftest import REPO, tree

CORPUS = REPO.parent / "shared" / "corpus" / "loop-agents"
CORPUS_STAGES = CORPUS / "scripts" / "stages"


def write_stage(
    folder: Path, yaml_text: str, *, prompt: str | None = "Do it. Write ${STATUS}.\n"
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "stage.yaml").write_text(yaml_text, encoding="utf-8")
    if prompt is not None:
        (folder / "prompt.md").write_text(prompt, encoding="utf-8")
    return folder / "stage.yaml"


def load(folder: Path, yaml_text: str, **kwargs: str | None) -> Stage:
    stage_yaml = write_stage(folder, yaml_text, **kwargs)
    return convert.load_stage_file(stage_yaml, default_name=folder.name)


# --------------------------------------------------------------------------- errors


class BadStageCase(NamedTuple):
    test_id: str
    yaml: str
    line: int
    column: int
    field: str | None
    message: str


BAD_STAGES = [
    BadStageCase(
        "worktree-a-word",
        "name: w\nworktree: sometimes\n",
        2,
        11,
        "worktree",
        "worktree: expected true or false, got 'sometimes'",
    ),
    BadStageCase(
        "iterations-word",
        "name: w\ntermination:\n  type: fixed\n  iterations: five\n",
        4,
        15,
        "termination.iterations",
        "termination.iterations: expected an integer, got 'five'",
    ),
    BadStageCase(
        "iterations-bool",
        "termination:\n  iterations: true\n",
        2,
        15,
        "termination.iterations",
        "termination.iterations: expected an integer, got True",
    ),
    BadStageCase(
        "max-bool",
        "termination:\n  type: judgment\n  max: false\n",
        3,
        8,
        "termination.max",
        "termination.max: expected an integer, got False",
    ),
    BadStageCase(
        "consensus-float",
        "termination:\n  type: judgment\n  consensus: 2.5\n",
        3,
        14,
        "termination.consensus",
        "termination.consensus: expected an integer, got 2.5",
    ),
    BadStageCase(
        "iterations-zero",
        "termination:\n  iterations: 0\n",
        2,
        15,
        "termination.iterations",
        "termination.iterations: must be at least 1, got 0",
    ),
    BadStageCase(
        "max-negative",
        "termination:\n  type: judgment\n  max: -1\n",
        3,
        8,
        "termination.max",
        "termination.max: must be at least 1, got -1",
    ),
    BadStageCase(
        "min-iterations-zero",
        "termination:\n  type: judgment\n  min_iterations: 0\n",
        3,
        19,
        "termination.min_iterations",
        "termination.min_iterations: must be at least 1, got 0",
    ),
    BadStageCase(
        "delay-word",
        "name: w\ndelay: soon\n",
        2,
        8,
        "delay",
        "delay: expected a number, got 'soon'",
    ),
    BadStageCase(
        "delay-bool",
        "delay: true\n",
        1,
        8,
        "delay",
        "delay: expected a number, got True",
    ),
    BadStageCase(
        "timeout-quoted",
        "timeout: '10'\n",
        1,
        10,
        "timeout",
        "timeout: expected a number, got '10'",
    ),
    BadStageCase(
        "session-mode-unknown",
        "session_mode: forever\n",
        1,
        15,
        "session_mode",
        "session_mode: expected one of fresh, continue, got 'forever'",
    ),
    BadStageCase(
        "model-list",
        "model: [a, b]\n",
        1,
        8,
        "model",
        "model: expected a string, got a list",
    ),
    BadStageCase(
        "unknown-termination-key",
        "name: w\ntermination:\n  type: fixed\n  iteratoins: 3\n",
        4,
        3,
        "termination.iteratoins",
        "termination.iteratoins: unknown key 'iteratoins'",
    ),
    BadStageCase(
        "unknown-judge-key",
        "termination:\n  type: judgment\n  judge:\n    provider: claude\n    modle: opus\n",
        5,
        5,
        "termination.judge.modle",
        "termination.judge.modle: unknown key 'modle'",
    ),
    BadStageCase(
        "unknown-top-level-key",
        "name: w\nprovder: mock\n",
        2,
        1,
        None,
        "unknown key 'provder'",
    ),
    BadStageCase(
        "prompt-not-a-name",
        "prompt: 5\n",
        1,
        9,
        "prompt",
        "prompt: expected a prompt file name, got 5",
    ),
    BadStageCase(
        "command-unbalanced-quote",
        'provider: command\ncommand: "agent \'oops"\n',
        2,
        10,
        "command",
        "command: cannot split command",
    ),
    BadStageCase(
        "command-empty",
        "provider: command\ncommand: ''\n",
        2,
        10,
        "command",
        "command: the command is empty",
    ),
    BadStageCase(
        "yaml-mapping-in-value",
        "name: w\ndescription: a: b\n",
        2,
        15,
        None,
        "invalid YAML: mapping values are not allowed here",
    ),
    BadStageCase(
        "yaml-bad-indent",
        "name: w\ntermination:\n  type: fixed\n   iterations: 3\n",
        4,
        14,
        None,
        "invalid YAML: mapping values are not allowed here",
    ),
    BadStageCase(
        "yaml-tab",
        "name: w\n\ttermination: x\n",
        2,
        1,
        None,
        "invalid YAML: found character '\\t' that cannot start any token",
    ),
    BadStageCase(
        "yaml-duplicate-key",
        "name: a\ndelay: 1\nname: b\n",
        3,
        1,
        None,
        'invalid YAML: found duplicate key "name"',
    ),
]


@pytest.mark.parametrize("case", BAD_STAGES, ids=[c.test_id for c in BAD_STAGES])
def test_stage_errors_name_file_line_column_and_field(case: BadStageCase, tmp_path: Path) -> None:
    stage_yaml = write_stage(tmp_path / "work", case.yaml)
    with pytest.raises(ConfigError) as info:
        convert.load_stage_file(stage_yaml, default_name="work")
    error = info.value
    assert (error.path, error.line, error.column) == (stage_yaml, case.line, case.column)
    assert error.field == case.field
    assert error.exit_code == EXIT_BAD_INPUT
    assert str(error).startswith(f"{stage_yaml}:{case.line}:{case.column}: {case.message}")


def test_scalar_where_a_mapping_belongs_says_a_mapping_is_expected(tmp_path: Path) -> None:
    stage_yaml = write_stage(tmp_path / "work", "name: w\ntermination: fixed\n")
    with pytest.raises(ConfigError) as info:
        convert.load_stage_file(stage_yaml, default_name="work")
    assert (info.value.line, info.value.field) == (2, "termination")
    assert "mapping" in str(info.value)
    assert "AttributeError" not in str(info.value)


@pytest.mark.parametrize("name", ["../../escape", "a/b"], ids=["parent-dirs", "slash"])
def test_a_stage_name_that_is_a_path_is_refused(tmp_path: Path, name: str) -> None:
    stage_yaml = write_stage(tmp_path / "work", f"name: {name}\n")
    with pytest.raises(ConfigError):
        Pipeline.loop(convert.load_stage_file(stage_yaml, default_name="work"))


def test_a_stage_file_that_is_a_list_is_refused(tmp_path: Path) -> None:
    stage_yaml = write_stage(tmp_path / "work", "- a\n- b\n")
    with pytest.raises(ConfigError, match="must be a mapping") as info:
        convert.load_stage_file(stage_yaml, default_name="work")
    assert info.value.path == stage_yaml


def test_unknown_top_level_key_lists_the_known_keys(tmp_path: Path) -> None:
    stage_yaml = write_stage(tmp_path / "work", "name: w\nprovder: mock\n")
    with pytest.raises(ConfigError) as info:
        convert.load_stage_file(stage_yaml, default_name="work")
    assert "provider" in str(info.value).split("known:")[1]


def test_missing_stage_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found") as info:
        convert.load_stage_file(tmp_path / "nope" / "stage.yaml", default_name="nope")
    assert info.value.path == tmp_path / "nope" / "stage.yaml"


def test_missing_prompt_md_is_named(tmp_path: Path) -> None:
    stage_yaml = write_stage(tmp_path / "work", "name: w\n", prompt=None)
    with pytest.raises(ConfigError) as info:
        convert.load_stage_file(stage_yaml, default_name="work")
    assert info.value.path == stage_yaml
    assert str(tmp_path / "work" / "prompt.md") in str(info.value)
    assert "not found" in str(info.value)


def test_missing_named_prompt_file_points_at_the_prompt_key(tmp_path: Path) -> None:
    stage_yaml = write_stage(tmp_path / "work", "name: w\nprompt: other.md\n")
    with pytest.raises(ConfigError) as info:
        convert.load_stage_file(stage_yaml, default_name="work")
    assert (info.value.line, info.value.column) == (2, 9)
    assert str(tmp_path / "work" / "other.md") in str(info.value)


def test_a_scalar_where_a_mapping_belongs_says_so_every_time() -> None:
    # the converter must keep its own hooks once cattrs has generated others
    kinds = [dict[str, str], Termination, dict[str, int], dict[int, str], Termination]
    for cls in kinds * 2:
        with pytest.raises(ConfigError, match="expected a mapping, got 'x'"):
            convert.structure_from("x", cls, path=None, doc=None)


# --------------------------------------------------------------------------- good stages


def test_prompt_key_names_another_file_relative_to_the_stage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "refine"
    (folder / "prompts").mkdir(parents=True)
    (folder / "prompts" / "task.md").write_text("Refine ${CTX}\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # not the stage folder
    stage = load(folder, "name: refine\nprompt: prompts/task.md\n", prompt="the default prompt")
    assert stage.prompt == "Refine ${CTX}\n"


def test_prompt_md_is_read_verbatim(tmp_path: Path) -> None:
    text = "# Héllo\n\n${CTX} ${CURRENT_BRANCH}\n\ttabbed  \n"
    stage = load(tmp_path / "work", "name: work\n", prompt=text)
    assert stage.prompt == text


def test_fixtures_are_relative_to_the_stage_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    folder = tmp_path / "stages" / "work"
    stage = load(folder, "provider: mock\nfixtures: canned/run1\n")
    assert stage.fixtures == (folder / "canned" / "run1").resolve()
    assert stage.source == folder.resolve()


def test_absolute_fixtures_stay_as_given(tmp_path: Path) -> None:
    target = tmp_path / "fx"
    target.mkdir()
    stage = load(tmp_path / "work", f"provider: mock\nfixtures: {target}\n")
    assert stage.fixtures == target.resolve()


def test_a_fixtures_folder_beside_the_stage_is_found(tmp_path: Path) -> None:
    folder = tmp_path / "work"
    (folder / "fixtures").mkdir(parents=True)
    stage = load(folder, "provider: mock\n")
    assert stage.fixtures == (folder / "fixtures").resolve()


def test_no_fixtures_folder_means_none(tmp_path: Path) -> None:
    assert load(tmp_path / "work", "provider: mock\n").fixtures is None


class CommandCase(NamedTuple):
    test_id: str
    yaml_value: str
    argv: tuple[str, ...]


COMMANDS = [
    CommandCase("plain-string", "my-agent --fast", ("my-agent", "--fast")),
    CommandCase("quoted-argument", "my-agent --msg 'a b'", ("my-agent", "--msg", "a b")),
    CommandCase(
        "shell-operators-stay-words",
        '"my-agent ; rm -rf x | cat $HOME"',
        ("my-agent", ";", "rm", "-rf", "x", "|", "cat", "$HOME"),
    ),
    CommandCase("list", "[my-agent, --msg, 'a b']", ("my-agent", "--msg", "a b")),
    CommandCase("list-with-spaces-kept", "['my agent', '$X']", ("my agent", "$X")),
]


@pytest.mark.parametrize("case", COMMANDS, ids=[c.test_id for c in COMMANDS])
def test_command_becomes_an_argv_never_a_shell_string(case: CommandCase, tmp_path: Path) -> None:
    stage = load(tmp_path / "work", f"provider: command\ncommand: {case.yaml_value}\n")
    assert stage.command == case.argv


def test_queue_command_string_is_split_too(tmp_path: Path) -> None:
    stage = load(
        tmp_path / "work", "termination:\n  type: queue\n  queue_command: bd ready --json\n"
    )
    assert stage.termination.queue_command == ("bd", "ready", "--json")


def test_stage_name_defaults_to_the_folder_name(tmp_path: Path) -> None:
    assert load(tmp_path / "polish", "delay: 2\n").name == "polish"


def test_an_empty_stage_file_is_a_stage_with_defaults(tmp_path: Path) -> None:
    stage = load(tmp_path / "work", "")
    assert stage.name == "work"
    assert stage.termination == Termination()
    assert stage.provider_name == "claude"


def test_every_stage_key_is_read(tmp_path: Path) -> None:
    stage = load(
        tmp_path / "work",
        "name: polish\n"
        "description: Polish it\n"
        "provider: command\n"
        "model: opus\n"
        "termination:\n"
        "  type: judgment\n"
        "  max: 9\n"
        "  min_iterations: 2\n"
        "  consensus: 3\n"
        "  judge:\n"
        "    provider: claude\n"
        "    model: haiku\n"
        "delay: 2\n"
        "context: Be brief\n"
        "output_path: docs/out-${SESSION}.md\n"
        "mock_delay: 0.25\n"
        "timeout: 600\n"
        "session_mode: continue\n"
        "command: [agent, --go]\n"
        "type: review\n"
        "options:\n"
        "  depth: 2\n"
        "  paths: [src, tests]\n"
        "  rubric: {style: strict}\n"
        "worktree: true\n",
    )
    assert stage.name == "polish"
    assert stage.description == "Polish it"
    assert (stage.provider, stage.model) == ("command", "opus")
    assert stage.termination == Termination(
        type="judgment",
        max=9,
        min_iterations=2,
        consensus=3,
        judge=JudgeSpec(provider="claude", model="haiku"),
    )
    assert (stage.delay, stage.mock_delay, stage.timeout) == (2.0, 0.25, 600.0)
    assert stage.context == "Be brief"
    assert stage.output_path == "docs/out-${SESSION}.md"
    assert stage.command == ("agent", "--go")
    assert stage.session_mode == "continue"
    assert stage.type == "review"
    assert stage.options == {"depth": 2, "paths": ["src", "tests"], "rubric": {"style": "strict"}}
    # plain containers, not ruamel's: a stage type and the run directory get plain data
    assert type(stage.options["paths"]) is list
    assert type(stage.options["rubric"]) is dict
    assert stage.worktree is True


def test_a_stage_without_type_or_options_has_the_defaults(tmp_path: Path) -> None:
    stage = load(tmp_path / "work", "provider: mock\n")
    assert (stage.type, stage.options) == (None, {})


class BadOptionsCase(NamedTuple):
    test_id: str
    yaml: str
    line: int
    column: int
    message: str


BAD_OPTIONS = [
    BadOptionsCase("a-string", "name: w\noptions: fast\n", 2, 10, "expected a mapping, got 'fast'"),
    BadOptionsCase("a-list", "options: [a, b]\n", 1, 10, "expected a mapping, got a list"),
    BadOptionsCase(
        "a-number", "name: w\ndelay: 1\noptions: 3\n", 3, 10, "expected a mapping, got 3"
    ),
    BadOptionsCase("type-a-list", "type: [agent]\n", 1, 7, "expected a string, got a list"),
]


@pytest.mark.parametrize("case", BAD_OPTIONS, ids=[c.test_id for c in BAD_OPTIONS])
def test_options_must_be_a_mapping_and_type_a_string(case: BadOptionsCase, tmp_path: Path) -> None:
    stage_yaml = write_stage(tmp_path / "work", case.yaml)
    with pytest.raises(ConfigError) as info:
        convert.load_stage_file(stage_yaml, default_name="work")
    error = info.value
    assert (error.path, error.line, error.column) == (stage_yaml, case.line, case.column)
    assert error.field == case.yaml.splitlines()[case.line - 1].split(":")[0]
    assert str(error) == f"{stage_yaml}:{case.line}:{case.column}: {error.field}: {case.message}"


# --------------------------------------------------------------------------- run files


def full_state() -> RunState:
    return RunState(
        session="auth",
        type="pipeline",
        pipeline="refine",
        status=RunStatus.FAILED,
        started_at="2024-05-01T10:00:00.000Z",
        updated_at="2024-05-01T10:05:00.000Z",
        finished_at="2024-05-01T10:05:00.000Z",
        backend="tmux",
        stages=(
            StageState(
                id="plan",
                stage="improve-plan",
                status=RunStatus.COMPLETE,
                iterations_completed=2,
                max_iterations=5,
                termination_reason="consensus",
            ),
            StageState(id="work", stage="work", status=RunStatus.FAILED, max_iterations=3),
        ),
        current_stage=1,
        iteration=2,
        iteration_completed=1,
        iteration_started="2024-05-01T10:04:00.000Z",
        completion_reason=None,
        error=RunError(type="provider_exit", message="exit status 3", iteration=2),
        pid=4242,
        pid_start_time=987654,
        host="build-1",
        boot_id="0f1e2d3c",
    )


def test_state_json_round_trip() -> None:
    state = full_state()
    assert convert.state_from_json(convert.state_to_json(state)) == state


def test_state_json_has_the_contract_fields() -> None:
    data = json.loads(convert.state_to_json(full_state()))
    contract = {
        "session",
        "type",
        "pipeline",
        "status",
        "started_at",
        "updated_at",
        "finished_at",
        "backend",
        "current_stage",
        "iteration",
        "iteration_completed",
        "iteration_started",
        "stages",
        "completion_reason",
        "error",
        "pid",
        "host",
        "boot_id",
        "usage",
        "cost_usd",
    }
    assert contract <= set(data)
    assert data["status"] == "failed"
    assert data["stages"][0] == {
        "id": "plan",
        "stage": "improve-plan",
        "status": "complete",
        "iterations_completed": 2,
        "max_iterations": 5,
        "termination_reason": "consensus",
        "spent": {"cost_usd": None, "tokens": None, "runtime": 0.0, "errors_in_row": 0},
        "usage": None,  # no agent reported tokens or cost: unknown, never zero
        "cost_usd": None,
        "agent_session_id": None,
    }
    assert data["error"] == {"type": "provider_exit", "message": "exit status 3", "iteration": 2}


def test_state_from_a_newer_version_with_extra_keys_still_reads() -> None:
    data = json.loads(convert.state_to_json(full_state()))
    data["added_in_a_later_version"] = {"x": 1}
    assert convert.state_from_json(json.dumps(data)) == full_state()


class BadStateCase(NamedTuple):
    test_id: str
    text: str


BAD_STATES = [
    BadStateCase("empty", ""),
    BadStateCase("torn", '{"session": "auth", "sta'),
    BadStateCase("list", "[]"),
    BadStateCase("missing-fields", '{"session": "auth"}'),
    BadStateCase(
        "bad-status",
        json.dumps({**json.loads(convert.state_to_json(full_state())), "status": "paused"}),
    ),
]


@pytest.mark.parametrize("case", BAD_STATES, ids=[c.test_id for c in BAD_STATES])
def test_malformed_state_raises_value_error(case: BadStateCase) -> None:
    with pytest.raises(ValueError, match="malformed state"):
        convert.state_from_json(case.text)


def two_node_pipeline(tmp_path: Path) -> Pipeline:
    plan = Stage(
        name="improve-plan",
        prompt="Héllo ${CTX}\n  indented: yes\n---\n'quoted' \"double\"\r\n\ttab\n",
        description="Improve: the plan",
        provider="command",
        model="opus",
        command=("agent", "--msg", "a b"),
        termination=Termination(
            type="judgment",
            max=5,
            min_iterations=2,
            consensus=3,
            judge=JudgeSpec(provider="claude", model="haiku"),
        ),
        delay=1.5,
        timeout=30.0,
        context="Be brief: ${CONTEXT}",
        output_path="docs/plan-${SESSION}.md",
        fixtures=tmp_path / "fx",
        mock_delay=0.1,
        source=tmp_path / "stages" / "improve-plan",
        type="review",
        options={"depth": 2, "paths": ["src"], "rubric": {"style": "strict", "max": 1.5}},
    )
    work = Stage(
        name="work",
        prompt="x" * 10_000,
        termination=Termination(type="queue", queue_command=("bd", "ready")),
    )
    return Pipeline(
        name="refine",
        nodes=(
            Node(id="plan", stage=plan, max_iterations=4),
            Node(
                id="work_2",
                stage=work,
                inputs=NodeInputs(from_initial=False, from_nodes=("plan",), select="all"),
            ),
        ),
        description="plan then work",
        commands={"test": "pytest -q", "lint": "ruff check ."},
        inputs=("docs/plan.md",),
        context="shared context",
        source=tmp_path / "refine.yaml",
    )


def test_resolved_pipeline_round_trip(tmp_path: Path) -> None:
    pipeline = two_node_pipeline(tmp_path)
    target = tmp_path / "run" / "pipeline.yaml"
    target.parent.mkdir()
    target.write_text(convert.dump_pipeline(pipeline), encoding="utf-8")
    assert convert.load_resolved_pipeline(target) == pipeline


def test_stage_type_and_options_survive_the_resolved_pipeline(tmp_path: Path) -> None:
    pipeline = two_node_pipeline(tmp_path)
    target = tmp_path / "pipeline.yaml"
    target.write_text(convert.dump_pipeline(pipeline), encoding="utf-8")
    plan, work = convert.load_resolved_pipeline(target).nodes
    assert (plan.stage.type, plan.stage.options) == ("review", pipeline.nodes[0].stage.options)
    assert (work.stage.type, work.stage.options) == (None, {})
    data = json.loads(target.read_text(encoding="utf-8"))
    assert data["nodes"][0]["stage"]["options"]["rubric"] == {"style": "strict", "max": 1.5}


def test_loop_pipeline_round_trip(tmp_path: Path) -> None:
    pipeline = Pipeline.loop(Stage(name="work", prompt="Work.\n"), iterations=7)
    target = tmp_path / "pipeline.yaml"
    target.write_text(convert.dump_pipeline(pipeline), encoding="utf-8")
    loaded = convert.load_resolved_pipeline(target)
    assert loaded == pipeline
    assert loaded.kind == "loop"
    assert loaded.nodes[0].cap == 7


def test_resolved_pipeline_round_trip_keeps_a_next_line_character(tmp_path: Path) -> None:
    pipeline = Pipeline.loop(Stage(name="work", prompt="one\x85two"))
    target = tmp_path / "pipeline.yaml"
    target.write_text(convert.dump_pipeline(pipeline), encoding="utf-8")
    assert convert.load_resolved_pipeline(target).nodes[0].stage.prompt == "one\x85two"


def test_broken_resolved_pipeline_names_the_file(tmp_path: Path) -> None:
    target = tmp_path / "pipeline.yaml"
    target.write_text("name: refine\nnodes: [\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        convert.load_resolved_pipeline(target)
    assert info.value.path == target
    assert info.value.line is not None


class StatusCase(NamedTuple):
    test_id: str
    data: object
    message: str


BAD_STATUSES = [
    StatusCase("no-decision", {"reason": "x"}, "missing key 'decision'"),
    StatusCase(
        "unknown-decision",
        {"decision": "maybe"},
        "decision: expected one of continue, stop, error, got 'maybe'",
    ),
    StatusCase(
        "upper-case-decision",
        {"decision": "STOP"},
        "decision: expected one of continue, stop, error, got 'STOP'",
    ),
    StatusCase(
        "null-decision",
        {"decision": None},
        "decision: expected one of continue, stop, error, got nothing",
    ),
    StatusCase("reason-list", {"decision": "stop", "reason": ["a"]}, "reason: expected a string"),
    StatusCase(
        "files-touched-string",
        {"decision": "stop", "work": {"files_touched": "a.py"}},
        "work.files_touched: expected a list of strings, got 'a.py'",
    ),
    StatusCase(
        "items-completed-number",
        {"decision": "stop", "work": {"items_completed": 3}},
        "work.items_completed: expected a list of strings, got 3",
    ),
    StatusCase("errors-number", {"decision": "stop", "errors": 5}, "errors: "),
]


@pytest.mark.parametrize("case", BAD_STATUSES, ids=[c.test_id for c in BAD_STATUSES])
def test_agent_status_errors_are_readable(case: StatusCase) -> None:
    with pytest.raises(ValueError) as info:
        convert.agent_status_from_dict(case.data)
    assert str(info.value).startswith(case.message)


def test_errors_given_as_one_string_is_not_split_into_characters() -> None:
    try:
        status = convert.agent_status_from_dict({"decision": "stop", "errors": "flaky test"})
    except ValueError:
        return  # refusing it is fine too
    assert status.errors == ("flaky test",)


class LegacyCase(NamedTuple):
    test_id: str
    data: dict[str, object]
    decision: Decision
    reason: str


LEGACY_STATUSES = [
    LegacyCase(
        "plateau",
        {"signals": {"plateau_suspected": True, "notes": "nothing new"}},
        Decision.STOP,
        "nothing new",
    ),
    LegacyCase("no-plateau", {"signals": {"plateau_suspected": False}}, Decision.CONTINUE, ""),
    LegacyCase(
        "own-reason-wins",
        {"reason": "mine", "signals": {"plateau_suspected": True, "notes": "n"}},
        Decision.STOP,
        "mine",
    ),
    LegacyCase(
        "decision-wins",
        {"decision": "continue", "signals": {"plateau_suspected": True}},
        Decision.CONTINUE,
        "",
    ),
]


@pytest.mark.parametrize("case", LEGACY_STATUSES, ids=[c.test_id for c in LEGACY_STATUSES])
def test_loop_agents_result_format_is_understood(case: LegacyCase) -> None:
    status = convert.agent_status_from_dict(case.data)
    assert (status.decision, status.reason) == (case.decision, case.reason)


def test_legacy_signals_without_a_plateau_flag_is_still_missing_a_decision() -> None:
    with pytest.raises(ValueError, match="missing key 'decision'"):
        convert.agent_status_from_dict({"signals": {"notes": "hmm"}})


def test_full_agent_status_is_read() -> None:
    status = convert.agent_status_from_dict(
        {
            "decision": "stop",
            "reason": "queue empty",
            "summary": "did it",
            "work": {"items_completed": ["a"], "files_touched": ["x.py", "y.py"]},
            "errors": ["flaky test"],
            "confidence": 0.9,  # extra keys from an agent are tolerated at the top level
        }
    )
    assert status.decision is Decision.STOP
    assert (status.reason, status.summary) == ("queue empty", "did it")
    assert status.work == WorkDone(items_completed=("a",), files_touched=("x.py", "y.py"))
    assert status.errors == ("flaky test",)


# --------------------------------------------------------------------------- catalog


def test_project_stage_shadows_a_loop_agents_stage(project: Path) -> None:
    write_stage(project / "scripts" / "stages" / "work", "delay: 1\n", prompt="old layout")
    write_stage(project / ".looprunner" / "stages" / "work", "delay: 2\n", prompt="new layout")
    stage = catalog.load_stage("work", project=project)
    assert (stage.prompt, stage.delay) == ("new layout", 2.0)
    origins = [(ref.origin, ref.problem) for ref in catalog.iter_stages(project)]
    assert ("project", None) in origins
    assert ("loop-agents", None) in origins
    [listed] = [ref for ref in catalog.list_stages(project) if ref.name == "work"]
    assert listed.origin == "project"


def test_load_stage_by_folder_path_and_by_stage_yaml_path(project: Path) -> None:
    write_stage(project / "somewhere" / "fix", "delay: 3\n", prompt="Fix.\n")
    by_folder = catalog.load_stage("somewhere/fix", project=project)
    by_file = catalog.load_stage(project / "somewhere" / "fix" / "stage.yaml", project=project)
    assert by_folder == by_file
    assert by_folder.name == "fix"
    assert by_folder.prompt == "Fix.\n"


def test_unknown_stage_names_the_available_ones(project: Path) -> None:
    write_stage(project / ".looprunner" / "stages" / "polish", "")
    with pytest.raises(ConfigError) as info:
        catalog.load_stage("polsh", project=project)
    assert "unknown stage 'polsh'" in str(info.value)
    assert "polish" in str(info.value)


def test_folder_without_stage_yaml_is_reported_not_a_stage(project: Path) -> None:
    (project / "scripts" / "stages" / "notes").mkdir(parents=True)
    refs = [ref for ref in catalog.iter_stages(project) if ref.name == "notes"]
    assert [ref.problem for ref in refs] == ["no stage.yaml: not a stage"]
    with pytest.raises(ConfigError, match="not a stage"):
        catalog.load_stage("notes", project=project)


needs_corpus = pytest.mark.skipif(
    not CORPUS_STAGES.is_dir(), reason=f"loop-agents corpus not found at {CORPUS}"
)
CORPUS_NAMES = (
    sorted(p.parent.name for p in CORPUS_STAGES.glob("*/stage.yaml"))
    if CORPUS_STAGES.is_dir()
    else []
)


@needs_corpus
def test_the_corpus_has_stages() -> None:
    assert len(CORPUS_NAMES) >= 20


@needs_corpus
@pytest.mark.parametrize("name", CORPUS_NAMES)
def test_every_loop_agents_stage_loads_unchanged(name: str) -> None:
    folder = CORPUS_STAGES / name
    before = tree(folder)
    stage = catalog.load_stage(name, project=CORPUS)
    assert stage.name == name
    assert stage.source == folder.resolve()
    assert stage.prompt.strip()
    if (folder / "prompt.md").is_file():
        assert stage.prompt == (folder / "prompt.md").read_text(encoding="utf-8")
    assert stage.termination.type in {"fixed", "judgment"}
    if (folder / "fixtures").is_dir():
        assert stage.fixtures == (folder / "fixtures").resolve()
    assert tree(folder) == before, "loading a stage never writes to its folder"


@needs_corpus
def test_corpus_stage_with_a_prompt_key_reads_that_file() -> None:
    stage = catalog.load_stage("refine-tasks", project=CORPUS)
    expected = CORPUS_STAGES / "refine-tasks" / "prompts" / "task-refiner.md"
    assert stage.prompt == expected.read_text(encoding="utf-8")


@needs_corpus
def test_corpus_work_folder_is_listed_as_not_a_stage() -> None:
    refs = {ref.name: ref for ref in catalog.list_stages(CORPUS)}
    assert refs["work"].problem == "no stage.yaml: not a stage"
    assert refs["work"].origin == "loop-agents"
    assert [r.name for r in catalog.iter_stages(CORPUS) if r.problem] == ["work"]
    assert all(refs[name].problem is None for name in CORPUS_NAMES)
    with pytest.raises(ConfigError, match="not a stage"):
        catalog.load_stage("work", project=CORPUS)
