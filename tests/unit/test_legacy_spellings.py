"""loop-agents spellings: each read as today's key with a located warning, or refused saying why."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import NamedTuple

import pytest

from looprunner.definitions import catalog, load_pipeline
from looprunner.definitions.lint import lint
from looprunner.errors import ConfigError, LegacyPipelineWarning
from looprunner.plugins.manager import registries


def write_stage(folder: Path, yaml_text: str, prompt: str = "Do it. ${STATUS}\n") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "stage.yaml").write_text(yaml_text, encoding="utf-8")
    (folder / "prompt.md").write_text(prompt, encoding="utf-8")
    return folder / "stage.yaml"


def load_warned(name: str, project: Path) -> tuple[object, list[LegacyPipelineWarning]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stage = catalog.load_stage(name, project=project)
    found = [w.message for w in caught if isinstance(w.message, LegacyPipelineWarning)]
    assert len(found) == len(caught), [str(w.message) for w in caught]
    return stage, found


# --------------------------------------------------------------------------- stage files


class MappedStageCase(NamedTuple):
    test_id: str
    yaml: str
    type: str
    min_iterations: int | None
    #: (line, words the warning must contain), one per warning
    warnings: list[tuple[int, str]]


MAPPED_STAGES = [
    MappedStageCase(
        "v2-completion-plateau",
        "name: s\ncompletion: plateau\n",
        "judgment",
        None,
        [(2, "'completion: plateau' is deprecated; write 'termination: {type: judgment}'")],
    ),
    MappedStageCase(
        "v2-completion-fixed-n",
        "completion: fixed-n\n",
        "fixed",
        None,
        [(1, "write 'termination: {type: fixed}'")],
    ),
    MappedStageCase(
        "v2-completion-beads-empty",
        "completion: beads-empty\n",
        "beads",
        None,
        [(1, "write 'termination: {type: beads}'")],
    ),
    MappedStageCase(
        "v2-top-level-min-iterations",
        "completion: plateau\nmin_iterations: 3\n",
        "judgment",
        3,
        [
            (1, "write 'termination: {type: judgment}'"),
            (2, "write it under 'termination:' (termination.min_iterations)"),
        ],
    ),
    MappedStageCase(
        "termination-type-plateau",
        "termination:\n  type: plateau\n  consensus: 2\n",
        "judgment",
        None,
        [(2, "termination type 'plateau' is deprecated; write 'type: judgment'")],
    ),
    MappedStageCase(
        "termination-type-fixed-n",
        "termination:\n  type: fixed-n\n  iterations: 2\n",
        "fixed",
        None,
        [(2, "write 'type: fixed'")],
    ),
    MappedStageCase(
        "check-before",
        "check_before: true\ntermination:\n  type: fixed\n",
        "fixed",
        None,
        [(1, "'check_before' is deprecated and has no effect")],
    ),
]


@pytest.mark.parametrize("case", MAPPED_STAGES, ids=[c.test_id for c in MAPPED_STAGES])
def test_legacy_stage_keys_are_mapped_with_a_located_warning(
    project: Path, case: MappedStageCase
) -> None:
    stage_yaml = write_stage(project / "scripts" / "stages" / "s", case.yaml)
    stage, found = load_warned("s", project)
    assert stage.termination.type == case.type  # type: ignore[attr-defined]
    assert stage.termination.min_iterations == case.min_iterations  # type: ignore[attr-defined]
    assert [(w.path, w.line) for w in found] == [(stage_yaml, line) for line, _ in case.warnings]
    for warning, (line, words) in zip(found, case.warnings, strict=True):
        assert words in str(warning)
        assert str(warning).startswith(f"{stage_yaml}:{line}:")


class RefusedCase(NamedTuple):
    test_id: str
    yaml: str
    line: int
    words: str


REFUSED_STAGES = [
    RefusedCase(
        "output-parse",
        "name: s\noutput_parse: 'plateau:PLATEAU'\n",
        2,
        "'output_parse' is not read: looprunner takes the agent's decision from status.json",
    ),
    RefusedCase(
        "guardrails",
        "guardrails:\n  max_runtime_seconds: 60\n",
        1,
        "'guardrails' is not read: loop-agents only showed it to the agent",
    ),
    RefusedCase(
        "max-runtime-seconds",
        "max_runtime_seconds: 60\n",
        1,
        "or bound each iteration with 'timeout:' (seconds)",
    ),
    RefusedCase(
        "stage-hooks",
        "hooks:\n  on_session_start: ./notify.sh\n",
        1,
        "'hooks' is not run: shell-command hooks were a loop-agents plan",
    ),
    RefusedCase(
        "v2-items",
        "items: [a, b]\n",
        1,
        "'items' is not read: loop-agents v2 only exported it to the agent as $ITEMS",
    ),
    RefusedCase(
        "unknown-completion",
        "completion: forever\n",
        1,
        "'completion: forever' is not a loop-agents completion",
    ),
    RefusedCase(
        "completion-beside-termination",
        "termination:\n  type: fixed\ncompletion: plateau\n",
        3,
        "give 'termination:' or the legacy 'completion:', not both",
    ),
    RefusedCase(
        "min-iterations-twice",
        "min_iterations: 2\ntermination:\n  type: judgment\n  min_iterations: 3\n",
        1,
        "'min_iterations' is given twice",
    ),
]


@pytest.mark.parametrize("case", REFUSED_STAGES, ids=[c.test_id for c in REFUSED_STAGES])
def test_legacy_stage_keys_looprunner_cannot_honour_are_refused_at_their_line(
    project: Path, case: RefusedCase
) -> None:
    stage_yaml = write_stage(project / "scripts" / "stages" / "s", case.yaml)
    with pytest.raises(ConfigError) as info:
        catalog.load_stage("s", project=project)
    [problem] = info.value.problems
    assert problem.code == "LR040"
    assert (problem.path, problem.line) == (stage_yaml, case.line)
    assert case.words in str(info.value)
    assert str(info.value).startswith(f"{stage_yaml}:{case.line}:")


# --------------------------------------------------------------------------- pipeline files


def setup(project: Path, pipeline_yaml: str) -> Path:
    write_stage(
        project / "scripts" / "stages" / "work",
        "provider: mock\noutput_path: out/${SESSION}.md\ntermination:\n  type: fixed\n"
        "  iterations: 2\n",
    )
    path = project / "scripts" / "pipelines" / "p.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(pipeline_yaml, encoding="utf-8")
    return path


def load_pipeline_warned(project: Path) -> tuple[object, list[LegacyPipelineWarning]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pipeline = load_pipeline("p", project=project)
    found = [w.message for w in caught if isinstance(w.message, LegacyPipelineWarning)]
    assert len(found) == len(caught), [str(w.message) for w in caught]
    return pipeline, found


NODE = "nodes:\n  - id: a\n    stage: work\n"

REFUSED_IN_PIPELINES = [
    RefusedCase(
        "node-prompt-path",
        NODE + "    prompt_path: prompts/x.md\n",
        4,
        "'prompt_path' is not a pipeline key",
    ),
    RefusedCase(
        "node-perspectives",
        NODE + "    perspectives: [security, speed]\n",
        4,
        "'perspectives' is not read: loop-agents v3 dropped per-run perspectives",
    ),
    RefusedCase(
        "node-failure-mode",
        NODE + "    failure_mode: fail_slow\n",
        4,
        "'failure_mode' is not read: a parallel block always fails",
    ),
    RefusedCase(
        "block-failure-mode",
        "nodes:\n  - id: a\n    parallel:\n      providers: [claude, codex]\n"
        "      failure_mode: fail_slow\n      stages:\n        - id: s\n          stage: work\n",
        5,
        "'failure_mode' is not read: a parallel block always fails",
    ),
    RefusedCase(
        "node-nested-pipeline",
        "nodes:\n  - id: a\n    pipeline: other.yaml\n",
        3,
        "'pipeline' (a pipeline inside a pipeline) is not run",
    ),
    RefusedCase(
        "pipeline-hooks",
        "hooks:\n  on_session_complete: ./done.sh\n" + NODE,
        1,
        "'hooks' is not run",
    ),
    RefusedCase(
        "node-unknown-completion",
        NODE + "    completion: whenever\n",
        4,
        "'completion: whenever' is not a loop-agents completion",
    ),
]


@pytest.mark.parametrize(
    "case", REFUSED_IN_PIPELINES, ids=[c.test_id for c in REFUSED_IN_PIPELINES]
)
def test_legacy_pipeline_keys_looprunner_cannot_honour_are_refused_at_their_line(
    project: Path, case: RefusedCase
) -> None:
    path = setup(project, case.yaml)
    with pytest.raises(ConfigError) as info:
        load_pipeline("p", project=project)
    # a nested pipeline's node also has nothing to run: that is said too
    [problem] = [p for p in info.value.problems if p.code == "LR040"]
    assert (problem.path, problem.line) == (path, case.line)
    assert case.words in str(info.value)


class MappedNodeCase(NamedTuple):
    test_id: str
    yaml: str
    warnings: list[tuple[int, str]]


MAPPED_NODES = [
    MappedNodeCase(
        "select-history",
        NODE + "  - id: b\n    stage: work\n    inputs:\n      from: a\n      select: history\n",
        [(8, "'select: history' is deprecated; write 'select: all'")],
    ),
    MappedNodeCase(
        "node-completion",
        NODE + "    completion: plateau\n",
        [(4, "write 'termination: {type: judgment}'")],
    ),
    MappedNodeCase(
        "node-termination-type-beads-empty",
        NODE + "    termination:\n      type: beads-empty\n",
        [(5, "termination type 'beads-empty' is deprecated; write 'type: beads'")],
    ),
    MappedNodeCase(
        "pipeline-tmux",
        "tmux: false\n" + NODE,
        [(1, "'tmux:' is deprecated and ignored")],
    ),
    MappedNodeCase(
        "legacy-stages-and-loop",
        "stages:\n  - id: a\n    loop: work\n",
        [(1, "'stages:' is deprecated, use 'nodes:'"), (3, "uses 'loop:', which is deprecated")],
    ),
]


@pytest.mark.parametrize("case", MAPPED_NODES, ids=[c.test_id for c in MAPPED_NODES])
def test_legacy_pipeline_spellings_are_read_with_a_located_warning(
    project: Path, case: MappedNodeCase
) -> None:
    path = setup(project, case.yaml)
    _, found = load_pipeline_warned(project)
    assert sorted((w.path, w.line) for w in found) == sorted(
        (path, line) for line, _ in case.warnings
    )
    for warning in found:
        words = dict(case.warnings)[warning.line]  # type: ignore[index]
        assert words in str(warning)


def test_the_mapped_spellings_change_what_runs(project: Path) -> None:
    setup(
        project,
        "tmux: false\n"
        + NODE
        + "    completion: plateau\n"
        + "  - id: b\n    stage: work\n    output_path: docs/b.md\n"
        + "    inputs:\n      from: a\n      select: history\n",
    )
    pipeline, _ = load_pipeline_warned(project)
    a, b = pipeline.nodes  # type: ignore[attr-defined]
    assert a.stage.termination.type == "judgment"
    assert a.stage.termination.iterations == 2, "the stage's own keys are kept"
    assert a.stage.output_path == "out/${SESSION}.md"
    assert b.stage.output_path == "docs/b.md", "a node's output_path replaces the stage's"
    assert b.inputs.select == "all"


def test_lint_reports_legacy_spellings_as_warnings_and_refusals_as_errors(project: Path) -> None:
    path = setup(project, "tmux: false\n" + NODE + "    perspectives: [a, b]\n")
    report = lint(path, project=project, registries=registries())
    found = sorted((f.code, f.severity, f.line) for f in report.findings)
    assert found == [("LR040", "error", 5), ("LR041", "warning", 1)]
    assert all(f.path == str(path) for f in report.findings)


# --------------------------------------------------------------------------- prompts


class PromptCase(NamedTuple):
    test_id: str
    prompt_key: str | None
    files: list[str]
    chosen: str


PROMPTS = [
    PromptCase("name-without-md", "task", ["task.md"], "task.md"),
    PromptCase("name-in-prompts-folder", "task", ["prompts/task.md"], "prompts/task.md"),
    PromptCase("beside-wins-over-prompts", "task", ["task.md", "prompts/task.md"], "task.md"),
    PromptCase("path-without-md", "prompts/task", ["prompts/task.md"], "prompts/task.md"),
    PromptCase("dot-slash-without-md", "./prompts/task", ["prompts/task.md"], "prompts/task.md"),
    PromptCase("prompts-prompt-md-fallback", None, ["prompts/prompt.md"], "prompts/prompt.md"),
]


@pytest.mark.parametrize("case", PROMPTS, ids=[c.test_id for c in PROMPTS])
def test_prompt_files_are_found_as_loop_agents_found_them(project: Path, case: PromptCase) -> None:
    folder = project / "scripts" / "stages" / "s"
    folder.mkdir(parents=True)
    key = f"prompt: {case.prompt_key}\n" if case.prompt_key else ""
    (folder / "stage.yaml").write_text(f"name: s\n{key}", encoding="utf-8")
    for name in case.files:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(f"the prompt in {name}", encoding="utf-8")
    stage = catalog.load_stage("s", project=project)
    assert stage.prompt == f"the prompt in {case.chosen}"


def test_a_missing_named_prompt_names_every_file_tried(project: Path) -> None:
    folder = project / "scripts" / "stages" / "s"
    folder.mkdir(parents=True)
    (folder / "stage.yaml").write_text("name: s\nprompt: task\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        catalog.load_stage("s", project=project)
    assert info.value.code == "LR012"
    assert info.value.line == 2
    message = str(info.value)
    for tried in ("s/task", "s/task.md", "s/prompts/task", "s/prompts/task.md"):
        assert re.search(rf"{re.escape(tried)}\b", message), (tried, message)
