"""Every loop-agents pipeline of the shared corpus, run unchanged with fake agents.

The corpus (``../shared/corpus/loop-agents``, beside the checkout) holds the stage and
pipeline files of a real loop-agents project. Each test copies its ``scripts/`` folder
into a fresh project, as a user's project has it, and starts one pipeline in the
foreground with the fake ``claude`` and ``codex`` programs on PATH (and no pause between
iterations: ``LOOPRUNNER_MAX_DELAY=0``). Twelve run to
``complete``; the two that name stages the corpus does not ship are refused before
anything runs. Skipped where the corpus is absent (a user's checkout).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from looprunner import Session
from looprunner.models import Health
from tests.conftest import REPO, tree

CORPUS = REPO.parent / "shared" / "corpus" / "loop-agents"
PIPELINES = CORPUS / "scripts" / "pipelines"
#: pipelines that name stages the corpus does not ship, and those stages
MISSING = {
    "plan-to-tasks": ["robot-mode"],
    "queue-provider-tdd": ["tdd-plan-refine", "tdd-create-beads"],
}

pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason="the shared corpus is absent")


def corpus_pipelines() -> list[str]:
    return sorted(p.stem for p in PIPELINES.glob("*.yaml")) if PIPELINES.is_dir() else []


@pytest.fixture
def corpus_project(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(CORPUS / "scripts", project / "scripts")
    # the corpus's stages pause up to 5 s between iterations, for real rate limits
    monkeypatch.setenv("LOOPRUNNER_MAX_DELAY", "0")
    return project


def blocks_of(name: str) -> list[tuple[int, str, list[str]]]:
    """Return (index, id, provider names) of each parallel block of a corpus pipeline."""
    from ruamel.yaml import YAML

    data = YAML(typ="safe").load((PIPELINES / f"{name}.yaml").read_text())
    found = []
    for index, node in enumerate(data.get("nodes") or data.get("stages") or []):
        if "parallel" in node:
            names = [p if isinstance(p, str) else p["name"] for p in node["parallel"]["providers"]]
            found.append((index, node.get("id") or node.get("name"), names))
    return found


@pytest.mark.parametrize("name", [n for n in corpus_pipelines() if n not in MISSING])
def test_corpus_pipeline_runs_to_complete(
    name: str, corpus_project: Path, fake_agents: Any, cli: Any
) -> None:
    result = cli("start", f"c-{name}", "--pipeline", name, "--foreground", timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    session = Session(f"c-{name}", corpus_project)
    status = session.status()
    assert status.health is Health.COMPLETE, (status.detail, status.state)
    for index, block, names in blocks_of(name):
        folder = session.paths.block_dir(index, block)
        manifest = json.loads((folder / "manifest.json").read_text())
        assert sorted(manifest["providers"]) == sorted(names)
        for provider in names:
            assert (folder / provider / "state.json").is_file()
            assert manifest["providers"][provider]["status"] == "complete"


@pytest.mark.parametrize("name", sorted(MISSING))
def test_corpus_pipeline_naming_missing_stages_is_refused(
    name: str, corpus_project: Path, fake_agents: Any, cli: Any
) -> None:
    before = tree(corpus_project / ".claude")
    result = cli("start", f"c-{name}", "--pipeline", name, "--foreground")
    assert result.returncode == 2, result.stdout + result.stderr
    for stage in MISSING[name]:
        assert f"unknown stage {stage!r}" in result.stderr
    assert f"{name}.yaml:" in result.stderr
    assert tree(corpus_project / ".claude") == before


def test_the_corpus_has_the_fourteen_pipelines_these_tests_expect() -> None:
    assert len(corpus_pipelines()) == 14
