"""The pytest plugin of the test kit (registered through the ``pytest11`` entry point)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from looprunner.testing.fake_model_server import FakeModelServer
from looprunner.testing.kit import fake_agent_argv, tmux_socket_path, write_stage
from looprunner.testing.real_clis import CLIsUnavailable, RealCLIs, install_clis


@pytest.fixture
def lr_tmux(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A private tmux socket for this test; its server (only it) is killed afterwards."""
    socket = f"lrtest-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("LOOPRUNNER_TMUX_SOCKET", socket)
    monkeypatch.delenv("TMUX", raising=False)
    yield socket
    if tmux_socket_path(socket).exists() and shutil.which("tmux"):
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, check=False)
        tmux_socket_path(socket).unlink(missing_ok=True)


@pytest.fixture
def lr_project(tmp_path: Path, lr_tmux: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project folder; state stays inside it, tmux is private."""
    monkeypatch.delenv("LOOPRUNNER_STATE_DIR", raising=False)
    folder = tmp_path / "project"
    folder.mkdir()
    return folder


@pytest.fixture
def lr_stage(lr_project: Path) -> Callable[..., Path]:
    """Write a stage into the project: ``lr_stage("work", termination={...})``."""

    def make(name: str = "work", **options: Any) -> Path:
        return write_stage(lr_project, name, **options)

    return make


@pytest.fixture
def lr_fake_agent(tmp_path: Path) -> Callable[[dict[str, Any]], list[str]]:
    """Return the argv of a fake agent following ``script`` (see the module docs)."""
    count = 0

    def make(script: dict[str, Any]) -> list[str]:
        nonlocal count
        count += 1
        path = tmp_path / f"fake-agent-{count}.json"
        path.write_text(json.dumps({str(k): v for k, v in script.items()}))
        return fake_agent_argv(path)

    return make


@pytest.fixture
def lr_cli(lr_project: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``looprunner --project PROJECT ARGS...`` in a subprocess."""

    def run(
        *args: str,
        input: str | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "looprunner", "--project", str(lr_project), *args],
            capture_output=True,
            text=True,
            input=input,
            env={**os.environ, **(env or {})},
            timeout=timeout,
            check=False,
        )

    return run


@pytest.fixture(scope="session")
def lr_real_clis() -> RealCLIs:
    """The pinned real ``claude`` and ``codex``, installed once into a shared cache.

    Skips the test, saying why, where ``npm`` is missing or the install fails.
    """
    try:
        return install_clis()
    except CLIsUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture
def lr_fake_model_server() -> Iterator[FakeModelServer]:
    """A started :class:`FakeModelServer` (loopback, a free port), stopped afterwards."""
    with FakeModelServer() as server:
        yield server
