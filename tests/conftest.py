"""Shared fixtures: an isolated tmux server per test, temporary projects, stage builders.

Built on looprunner's own test kit (``looprunner.testing``, the fixtures plugin authors
get): every test gets its own ``LOOPRUNNER_TMUX_SOCKET``, so nothing ever touches the
user's tmux server, and that server is killed at teardown if the test started one.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from looprunner.testing import wait_until

REPO = Path(__file__).resolve().parent.parent
HAVE_TMUX = shutil.which("tmux") is not None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tmux tests, with a reason, on a machine without tmux."""
    if HAVE_TMUX:
        return
    skip = pytest.mark.skip(reason="tmux is not installed")
    for item in items:
        if "tmux" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def isolated_env(lr_tmux: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test: a private tmux server (the test kit's), a short kill grace, no overrides."""
    monkeypatch.setenv("LOOPRUNNER_KILL_GRACE", "3")
    monkeypatch.delenv("LOOPRUNNER_STATE_DIR", raising=False)
    monkeypatch.delenv("LOOPRUNNER_MOCK_FIXTURES", raising=False)
    monkeypatch.delenv("LOOPRUNNER_MOCK_DELAY", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    return lr_tmux


@pytest.fixture
def tmux_socket(lr_tmux: str) -> str:
    """The private tmux socket name of this test."""
    return lr_tmux


@pytest.fixture
def project(lr_project: Path) -> Path:
    """An empty project folder (the test kit's ``lr_project``)."""
    return lr_project


@pytest.fixture
def make_stage(lr_stage: Callable[..., Path]) -> Callable[..., Path]:
    """Write a stage with mock fixtures (the test kit's ``lr_stage``)."""
    return lr_stage


@pytest.fixture
def cli(
    lr_cli: Callable[..., subprocess.CompletedProcess[str]],
) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the real command line against the project (the test kit's ``lr_cli``)."""
    return lr_cli


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes (to prove nothing changed)."""
    if not folder.exists():
        return {}
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


__all__ = ["HAVE_TMUX", "REPO", "tree", "wait_until"]
