"""loop-agents' options, providers and variables, each mapped onto what looprunner does."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar, NamedTuple

import pytest

from looprunner.builtin.providers import ClaudeProvider, CodexProvider, codex_model
from looprunner.cli import legacy_env
from looprunner.definitions import build_pipeline
from looprunner.definitions.lint import lint
from looprunner.engine.agents import agent_variables
from looprunner.engine.context import build_context
from looprunner.engine.judge import printed_verdict
from looprunner.errors import ConfigError, PluginError, UsageError
from looprunner.models import JudgeSpec, Node, NodeInputs, Pipeline, Stage, Termination
from looprunner.names import ProjectPaths
from looprunner.plugins.manager import registries
from looprunner.plugins.registry import Registry


def write_stage(project: Path, name: str, yaml_text: str) -> None:
    folder = project / "scripts" / "stages" / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "stage.yaml").write_text(yaml_text, encoding="utf-8")
    (folder / "prompt.md").write_text(f"{name} ${{STATUS}}\n", encoding="utf-8")


# --------------------------------------------------------------------------- providers


class AliasCase(NamedTuple):
    test_id: str
    alias: str
    provider: type


ALIASES = [
    AliasCase("claude-code", "claude-code", ClaudeProvider),
    AliasCase("anthropic", "anthropic", ClaudeProvider),
    AliasCase("openai", "openai", CodexProvider),
]


@pytest.mark.parametrize("case", ALIASES, ids=[c.test_id for c in ALIASES])
def test_loop_agents_provider_aliases_name_the_provider(project: Path, case: AliasCase) -> None:
    providers = registries().providers
    assert providers.get(case.alias) is case.provider
    assert case.alias in providers
    assert case.alias not in providers.names(), "aliases are not listed as providers"
    write_stage(project, "s", f"provider: {case.alias}\n")
    report = lint(project / "scripts" / "stages" / "s", project=project, registries=registries())
    assert report.findings == ()


def test_an_alias_claimed_twice_names_both_plugins() -> None:
    class One:
        name: ClassVar[str] = "one"
        aliases: ClassVar[tuple[str, ...]] = ("uno",)

    class Two:
        name: ClassVar[str] = "two"
        aliases: ClassVar[tuple[str, ...]] = ("uno",)

    class Three:
        name: ClassVar[str] = "uno"

    registry: Registry[object] = Registry("provider")
    registry.current_plugin = "first"
    registry.add(One)
    registry.current_plugin = "second"
    with pytest.raises(PluginError, match="'uno' is registered twice: by first and by second"):
        registry.add(Two)
    with pytest.raises(PluginError, match="'uno' is registered twice: by first and by second"):
        registry.add(Three)
    registry.add(One)  # the same class again is no conflict


class EffortCase(NamedTuple):
    test_id: str
    model: str | None
    split: tuple[str | None, str] | None  # None: refused
    words: str = ""


EFFORTS = [
    EffortCase("no-model", None, (None, "high")),
    EffortCase("model-default-effort", "gpt-5.2-codex", ("gpt-5.2-codex", "high")),
    EffortCase("xhigh", "gpt-5.2-codex:xhigh", ("gpt-5.2-codex", "xhigh")),
    EffortCase("minimal", "gpt-5.1-codex-mini:minimal", ("gpt-5.1-codex-mini", "minimal")),
    EffortCase("effort-only", ":low", (None, "low")),
    EffortCase("new-model-passes", "gpt-6-codex", ("gpt-6-codex", "high")),
    EffortCase("bad-effort", "gpt-5.2-codex:extreme", None, "reasoning effort 'extreme'"),
    EffortCase("empty-effort", "gpt-5.2-codex:", None, "reasoning effort ''"),
    EffortCase("option-as-model", "--config=x", None, "'--config=x' is not a model name"),
    EffortCase("spaces", "gpt 5", None, "'gpt 5' is not a model name"),
]


@pytest.mark.parametrize("case", EFFORTS, ids=[c.test_id for c in EFFORTS])
def test_codex_models_and_efforts_are_checked_as_loop_agents_did(case: EffortCase) -> None:
    if case.split is not None:
        assert codex_model(case.model) == case.split
        return
    with pytest.raises(ConfigError, match=case.words):
        codex_model(case.model)


def test_lint_reports_a_codex_effort_it_cannot_take_at_the_stage_file(project: Path) -> None:
    write_stage(project, "s", "provider: codex\nmodel: gpt-5.2-codex:extreme\n")
    folder = project / "scripts" / "stages" / "s"
    report = lint(folder, project=project, registries=registries())
    [finding] = report.findings
    assert (finding.code, finding.path) == ("LR035", str(folder / "stage.yaml"))
    assert "minimal, low, medium, high, xhigh" in finding.message


def test_start_refuses_a_codex_effort_at_its_line_and_writes_nothing(
    project: Path, cli: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    write_stage(project, "s", "provider: codex\nmodel: gpt-5.2-codex:extreme\n")
    result = cli("start", "bad", "--stage", "s")
    assert result.returncode == 2
    stage_yaml = project / "scripts" / "stages" / "s" / "stage.yaml"
    assert f"{stage_yaml}:2:8: model: codex reasoning effort 'extreme'" in result.stderr
    assert not (project / ".claude").exists()


# --------------------------------------------------------------------------- --runs


def test_runs_repeats_every_node_and_keeps_inputs_within_a_run(project: Path) -> None:
    write_stage(project, "work", "provider: mock\n")
    pipeline_file = project / "scripts" / "pipelines" / "p.yaml"
    pipeline_file.parent.mkdir(parents=True)
    pipeline_file.write_text(
        "nodes:\n  - id: a\n    stage: work\n  - id: b\n    stage: work\n"
        "    inputs:\n      from: a\n",
        encoding="utf-8",
    )
    resolved = build_pipeline(project, stage=None, pipeline="p", runs=3)
    assert [n.id for n in resolved.nodes] == ["a", "b", "a-run2", "b-run2", "a-run3", "b-run3"]
    assert [n.inputs.from_nodes for n in resolved.nodes] == [
        (),
        ("a",),
        (),
        ("a-run2",),
        (),
        ("a-run3",),
    ]
    assert build_pipeline(project, stage=None, pipeline="p", runs=1).nodes == resolved.nodes[:2]


def test_runs_keeps_each_run_reading_its_own_parallel_blocks(project: Path) -> None:
    write_stage(project, "work", "provider: mock\n")
    pipeline_file = project / "scripts" / "pipelines" / "p.yaml"
    pipeline_file.parent.mkdir(parents=True)
    pipeline_file.write_text(
        "nodes:\n"
        "  - id: ideas\n    parallel:\n      providers: [claude, codex]\n"
        "      stages:\n        - id: gen\n          stage: work\n"
        "  - id: rate\n    parallel:\n      providers:\n"
        "        - name: claude\n          inputs:\n            from_parallel:\n"
        "              stage: gen\n              block: ideas\n              providers: [codex]\n"
        "        - codex\n"
        "      stages:\n        - id: score\n          stage: work\n"
        "  - id: merge\n    stage: work\n    inputs:\n"
        "      from_parallel:\n        stage: score\n        block: rate\n",
        encoding="utf-8",
    )
    resolved = build_pipeline(project, stage=None, pipeline="p", runs=2)
    by_id = {n.id: n for n in resolved.nodes}
    assert [n.id for n in resolved.nodes] == [
        "ideas",
        "rate",
        "merge",
        "ideas-run2",
        "rate-run2",
        "merge-run2",
    ]
    assert [s.block for s in by_id["merge"].inputs.from_parallel] == ["rate"]
    assert [s.block for s in by_id["merge-run2"].inputs.from_parallel] == ["rate-run2"]
    claude = by_id["rate-run2"].stage.options["providers"][0]
    assert [s["block"] for s in claude["from_parallel"]] == ["ideas-run2"]
    first = by_id["rate"].stage.options["providers"][0]
    assert [s["block"] for s in first["from_parallel"]] == ["ideas"]


def test_runs_is_refused_where_it_cannot_apply(project: Path) -> None:
    write_stage(project, "work", "provider: mock\n")
    with pytest.raises(UsageError, match="--runs repeats a pipeline"):
        build_pipeline(project, stage="work", pipeline=None, runs=2)
    node = Node(id="x" * 62, stage=Stage(name="s"))
    with pytest.raises(ConfigError, match="longer than 64 characters"):
        Pipeline(name="p", nodes=(node,)).repeated(2)
    with pytest.raises(ConfigError, match="at least 1"):
        Pipeline(name="p", nodes=(node,)).repeated(0)


# --------------------------------------------------------------------------- PIPELINE_CLI_*


def test_loop_agents_variables_fill_the_options_left_unset(
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = {
        "CLAUDE_PIPELINE_PROVIDER": "claude",
        "PIPELINE_CLI_PROVIDER": "codex",
        "CLAUDE_PIPELINE_MODEL": "o3",
        "PIPELINE_CLI_CONTEXT": "focus on auth",
        "PIPELINE_CLI_INPUTS": json.dumps(["plan.md", "notes.md"]),
    }
    given = legacy_env.apply(legacy_env.Overrides(None, None, None, ()), env)
    assert given == legacy_env.Overrides(
        "codex", "o3", "focus on auth", (Path("plan.md"), Path("notes.md"))
    ), "PIPELINE_CLI_* wins over CLAUDE_PIPELINE_*, as in loop-agents"
    warned = capsys.readouterr().err.splitlines()
    assert warned == [
        "looprunner: warning: PIPELINE_CLI_PROVIDER is read as --provider; pass --provider instead",
        "looprunner: warning: CLAUDE_PIPELINE_MODEL is read as --model; pass --model instead",
        "looprunner: warning: PIPELINE_CLI_CONTEXT is read as --context; pass --context instead",
        "looprunner: warning: PIPELINE_CLI_INPUTS is read as --input; pass --input FILE instead",
    ]
    options = legacy_env.Overrides("mock", "m", "c", (Path("x.md"),))
    assert legacy_env.apply(options, env) == options, "an option given wins over the variable"
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("raw", ["plan.md", '{"a": 1}', "[1, 2]"])
def test_a_malformed_inputs_variable_is_refused(raw: str) -> None:
    with pytest.raises(UsageError, match="PIPELINE_CLI_INPUTS must be a JSON list"):
        legacy_env.apply(legacy_env.Overrides(None, None, None, ()), {"PIPELINE_CLI_INPUTS": raw})


# --------------------------------------------------------------------------- judges


class VerdictCase(NamedTuple):
    test_id: str
    output: str
    decision: str | None


VERDICTS = [
    VerdictCase("raw", '{"stop": true, "reason": "done", "confidence": 0.9}', "stop"),
    VerdictCase("continue", '{"stop": false, "reason": "gaps"}', "continue"),
    VerdictCase("fenced", 'Here:\n```json\n{"stop": true, "reason": "r"}\n```\n', "stop"),
    VerdictCase("chatter-around", 'I think {"stop": false, "reason": "more"} is right', "continue"),
    VerdictCase("no-json", "I could not decide.", None),
    VerdictCase("stop-not-a-bool", '{"stop": "yes"}', None),
]


@pytest.mark.parametrize("case", VERDICTS, ids=[c.test_id for c in VERDICTS])
def test_a_printed_loop_agents_verdict_becomes_a_status(case: VerdictCase) -> None:
    verdict = printed_verdict(case.output)
    assert (verdict or {}).get("decision") == case.decision
    if case.test_id == "raw":
        assert verdict == {"decision": "stop", "reason": "done", "summary": "confidence 0.9"}


def judge_project(project: Path) -> None:
    write_stage(project, "plan", "termination:\n  type: judgment\n  consensus: 1\n")
    write_stage(
        project,
        "own",
        "termination:\n  type: judgment\n  judge:\n    provider: codex\n    prompt: mine\n",
    )
    write_stage(project, "work", "termination:\n  type: fixed\n  iterations: 2\n")
    pipeline_file = project / "scripts" / "pipelines" / "p.yaml"
    pipeline_file.parent.mkdir(parents=True)
    pipeline_file.write_text(
        "nodes:\n  - id: plan\n    stage: plan\n  - id: own\n    stage: own\n"
        "  - id: work\n    stage: work\n",
        encoding="utf-8",
    )


def test_the_judge_switch_gives_judgment_stages_the_projects_judge(project: Path) -> None:
    judge_project(project)
    prompt = project / "scripts" / "prompts" / "judge.md"
    prompt.parent.mkdir(parents=True)
    prompt.write_text("Judge ${STAGE_NAME}: ${RESULT_JSON}\n", encoding="utf-8")
    plain = build_pipeline(project, stage=None, pipeline="p")
    assert [n.stage.termination.judge for n in plain.nodes] == [
        None,
        JudgeSpec(provider="codex", prompt="mine"),
        None,
    ], "without the switch the workers' consensus decides, as before"
    judged = build_pipeline(project, stage=None, pipeline="p", judge=True)
    plan, own, work = (n.stage.termination for n in judged.nodes)
    assert plan.judge == JudgeSpec(prompt=prompt.read_text(encoding="utf-8"))
    assert own.judge == JudgeSpec(provider="codex", prompt="mine"), "its own judge is kept"
    assert work == plain.nodes[2].stage.termination, "a fixed stage takes no judge"


def test_without_a_project_judge_prompt_the_switch_uses_looprunners(project: Path) -> None:
    judge_project(project)
    judged = build_pipeline(project, stage=None, pipeline="p", judge=True)
    assert judged.nodes[0].stage.termination.judge == JudgeSpec()


# --------------------------------------------------------------------------- what agents get


def test_agents_get_the_variables_loop_agents_exported() -> None:
    stage = Stage(name="ralph")
    loop = Pipeline.loop(stage)
    assert agent_variables(loop, "auth") == {
        "CLAUDE_PIPELINE_AGENT": "1",
        "CLAUDE_PIPELINE_SESSION": "auth",
        "CLAUDE_PIPELINE_TYPE": "ralph",
    }
    pipeline = Pipeline(name="refine", nodes=(Node(id="a", stage=stage),))
    assert agent_variables(pipeline, "auth")["CLAUDE_PIPELINE_TYPE"] == "refine"


def test_context_json_has_what_loop_agents_prompts_read(project: Path) -> None:
    paths = ProjectPaths.of(project).session("s")
    pipeline = Pipeline(
        name="p",
        nodes=(
            Node(id="a", stage=Stage(name="a")),
            Node(
                id="b", stage=Stage(name="b", termination=Termination(max=7)), inputs=NodeInputs()
            ),
        ),
    )
    document = build_context(
        paths=paths,
        pipeline=pipeline,
        index=1,
        iteration=1,
        cap=7,
        previous=None,
        output_path=paths.iteration_dir(1, "b", 1) / "output.md",
    )
    assert document["limits"] == {"max_iterations": 7, "remaining_seconds": -1}
    assert document["paths"]["session_dir"] == str(paths.run_dir)
    assert document["inputs"]["from_parallel"] == {}, "present, empty without blocks"
    assert set(document["inputs"]) == {
        "from_initial",
        "from_stage",
        "from_previous_iterations",
        "from_parallel",
    }
