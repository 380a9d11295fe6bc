"""Pipeline files: resolved into a Pipeline, or refused with an error that says where."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pytest

from looprunner.definitions import build_pipeline, load_pipeline
from looprunner.errors import EXIT_BAD_INPUT, ConfigError, UsageError
from looprunner.models import NodeInputs, Termination


def setup_project(project: Path, pipeline_yaml: str) -> Path:
    """A project with stages ``plan`` and ``work`` and the pipeline file ``p.yaml``."""
    for name in ("plan", "work"):
        folder = project / ".looprunner" / "stages" / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "stage.yaml").write_text(
            "provider: mock\ntermination:\n  type: fixed\n  iterations: 2\n", encoding="utf-8"
        )
        (folder / "prompt.md").write_text(f"{name} ${{STATUS}}\n", encoding="utf-8")
    path = project / "p.yaml"
    path.write_text(pipeline_yaml, encoding="utf-8")
    return path


class BadPipelineCase(NamedTuple):
    test_id: str
    yaml: str
    line: int
    field: str | None
    message: str
    code: str = "LR002"


NODE = "nodes:\n  - id: a\n    stage: work\n"
#: a parallel block 'b' of one stage 's' run by claude and codex (7 lines)
BLOCK = (
    "nodes:\n  - id: b\n    parallel:\n      providers: [claude, codex]\n"
    "      stages:\n        - id: s\n          stage: work\n"
)

BAD_PIPELINES = [
    BadPipelineCase(
        "unknown-top-level-key", NODE + "colour: red\n", 4, "colour", "unknown key 'colour'"
    ),
    BadPipelineCase(
        "nodes-and-stages",
        NODE + "stages:\n  - id: b\n    stage: work\n",
        4,
        "stages",
        "give 'nodes:' or the legacy 'stages:', not both",
    ),
    BadPipelineCase(
        "nodes-a-string", "nodes: work\n", 1, "nodes", "'nodes:' must be a non-empty list"
    ),
    BadPipelineCase("nodes-empty", "nodes: []\n", 1, "nodes", "'nodes:' must be a non-empty list"),
    BadPipelineCase("name-a-list", "name: [a]\n" + NODE, 1, "name", "expected a string"),
    BadPipelineCase(
        "defaults-a-string", NODE + "defaults: claude\n", 4, "defaults", "expected a mapping"
    ),
    BadPipelineCase(
        "defaults-unknown-key",
        NODE + "defaults:\n  provder: mock\n",
        5,
        "defaults.provder",
        "unknown key 'provder'",
    ),
    BadPipelineCase(
        "defaults-provider-a-list",
        NODE + "defaults:\n  provider: [a]\n",
        5,
        "defaults.provider",
        "expected a string",
    ),
    BadPipelineCase(
        "commands-a-list", NODE + "commands: [a]\n", 4, "commands", "expected a mapping"
    ),
    BadPipelineCase(
        "pipeline-inputs-a-number",
        NODE + "inputs: 5\n",
        4,
        "inputs",
        "expected a list of paths, globs or folders",
    ),
    BadPipelineCase("node-a-string", "nodes:\n  - work\n", 2, "nodes[0]", "expected a mapping"),
    BadPipelineCase(
        "node-unknown-key",
        NODE + "    colour: red\n",
        4,
        "nodes[0].colour",
        "unknown key 'colour'",
    ),
    BadPipelineCase("node-without-id", "nodes:\n  - stage: work\n", 2, "nodes[0]", "needs an 'id'"),
    BadPipelineCase(
        "node-id-a-path", "nodes:\n  - id: a/b\n    stage: work\n", 2, "nodes[0].id", "a/b"
    ),
    BadPipelineCase(
        "duplicate-id",
        NODE + "  - id: a\n    stage: plan\n",
        4,
        "nodes[1].id",
        "duplicate node id 'a'",
        "LR020",
    ),
    BadPipelineCase(
        "parallel-without-stages",
        "nodes:\n  - id: a\n    parallel: {providers: [claude]}\n",
        3,
        "nodes[0].parallel.stages",
        "'stages:' must be a non-empty list",
    ),
    BadPipelineCase(
        "parallel-provider-twice",
        "nodes:\n  - id: a\n    parallel:\n      providers: [claude, claude]\n"
        "      stages: [{id: s, stage: work}]\n",
        4,
        "nodes[0].parallel.providers[1].name",
        "provider 'claude' is listed twice",
    ),
    BadPipelineCase(
        "parallel-unknown-key",
        "nodes:\n  - id: a\n    parallel:\n      providers: [claude]\n      stage: work\n",
        5,
        "nodes[0].parallel.stage",
        "unknown key 'stage' (known: providers, stages)",
    ),
    BadPipelineCase(
        "parallel-with-stage-key",
        "nodes:\n  - id: a\n    stage: work\n    parallel:\n      providers: [claude]\n"
        "      stages: [{id: s, stage: work}]\n",
        3,
        "nodes[0].stage",
        "put 'stage' on the block's stages",
    ),
    BadPipelineCase(
        "parallel-nested",
        "nodes:\n  - id: a\n    parallel:\n      providers: [claude]\n      stages:\n"
        "        - id: s\n          parallel: {providers: [codex], stages: []}\n",
        7,
        "nodes[0].parallel.stages[0].parallel",
        "cannot hold another one",
    ),
    BadPipelineCase(
        "parallel-provider-bad-key",
        "nodes:\n  - id: a\n    parallel:\n      providers:\n        - {name: claude, modle: x}\n"
        "      stages: [{id: s, stage: work}]\n",
        5,
        "nodes[0].parallel.providers[0].modle",
        "unknown key 'modle'",
    ),
    BadPipelineCase(
        "from-parallel-unknown-stage",
        BLOCK + "  - id: c\n    stage: work\n    inputs:\n      from_parallel: t\n",
        11,
        "nodes[1].inputs.from_parallel",
        "stage 't', which no earlier parallel block has (their stages: s)",
        "LR021",
    ),
    BadPipelineCase(
        "from-parallel-unknown-provider",
        BLOCK + "  - id: c\n    stage: work\n    inputs:\n"
        "      from_parallel: {stage: s, providers: [gemini]}\n",
        11,
        "nodes[1].inputs.from_parallel",
        "provider 'gemini', which block 'b' does not run (it runs claude, codex)",
        "LR021",
    ),
    BadPipelineCase(
        "from-parallel-unknown-block",
        BLOCK + "  - id: c\n    stage: work\n    inputs:\n"
        "      from_parallel: [{stage: s, block: z}]\n",
        11,
        "nodes[1].inputs.from_parallel",
        "block 'z', which is not an earlier block (earlier blocks: b)",
        "LR021",
    ),
    BadPipelineCase(
        "from-parallel-bad-select",
        BLOCK + "  - id: c\n    stage: work\n    inputs:\n"
        "      from_parallel: {stage: s, select: all}\n",
        11,
        "nodes[1].inputs.from_parallel.select",
        "history",
    ),
    BadPipelineCase(
        "stage-and-prompt",
        NODE + "    prompt: do it\n",
        4,
        "nodes[0].prompt",
        "give 'stage:' or an inline 'prompt:', not both",
    ),
    BadPipelineCase(
        "neither-stage-nor-prompt", "nodes:\n  - id: a\n", 2, "nodes[0]", "needs 'stage:'"
    ),
    BadPipelineCase(
        "unknown-stage",
        "nodes:\n  - id: a\n    stage: wrok\n",
        3,
        "nodes[0].stage",
        "unknown stage 'wrok'",
        "LR010",
    ),
    BadPipelineCase(
        "stage-a-list",
        "nodes:\n  - id: a\n    stage: [work]\n",
        3,
        "nodes[0].stage",
        "expected a string",
    ),
    BadPipelineCase(
        "provider-a-list", NODE + "    provider: [a]\n", 4, "nodes[0].provider", "expected a string"
    ),
    BadPipelineCase(
        "delay-a-word",
        NODE + "    delay: soon\n",
        4,
        "nodes[0].delay",
        "expected a number, got 'soon'",
    ),
    BadPipelineCase(
        "timeout-a-bool", NODE + "    timeout: true\n", 4, "nodes[0].timeout", "expected a number"
    ),
    BadPipelineCase("runs-zero", NODE + "    runs: 0\n", 4, "nodes[0].runs", "got 0"),
    BadPipelineCase("runs-a-word", NODE + "    runs: five\n", 4, "nodes[0].runs", "'five'"),
    BadPipelineCase(
        "command-unbalanced-quote",
        NODE + '    command: "agent \'oops"\n',
        4,
        "nodes[0].command",
        "cannot split command",
    ),
    BadPipelineCase(
        "options-a-string",
        NODE + "    options: fast\n",
        4,
        "nodes[0].options",
        "expected a mapping, got 'fast'",
    ),
    BadPipelineCase(
        "type-a-mapping",
        NODE + "    type: {a: b}\n",
        4,
        "nodes[0].type",
        "expected a string, got a mapping",
    ),
    BadPipelineCase(
        "termination-a-string",
        NODE + "    termination: fixed\n",
        4,
        "nodes[0].termination",
        "expected a mapping",
    ),
    BadPipelineCase(
        "termination-iterations-a-word",
        NODE + "    termination:\n      iterations: five\n",
        5,
        "nodes[0].termination.iterations",
        "expected an integer, got 'five'",
    ),
    BadPipelineCase(
        "termination-iterations-zero",
        NODE + "    termination:\n      iterations: 0\n",
        5,
        "nodes[0].termination.iterations",
        "must be at least 1, got 0",
    ),
    BadPipelineCase(
        "termination-unknown-key",
        NODE + "    termination:\n      iteratons: 3\n",
        5,
        "nodes[0].termination.iteratons",
        "unknown key 'iteratons'",
    ),
    BadPipelineCase(
        "inputs-a-string", NODE + "    inputs: a\n", 4, "nodes[0].inputs", "expected a mapping"
    ),
    BadPipelineCase(
        "inputs-unknown-key",
        NODE + "    inputs:\n      form: a\n",
        5,
        "nodes[0].inputs.form",
        "unknown key 'form'",
    ),
    BadPipelineCase(
        "inputs-from-a-number",
        NODE + "  - id: b\n    stage: plan\n    inputs:\n      from: 5\n",
        7,
        "nodes[1].inputs.from",
        "expected a node id or a list of node ids",
    ),
    BadPipelineCase(
        "inputs-from-unknown-node",
        NODE + "  - id: b\n    stage: plan\n    inputs:\n      from: c\n",
        7,
        "nodes[1].inputs.from",
        "unknown node 'c'",
        "LR021",
    ),
    BadPipelineCase(
        "inputs-from-a-later-node",
        NODE + "    inputs:\n      from: b\n  - id: b\n    stage: plan\n",
        5,
        "nodes[0].inputs.from",
        "which runs later",
        "LR021",
    ),
    BadPipelineCase(
        "inputs-select-unknown",
        NODE + "    inputs:\n      select: some\n",
        5,
        "nodes[0].inputs.select",
        "got 'some'",
    ),
    BadPipelineCase(
        "inputs-from-initial-a-word",
        NODE + "    inputs:\n      from_initial: 'yes'\n",
        5,
        "nodes[0].inputs.from_initial",
        "expected true or false",
    ),
    BadPipelineCase(
        "worktree-a-word",
        "worktree: always\n" + NODE,
        1,
        "worktree",
        "expected true or false",
    ),
    BadPipelineCase(
        "inputs-from-parallel-without-block",
        NODE + "    inputs:\n      from_parallel: x\n",
        5,
        "nodes[0].inputs.from_parallel",
        "no parallel block runs before this node",
        "LR021",
    ),
]


@pytest.mark.parametrize("case", BAD_PIPELINES, ids=[c.test_id for c in BAD_PIPELINES])
def test_pipeline_errors_name_file_line_and_field(case: BadPipelineCase, tmp_path: Path) -> None:
    path = setup_project(tmp_path, case.yaml)
    with pytest.raises(ConfigError) as info:
        load_pipeline(path, project=tmp_path)
    error = info.value
    assert (error.path, error.line, error.field) == (path, case.line, case.field)
    assert (error.code, error.exit_code) == (case.code, EXIT_BAD_INPUT)
    text = str(error)
    assert "\n" not in text
    assert text.startswith(
        f"{path}:{case.line}:{error.column}: {case.field + ': ' if case.field else ''}"
    )
    assert case.message in text


def test_a_node_overrides_the_stage_and_the_pipeline_fills_in_defaults(tmp_path: Path) -> None:
    path = setup_project(
        tmp_path,
        "name: two\n"
        "defaults:\n  provider: command\n  model: m1\n"
        "context: shared\n"
        "nodes:\n"
        "  - id: a\n    stage: plan\n    runs: 3\n    delay: 2\n    context: mine\n"
        "    command: agent --go\n"
        "    termination:\n      type: judgment\n      consensus: 2\n"
        "  - id: b\n    prompt: inline ${STATUS}\n"
        "    inputs:\n      from: a\n      select: all\n      from_initial: false\n",
    )
    pipeline = load_pipeline(path, project=tmp_path)
    a, b = pipeline.nodes
    assert pipeline.name == "two"
    assert a.max_iterations == 3
    assert (a.stage.provider, a.stage.model) == ("mock", "m1")  # the stage's own provider wins
    assert a.stage.delay == 2.0
    assert a.stage.context == "shared\n\nmine"
    assert a.stage.command == ("agent", "--go")
    assert a.stage.termination == Termination(type="judgment", iterations=2, consensus=2)
    assert (b.stage.name, b.stage.prompt, b.stage.provider) == ("b", "inline ${STATUS}", "command")
    assert b.inputs == NodeInputs(from_initial=False, from_nodes=("a",), select="all")


def test_a_node_replaces_the_stage_type_and_merges_options_over_the_stages(
    tmp_path: Path,
) -> None:
    path = setup_project(
        tmp_path,
        "nodes:\n"
        "  - id: a\n    stage: review\n"
        "    type: critic\n"
        "    options:\n      depth: 5\n      extra: [x]\n"
        "  - id: b\n    stage: review\n"
        "  - id: c\n    stage: work\n    options: {only: here}\n",
    )
    folder = tmp_path / ".looprunner" / "stages" / "review"
    folder.mkdir(parents=True)
    (folder / "stage.yaml").write_text(
        "type: reviewer\noptions:\n  depth: 1\n  rubric: {style: strict}\n", encoding="utf-8"
    )
    (folder / "prompt.md").write_text("Review.\n", encoding="utf-8")
    a, b, c = load_pipeline(path, project=tmp_path).nodes
    assert a.stage.type == "critic"
    assert a.stage.options == {"depth": 5, "rubric": {"style": "strict"}, "extra": ["x"]}
    assert (b.stage.type, b.stage.options) == (
        "reviewer",
        {"depth": 1, "rubric": {"style": "strict"}},
    )
    assert (c.stage.type, c.stage.options) == (None, {"only": "here"})


class BuildCase(NamedTuple):
    test_id: str
    stage: str | None
    pipeline: str | None
    iterations: int | None
    message: str


BAD_BUILDS = [
    BuildCase("neither", None, None, None, "give exactly one of"),
    BuildCase("both", "work", "p.yaml", None, "give exactly one of"),
    BuildCase("n-zero", "work", None, 0, "-n must be at least 1"),
    BuildCase("n-with-pipeline", None, "p.yaml", 3, "-n applies to --stage"),
]


@pytest.mark.parametrize("case", BAD_BUILDS, ids=[c.test_id for c in BAD_BUILDS])
def test_build_pipeline_refuses_contradictions_with_a_usage_error(
    case: BuildCase, tmp_path: Path
) -> None:
    setup_project(tmp_path, NODE)
    with pytest.raises(UsageError, match=case.message):
        build_pipeline(
            tmp_path, stage=case.stage, pipeline=case.pipeline, iterations=case.iterations
        )


def test_build_pipeline_resolves_a_stage_loop_with_overrides(tmp_path: Path) -> None:
    setup_project(tmp_path, NODE)
    extra = tmp_path / "notes.md"
    extra.write_text("x", encoding="utf-8")
    pipeline = build_pipeline(
        tmp_path, stage="work", pipeline=None, iterations=4, model="m", inputs=(extra,)
    )
    assert (pipeline.kind, pipeline.nodes[0].cap) == ("loop", 4)
    assert pipeline.nodes[0].stage.model is None  # the stage picks its own provider
    assert pipeline.inputs == (str(extra.resolve()),)
    with pytest.raises(UsageError, match="no such file"):
        build_pipeline(tmp_path, stage="work", pipeline=None, inputs=(tmp_path / "nope",))


def test_worktree_in_a_pipeline_or_in_one_of_its_stages_asks_for_one(tmp_path: Path) -> None:
    path = setup_project(tmp_path, "worktree: true\n" + NODE)
    asked = load_pipeline(path, project=tmp_path)
    assert (asked.worktree, asked.wants_worktree) == (True, True)
    plain = load_pipeline(setup_project(tmp_path, NODE), project=tmp_path)
    assert (plain.worktree, plain.wants_worktree) == (False, False)
    stage_yaml = tmp_path / ".looprunner" / "stages" / "work" / "stage.yaml"
    stage_yaml.write_text(stage_yaml.read_text() + "worktree: true\n", encoding="utf-8")
    by_stage = load_pipeline(path.with_name("p.yaml"), project=tmp_path)
    assert (by_stage.worktree, by_stage.wants_worktree) == (False, True)
