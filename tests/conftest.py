"""Shared fixtures: an isolated tmux server per test, temporary projects, stage builders.

Every test gets its own ``LOOPRUNNER_TMUX_SOCKET`` (so nothing ever touches the user's
tmux server) and that server is killed at teardown if the test started one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

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


def _socket_path(name: str) -> Path:
    base = os.environ.get("TMUX_TMPDIR", "/tmp")
    return Path(base) / f"tmux-{os.getuid()}" / name


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A private tmux socket, a short kill grace, no plugin autoload, no state-dir override."""
    socket = f"lrtest-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("LOOPRUNNER_TMUX_SOCKET", socket)
    monkeypatch.setenv("LOOPRUNNER_KILL_GRACE", "3")
    monkeypatch.delenv("LOOPRUNNER_STATE_DIR", raising=False)
    monkeypatch.delenv("LOOPRUNNER_MOCK_FIXTURES", raising=False)
    monkeypatch.delenv("LOOPRUNNER_MOCK_DELAY", raising=False)
    monkeypatch.delenv("TMUX", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    yield socket
    if _socket_path(socket).exists():
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, check=False)
        _socket_path(socket).unlink(missing_ok=True)


@pytest.fixture
def tmux_socket(isolated_env: str) -> str:
    """The private tmux socket name of this test."""
    return isolated_env


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """An empty project folder."""
    folder = tmp_path / "project"
    folder.mkdir()
    return folder


StageMaker = Callable[..., Path]


@pytest.fixture
def make_stage(project: Path) -> StageMaker:
    """Write ``.looprunner/stages/NAME`` with a stage.yaml, prompt and mock fixtures.

    ``statuses`` maps an iteration number (or "default") to a status document;
    ``outputs`` likewise to output text.
    """

    def make(
        name: str = "work",
        *,
        provider: str = "mock",
        termination: dict[str, Any] | None = None,
        statuses: dict[Any, Any] | None = None,
        outputs: dict[Any, str] | None = None,
        prompt: str = "Iteration ${ITERATION} of ${SESSION_NAME}. Write ${STATUS}.\n",
        extra: str = "",
    ) -> Path:
        folder = project / ".looprunner" / "stages" / name
        fixtures = folder / "fixtures"
        fixtures.mkdir(parents=True, exist_ok=True)
        term = termination or {"type": "fixed", "iterations": 3}
        lines = [f"name: {name}", f"provider: {provider}", "termination:"]
        lines += [f"  {k}: {json.dumps(v)}" for k, v in term.items()]
        (folder / "stage.yaml").write_text("\n".join(lines) + "\n" + extra)
        (folder / "prompt.md").write_text(prompt)
        for key, status in (
            statuses
            or {"default": {"decision": "continue", "reason": "more", "summary": "did one"}}
        ).items():
            target = "status.json" if key == "default" else f"status-{key}.json"
            (fixtures / target).write_text(json.dumps(status))
        for key, text in (outputs or {}).items():
            target = "default.txt" if key == "default" else f"iteration-{key}.txt"
            (fixtures / target).write_text(text)
        return folder

    return make


@pytest.fixture
def cli(project: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``python -m looprunner --project PROJECT ARGS...`` as a user would."""

    def run(
        *args: str,
        input: str | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "looprunner", "--project", str(project), *args],
            capture_output=True,
            text=True,
            input=input,
            env={**os.environ, **(env or {})},
            timeout=timeout,
            check=False,
        )

    return run


def wait_until(
    predicate: Callable[[], Any],
    *,
    timeout: float = 30.0,
    interval: float = 0.05,
    what: str = "condition",
) -> Any:
    """Poll ``predicate`` until it returns something truthy, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes (to prove nothing changed)."""
    if not folder.exists():
        return {}
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }
