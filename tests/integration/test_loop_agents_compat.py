"""A loop-agents project runs as it is: its stages, its variables, its prompts' ``jq`` lines.

The corpus (``../shared/corpus/loop-agents``) is copied into a fresh project and run in
the foreground with the fake ``claude`` and ``codex`` on PATH, which record the
environment each agent got. Tests that need the corpus skip where it is absent.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from looprunner.names import ProjectPaths
from tests.conftest import REPO
from tests.integration.conftest import FakeAgents

CORPUS = REPO.parent / "shared" / "corpus" / "loop-agents"
needs_corpus = pytest.mark.skipif(
    not (CORPUS / "scripts").is_dir(), reason=f"loop-agents corpus not found at {CORPUS}"
)
needs_jq = pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed")

Cli = Callable[..., subprocess.CompletedProcess[str]]
#: a jq program in a prompt: ``jq -r '...' ${CTX}``
_JQ = re.compile(r"\bjq\s+(?:-[a-zA-Z]+\s+)*'([^']*)'")
#: reads ``.inputs.from_parallel.providers``, a shape loop-agents never wrote (it wrote a
#: list there), so this line of evaluate-ideas (a stage no pipeline uses) failed there too
NOT_PORTABLE = {".inputs.from_parallel.providers | to_entries[0].value.output"}


@pytest.fixture
def corpus_project(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    if not (CORPUS / "scripts").is_dir():
        pytest.skip(f"loop-agents corpus not found at {CORPUS}")
    shutil.copytree(CORPUS / "scripts", project / "scripts")
    monkeypatch.setenv("LOOPRUNNER_MAX_DELAY", "0")  # the corpus pauses between iterations
    return project


def status_of(cli: Cli, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(cli("--json", "status", name).stdout)
    return data


@needs_corpus
def test_a_corpus_stage_runs_with_loop_agents_variables_visible_to_its_agent(
    corpus_project: Path, cli: Cli, fake_agents: FakeAgents
) -> None:
    result = cli("start", "hunt", "--stage", "ralph", "-n", "2", "--foreground")
    assert result.returncode == 0, result.stderr
    assert status_of(cli, "hunt")["health"] == "complete"
    for iteration in (1, 2):
        env = fake_agents.call("claude", iteration)["env"]
        assert env["CLAUDE_PIPELINE_AGENT"] == "1", "loop-agents' stop-gate hook acts on it"
        assert env["CLAUDE_PIPELINE_SESSION"] == "hunt"
        assert env["CLAUDE_PIPELINE_TYPE"] == "ralph", "a loop: the stage it runs"
        assert env["LOOPRUNNER_ITERATION"] == str(iteration)


@needs_corpus
def test_a_corpus_pipeline_repeats_with_runs_and_names_itself_to_its_agents(
    corpus_project: Path, cli: Cli, fake_agents: FakeAgents
) -> None:
    result = cli("start", "twice", "--pipeline", "v3-refine", "--runs", "2", "--foreground")
    assert result.returncode == 0, result.stderr
    status = status_of(cli, "twice")
    assert status["health"] == "complete"
    assert [(s["id"], s["iterations_completed"]) for s in status["stages"]] == [
        ("refine", 1),
        ("refine-run2", 1),
    ]
    env = fake_agents.call("claude", 1)["env"]  # both runs' first iteration: the last kept
    assert env["LOOPRUNNER_STAGE"] == "refine-run2"
    assert env["CLAUDE_PIPELINE_TYPE"] == "v3-refine", "a pipeline: its name"
    assert env["CLAUDE_PIPELINE_SESSION"] == "twice"
    run = ProjectPaths.of(corpus_project).session("twice")
    context = json.loads((run.iteration_dir(1, "refine-run2", 1) / "context.json").read_text())
    assert context["inputs"]["from_stage"] == {
        "refine": [str(run.stage_dir(0, "refine") / "output.md")]
    }, "run 2 reads what run 1 left"


REPEATED_BLOCKS = """\
name: repeat-blocks
nodes:
  - id: analyze
    parallel:
      providers: [claude, codex]
      stages:
        - id: improve
          stage: improve-plan
          termination: {type: fixed, iterations: 1}
  - id: merge
    stage: synthesize-plans
    inputs:
      from_parallel:
        stage: improve
        block: analyze
"""


@needs_corpus
def test_runs_of_a_pipeline_with_a_block_read_their_own_runs_block(
    corpus_project: Path, cli: Cli, fake_agents: FakeAgents
) -> None:
    (corpus_project / "scripts" / "pipelines" / "repeat-blocks.yaml").write_text(REPEATED_BLOCKS)
    result = cli("start", "blocks", "--pipeline", "repeat-blocks", "--runs", "2", "--foreground")
    assert result.returncode == 0, result.stderr
    status = status_of(cli, "blocks")
    assert status["health"] == "complete"
    assert [s["id"] for s in status["stages"]] == ["analyze", "merge", "analyze-run2", "merge-run2"]
    run = ProjectPaths.of(corpus_project).session("blocks")
    context = json.loads((run.iteration_dir(3, "merge-run2", 1) / "context.json").read_text())
    block = run.block_dir(2, "analyze-run2")
    read = context["inputs"]["from_parallel"]
    assert sorted(read) == ["claude", "codex"]
    for files in read.values():
        assert files and all(Path(f).is_relative_to(block) for f in files), files
    for agent in ("claude", "codex"):
        env = fake_agents.call(agent, 1)["env"]
        assert env["CLAUDE_PIPELINE_TYPE"] == "repeat-blocks", "a block's agents too"
        assert env["CLAUDE_PIPELINE_SESSION"] == "blocks"


def corpus_jq_programs() -> list[str]:
    programs: set[str] = set()
    for prompt in sorted((CORPUS / "scripts" / "stages").rglob("*.md")):
        programs.update(_JQ.findall(prompt.read_text(encoding="utf-8")))
    return sorted(programs)


#: every path loop-agents' context.json had that its prompts (or SCHEMA.md) read
PATHS = [
    ".session",
    ".pipeline",
    ".stage.id",
    ".stage.index",
    ".iteration",
    ".paths.session_dir",
    ".paths.stage_dir",
    ".paths.progress",
    ".paths.output",
    ".paths.status",
    ".inputs.from_initial",
    ".inputs.from_stage",
    ".inputs.from_previous_iterations",
    ".inputs.from_parallel",
    ".limits.max_iterations",
    ".limits.remaining_seconds",
    ".commands",
]


@needs_corpus
@needs_jq
def test_every_jq_line_of_the_corpus_prompts_reads_a_real_context_json(
    corpus_project: Path, cli: Cli, fake_agents: FakeAgents
) -> None:
    result = cli("start", "ctx", "--pipeline", "v3-refine", "--runs", "2", "--foreground")
    assert result.returncode == 0, result.stderr
    run = ProjectPaths.of(corpus_project).session("ctx")
    context = run.iteration_dir(1, "refine-run2", 1) / "context.json"
    for path in PATHS:
        check = subprocess.run(
            ["jq", "-e", f"{path} != null", str(context)], capture_output=True, text=True
        )
        assert check.returncode == 0, f"{path} is null or missing: {check.stderr}"
    programs = corpus_jq_programs()
    assert len(programs) >= 10, "the corpus prompts read context.json with jq"
    assert set(programs) >= NOT_PORTABLE
    for program in sorted(set(programs) - NOT_PORTABLE):
        ran = subprocess.run(["jq", "-r", program, str(context)], capture_output=True, text=True)
        assert ran.returncode == 0, f"jq -r '{program}' failed: {ran.stderr}"
    files = subprocess.run(
        ["jq", "-r", ".inputs.from_stage | to_entries[] | .value[]", str(context)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert files and all(Path(f).is_file() for f in files), "the files it lists exist"


@needs_corpus
def test_loop_agents_override_variables_reach_the_run(
    corpus_project: Path, cli: Cli, fake_agents: FakeAgents
) -> None:
    result = cli(
        "start",
        "env",
        "--stage",
        "ralph",
        "-n",
        "1",
        "--foreground",
        env={"PIPELINE_CLI_PROVIDER": "openai", "CLAUDE_PIPELINE_MODEL": "gpt-5.2-codex"},
    )
    assert result.returncode == 0, result.stderr
    assert "PIPELINE_CLI_PROVIDER is read as --provider" in result.stderr
    assert "CLAUDE_PIPELINE_MODEL is read as --model" in result.stderr
    argv = fake_agents.call("codex", 1)["argv"]
    assert argv[argv.index("--model") + 1] == "gpt-5.2-codex"
    assert "model_reasoning_effort=high" in argv, "loop-agents' default effort"
    assert fake_agents.names() == ["codex-1"]


JUDGE_AGENT = """\
import json, os, sys
from pathlib import Path
prompt = sys.stdin.read()
status = Path(os.environ["LOOPRUNNER_STATUS"])
log = Path(sys.argv[1])
with log.open("a") as calls:
    calls.write(json.dumps({"judge": status.parent.name == "judge", "prompt": prompt}) + "\\n")
if status.parent.name == "judge":
    verdict = {"stop": True, "reason": "plateau", "confidence": 0.8}
    print("My verdict:\\n```json\\n" + json.dumps(verdict) + "\\n```")
else:
    print("worked on it")
    status.write_text(json.dumps({"decision": "continue", "reason": "more to do"}))
"""


def test_the_judge_switch_lets_the_projects_judge_prompt_decide(
    project: Path, cli: Cli, tmp_path: Path
) -> None:
    agent = tmp_path / "agent.py"
    agent.write_text(JUDGE_AGENT, encoding="utf-8")
    log = tmp_path / "calls.jsonl"
    folder = project / "scripts" / "stages" / "refine"
    folder.mkdir(parents=True)
    (folder / "stage.yaml").write_text(
        "provider: command\n"
        f"command: {json.dumps([sys.executable, str(agent), str(log)])}\n"
        "termination:\n  type: judgment\n  consensus: 1\n  max: 3\n",
        encoding="utf-8",
    )
    (folder / "prompt.md").write_text("Refine. ${STATUS}\n", encoding="utf-8")
    judge = project / "scripts" / "prompts" / "judge.md"
    judge.parent.mkdir(parents=True)
    judge.write_text(
        "Judge ${STAGE_NAME} at ${ITERATION}; goal ${TERMINATION_CRITERIA}.\n"
        "Latest: ${RESULT_JSON}\nOutput: ${NODE_OUTPUT}\n",
        encoding="utf-8",
    )

    plain = cli("start", "plain", "--stage", "refine", "--foreground")
    assert plain.returncode == 0, plain.stderr
    assert status_of(cli, "plain")["completion_reason"] == "max_iterations"
    assert all(not json.loads(line)["judge"] for line in log.read_text().splitlines())

    log.unlink()
    judged = cli("start", "judged", "--stage", "refine", "--judge", "--foreground")
    assert judged.returncode == 0, judged.stderr
    status = status_of(cli, "judged")
    assert status["completion_reason"] == "consensus"
    assert status["stages"][0]["iterations_completed"] == 1, "the judge said stop at once"
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert [c["judge"] for c in calls] == [False, True]
    prompt = calls[1]["prompt"]
    assert prompt.startswith("Judge refine at 1; goal {")
    assert '"type": "judgment"' in prompt and '"consensus": 1' in prompt
    assert 'Latest: {"decision": "continue", "reason": "more to do"}' in prompt
    assert "Output: worked on it" in prompt
    run = ProjectPaths.of(project).session("judged")
    verdict = json.loads((run.iteration_dir(0, "refine", 1) / "judge" / "status.json").read_text())
    assert verdict == {"decision": "stop", "reason": "plateau", "summary": "confidence 0.8"}
