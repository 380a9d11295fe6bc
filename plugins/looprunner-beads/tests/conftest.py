"""Fixtures of the looprunner-beads tests, on top of looprunner's test kit.

The plugin is installed for real (``pip install --target``) once per test process and
put on ``PYTHONPATH`` for the looprunner processes a test starts; ``bd`` is a fake (a
real program, ``fake_bd.py``) put first on ``PATH``, keeping its issues in the project.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from looprunner.testing import install_plugin, plugin_path_env

HERE = Path(__file__).resolve().parent
PLUGIN = HERE.parent
FAKE_BD = HERE / "fake_bd.py"
BEAD_AGENT = HERE / "bead_agent.py"
HAVE_TMUX = shutil.which("tmux") is not None

needs_tmux = pytest.mark.skipif(not HAVE_TMUX, reason="tmux is not installed")


@pytest.fixture(autouse=True)
def beads_test_env(lr_tmux: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test: a private tmux server, a short kill grace, no user overrides."""
    monkeypatch.setenv("LOOPRUNNER_KILL_GRACE", "3")
    monkeypatch.setenv("NO_COLOR", "1")
    for name in (
        "LOOPRUNNER_STATE_DIR",
        "LOOPRUNNER_MOCK_FIXTURES",
        "LOOPRUNNER_MOCK_DELAY",
        "LOOPRUNNER_DISABLED_PLUGINS",
        "LOOPRUNNER_DISABLE_PLUGIN_AUTOLOAD",
        "FAKE_BD_PRINT",
        "BEADS_DIR",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def beads_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """looprunner-beads installed with pip into a folder of its own (once per process)."""
    site = tmp_path_factory.mktemp("beads-site")
    return install_plugin(PLUGIN, site)


@pytest.fixture
def with_beads(beads_site: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Make the installed plugin visible to every looprunner process a test starts."""
    monkeypatch.setenv(
        "PYTHONPATH",
        plugin_path_env(beads_site),
    )
    return beads_site


@pytest.fixture
def fake_bd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put the fake ``bd`` first on PATH; return the folder holding it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    program = bin_dir / "bd"
    program.write_text(f"#!{sys.executable}\n" + FAKE_BD.read_text(encoding="utf-8"))
    program.chmod(0o755)
    monkeypatch.setenv("PATH", os.pathsep.join([str(bin_dir), os.environ.get("PATH", "")]))
    return bin_dir


class Beads:
    """The fake bd's database in a project: write issues, read them back."""

    def __init__(self, project: Path) -> None:
        self.folder = project / ".beads"
        self.file = self.folder / "fake-bd.json"
        self.calls_file = self.folder / "fake-bd.calls.jsonl"

    def write(self, issues: Iterable[dict[str, Any]]) -> None:
        self.folder.mkdir(exist_ok=True)
        self.file.write_text(json.dumps({"issues": list(issues)}, indent=2), encoding="utf-8")

    def add(self, session: str, *ids: str, status: str = "open", priority: int = 2) -> None:
        issues = self.issues() if self.file.exists() else []
        issues += [
            {
                "id": issue_id,
                "title": f"work item {issue_id}",
                "status": status,
                "priority": priority,
                "issue_type": "task",
                "labels": [f"pipeline/{session}"],
            }
            for issue_id in ids
        ]
        self.write(issues)

    def issues(self) -> list[dict[str, Any]]:
        return list(json.loads(self.file.read_text(encoding="utf-8"))["issues"])

    def statuses(self) -> dict[str, str]:
        return {issue["id"]: issue["status"] for issue in self.issues()}

    def calls(self) -> list[dict[str, Any]]:
        if not self.calls_file.exists():
            return []
        lines = self.calls_file.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]


@pytest.fixture
def beads(lr_project: Path, fake_bd: Path) -> Beads:
    """The fake bd (on PATH) and its database in the test's project."""
    return Beads(lr_project)


@pytest.fixture
def bead_stage(lr_stage: Callable[..., Path]) -> Callable[..., Path]:
    """Write a stage run by the bead agent under a ``beads`` termination."""

    def make(name: str = "beadwork", *, hang: bool = False, max_iterations: int = 10) -> Path:
        command = [sys.executable, str(BEAD_AGENT), *(["--hang-after-claim"] if hang else [])]
        return lr_stage(
            name,
            provider="command",
            termination={"type": "beads", "max": max_iterations},
            extra=f"command: {json.dumps(command)}\n",
        )

    return make


@pytest.fixture
def status_of(lr_cli: Callable[..., subprocess.CompletedProcess[str]]) -> Callable[[str], Any]:
    """``status_of(NAME)``: ``looprunner --json status NAME``, parsed."""

    def status(name: str) -> Any:
        result = lr_cli("--json", "status", name)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    return status
