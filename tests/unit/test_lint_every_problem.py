"""``lint`` reports every problem of a file at once, each at its line; ``start`` names each."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from looprunner.definitions import catalog, load_pipeline
from looprunner.definitions.lint import lint
from looprunner.errors import ConfigError, ConfigProblems
from looprunner.plugins.manager import registries
from tests.conftest import REPO

CORPUS = (REPO.parent / "shared" / "corpus" / "loop-agents").resolve()  # lint names real paths
needs_corpus = pytest.mark.skipif(
    not (CORPUS / "scripts").is_dir(), reason=f"loop-agents corpus not found at {CORPUS}"
)

Cli = Callable[..., subprocess.CompletedProcess[str]]

STAGE = "provider: mock\ntermination:\n  type: fixed\n  iterations: 1\n"
#: two unknown stages, a bad key and a bad value in nodes that otherwise load
PIPELINE = """\
nodes:
  - id: one
    stage: missing-one
  - id: two
    stage: work
    colour: red
    runs: 0
  - id: three
    stage: missing-two
    inputs:
      from: one
"""


def write_project(project: Path) -> Path:
    folder = project / "scripts" / "stages" / "work"
    folder.mkdir(parents=True)
    (folder / "stage.yaml").write_text(STAGE, encoding="utf-8")
    (folder / "prompt.md").write_text("work ${STATUS}\n", encoding="utf-8")
    path = project / "scripts" / "pipelines" / "p.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(PIPELINE, encoding="utf-8")
    return path


EXPECTED = [
    ("LR010", 3, "unknown stage 'missing-one'"),
    ("LR002", 6, "unknown key 'colour'"),
    ("LR002", 7, "must be at least 1, got 0"),
    ("LR010", 9, "unknown stage 'missing-two'"),
]


def test_lint_reports_every_problem_of_a_pipeline_file(project: Path) -> None:
    path = write_project(project)
    report = lint(path, project=project, registries=registries())
    found = [(f.code, f.line, f.message) for f in report.findings]
    assert [(code, line) for code, line, _ in found] == [(c, n) for c, n, _ in EXPECTED]
    for (_, _, message), (_, _, words) in zip(found, EXPECTED, strict=True):
        assert words in message
    assert all(f.path == str(path) and f.severity == "error" for f in report.findings)
    assert report.errors == 4


def test_loading_raises_every_problem_one_line_each(project: Path) -> None:
    path = write_project(project)
    with pytest.raises(ConfigProblems) as info:
        load_pipeline("p", project=project)
    lines = str(info.value).splitlines()
    assert len(lines) == len(EXPECTED) == len(info.value.problems)
    for line, (_, number, words) in zip(lines, EXPECTED, strict=True):
        assert line.startswith(f"{path}:{number}:")
        assert words in line
    assert isinstance(info.value, ConfigError), "still caught as one ConfigError"
    assert (info.value.path, info.value.line) == (path, 3), "located at the first problem"


def test_start_names_every_problem_one_line_each_and_writes_nothing(
    project: Path, cli: Cli
) -> None:
    write_project(project)
    result = cli("start", "s", "--pipeline", "p")
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == len(EXPECTED), result.stderr
    assert all(line.startswith("looprunner: error: ") for line in lines)
    for line, (_, number, words) in zip(lines, EXPECTED, strict=True):
        assert f"p.yaml:{number}:" in line and words in line
    assert not (project / ".claude").exists()
    as_json = cli("--json", "start", "s", "--pipeline", "p")
    assert as_json.returncode == 2
    error = json.loads(as_json.stdout)["error"]
    assert error["type"] == "config"
    assert len(error["message"].splitlines()) == len(EXPECTED)


def test_a_stage_file_reports_every_bad_key(project: Path) -> None:
    folder = project / "scripts" / "stages" / "s"
    folder.mkdir(parents=True)
    (folder / "stage.yaml").write_text(
        "provdr: mock\ncolour: red\noutput_parse: x\ndelay: soon\ntermination:\n  max: zero\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        catalog.load_stage("s", project=project)
    assert sorted((p.line or 0, p.code) for p in info.value.problems) == [
        (0, "LR012"),  # no prompt.md: the file, not a line
        (1, "LR002"),
        (2, "LR002"),
        (3, "LR040"),
        (4, "LR002"),
        (6, "LR002"),
    ]
    report = lint(folder, project=project, registries=registries())
    assert report.errors == 6


def test_a_node_reports_every_unknown_key_of_its_own(project: Path) -> None:
    path = write_project(project)
    path.write_text(
        "nodes:\n  - id: a\n    stage: work\n    colour: red\n    size: 3\n"
        "    inputs:\n      form: x\n      sort: y\n",
        encoding="utf-8",
    )
    report = lint(path, project=project, registries=registries())
    assert [(f.line, f.message.split(":")[0]) for f in report.findings] == [
        (4, "nodes[0].colour"),
        (5, "nodes[0].size"),
        (7, "nodes[0].inputs.form"),
        (8, "nodes[0].inputs.sort"),
    ]


def test_a_problem_shared_by_two_nodes_is_reported_once(project: Path) -> None:
    path = write_project(project)
    (project / "scripts" / "stages" / "work" / "stage.yaml").write_text(
        STAGE + "colour: red\n", encoding="utf-8"
    )
    path.write_text(
        "nodes:\n  - id: a\n    stage: work\n  - id: b\n    stage: work\n    size: 3\n",
        encoding="utf-8",
    )
    report = lint(path, project=project, registries=registries())
    stage_yaml = str(project / "scripts" / "stages" / "work" / "stage.yaml")
    assert [(f.path, f.line) for f in report.findings] == [(stage_yaml, 5), (str(path), 6)]


@needs_corpus
def test_lint_of_plan_to_tasks_reports_its_missing_stage() -> None:
    path = CORPUS / "scripts" / "pipelines" / "plan-to-tasks.yaml"
    report = lint(path, project=CORPUS, registries=registries())
    [missing] = report.findings
    assert missing.code == "LR010"
    assert "unknown stage 'robot-mode'" in missing.message
    assert (missing.path, missing.line) == (str(path), 96)


@needs_corpus
def test_lint_of_the_corpus_reports_every_missing_stage_at_once() -> None:
    report = lint(CORPUS, project=CORPUS, registries=registries())
    pipelines = CORPUS / "scripts" / "pipelines"
    errors = [(f.code, f.path, f.line) for f in report.findings if f.severity == "error"]
    assert errors == [
        ("LR010", str(pipelines / "plan-to-tasks.yaml"), 96),
        ("LR010", str(pipelines / "queue-provider-tdd.yaml"), 19),
        ("LR010", str(pipelines / "queue-provider-tdd.yaml"), 32),
    ]
    assert [f.code for f in report.findings if f.severity == "warning"] == ["LR011"]


@needs_corpus
def test_start_of_queue_provider_tdd_names_both_missing_stages(project: Path, cli: Cli) -> None:
    import shutil

    shutil.copytree(CORPUS / "scripts", project / "scripts")
    result = cli("start", "tdd", "--pipeline", "queue-provider-tdd")
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 2, result.stderr
    assert "queue-provider-tdd.yaml:19:" in lines[0]
    assert "unknown stage 'tdd-plan-refine'" in lines[0]
    assert "queue-provider-tdd.yaml:32:" in lines[1]
    assert "unknown stage 'tdd-create-beads'" in lines[1]
    assert not (project / ".claude").exists()


def test_lint_names_each_backend_option_that_is_not_there_at_its_line(project: Path) -> None:
    path = write_project(project)
    path.write_text(
        "backends:\n"
        "  tmux:\n"
        "    adress: http://x\n"
        "  k8s:\n"
        "    namespace: loops\n"
        "nodes:\n"
        "  - id: two\n"
        "    stage: work\n",
        encoding="utf-8",
    )
    report = lint(path, project=project, registries=registries())
    found = [(f.code, f.severity, f.line, f.message) for f in report.findings]
    assert found == [
        (
            "LR036",
            "error",
            3,
            "backends.tmux.adress: backend 'tmux' has no option 'adress' (its options: none)",
        ),
        (
            "LR037",
            "warning",
            4,
            "backends.k8s: no backend 'k8s' is installed here, so its options are not "
            f"checked (installed: {', '.join(registries().backends.names())})",
        ),
    ]
