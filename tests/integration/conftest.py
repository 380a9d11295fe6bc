"""Fixtures for the integration tests: fake ``claude``/``codex`` programs on PATH.

The fakes live in ``tests/fakes/bin`` (see ``tests/fakes/fake_agent.py``). Each call
records how it was run in ``FAKE_AGENT_LOG_DIR`` and behaves as ``FAKE_AGENT_SCRIPT``
says, so a test can drive a real loop in real tmux and then check the exact argv, prompt
and environment every iteration's agent got.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

FAKES = Path(__file__).resolve().parent.parent / "fakes"
FAKES_BIN = FAKES / "bin"
#: argv prefix of the ``command``-provider agent that records its argv like the fakes
COMMAND_AGENT = (sys.executable, str(FAKES / "command_agent.py"))


class FakeAgents:
    """The fake agents of one test: their log folder and their script."""

    def __init__(self, log_dir: Path, script_file: Path) -> None:
        self.log_dir = log_dir
        self.script_file = script_file

    def script(self, actions: dict[Any, dict[str, Any]]) -> None:
        """Say what each iteration does: ``{1: {"exit": 3}, "default": {...}}``."""
        self.script_file.write_text(json.dumps({str(k): v for k, v in actions.items()}))

    def call(self, name: str, iteration: int) -> dict[str, Any]:
        """What agent ``name`` recorded in ``iteration`` (fails if it never ran)."""
        path = self.log_dir / f"{name}-{iteration}.json"
        assert path.is_file(), f"{name} never ran iteration {iteration}: {self.names()}"
        data: dict[str, Any] = json.loads(path.read_text())
        return data

    def has_call(self, name: str, iteration: int) -> bool:
        """Tell whether agent ``name`` has started ``iteration`` (and recorded it)."""
        return (self.log_dir / f"{name}-{iteration}.json").is_file()

    def names(self) -> list[str]:
        """Every recorded call, as ``NAME-ITERATION``."""
        return sorted(p.stem for p in self.log_dir.glob("*.json"))


@pytest.fixture
def fake_agents(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeAgents:
    """Put the fake ``claude`` and ``codex`` first on PATH, logging into a private folder.

    ``cli`` runs looprunner with this test's environment, and the launcher hands that
    environment to the engine in tmux, so every agent the engine starts is a fake.
    """
    for program in ("claude", "codex"):
        assert os.access(FAKES_BIN / program, os.X_OK), f"{FAKES_BIN / program} is not executable"
    log_dir = tmp_path / "agent-log"
    log_dir.mkdir()
    script_file = tmp_path / "agent-script.json"
    monkeypatch.setenv("PATH", f"{FAKES_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_AGENT_LOG_DIR", str(log_dir))
    monkeypatch.setenv("FAKE_AGENT_SCRIPT", str(script_file))
    monkeypatch.delenv("CLAUDECODE", raising=False)
    return FakeAgents(log_dir, script_file)


def write_stage(
    project: Path,
    name: str = "work",
    *,
    provider: str | None = None,
    model: str | None = None,
    iterations: int = 1,
    prompt: str = "Iteration ${ITERATION} of ${SESSION_NAME}. Write ${STATUS}.\n",
    extra: str = "",
) -> Path:
    """Write ``.looprunner/stages/NAME`` whose provider and model may be left unset."""
    folder = project / ".looprunner" / "stages" / name
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"name: {name}"]
    if provider is not None:
        lines.append(f"provider: {provider}")
    if model is not None:
        lines.append(f"model: {json.dumps(model)}")
    lines += ["termination:", "  type: fixed", f"  iterations: {iterations}"]
    (folder / "stage.yaml").write_text("\n".join(lines) + "\n" + extra)
    (folder / "prompt.md").write_text(prompt)
    return folder
