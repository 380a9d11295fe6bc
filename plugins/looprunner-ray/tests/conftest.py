"""Fixtures of the looprunner-ray tests: one real local Ray head for the whole test run.

The head (``ray start --head --block``) listens on loopback only, with the dashboard
(which serves the Jobs API) on a free port, a pinned CPU count and a short temp folder
of its own (Ray's socket paths must stay under 108 characters). It runs in a process
group of its own, which is ended at the end of the run: nothing of anyone else's Ray is
touched. Every test marked ``ray`` is skipped, with the reason, where ``ray`` is not
installed (``pip install -e plugins/looprunner-ray``).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

#: how long the head may take to come up on a busy machine (seconds)
HEAD_TIMEOUT = 240.0
_DASHBOARD = re.compile(r"http://127\.0\.0\.1:(\d+)")


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker (looprunner runs pytest with --strict-markers)."""
    config.addinivalue_line("markers", "ray: needs Ray; starts (or shares) a local Ray head")


def _free_port() -> str:
    """A port nobody listens on now (Ray's agents default to fixed ones, 52365 and more)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return str(probe.getsockname()[1])


def _ray_program() -> str | None:
    beside = Path(sys.executable).with_name("ray")
    return str(beside) if beside.exists() else shutil.which("ray")


@pytest.fixture(scope="session")
def ray_head() -> Iterator[str]:
    """Start a local Ray head for the test run; yield its Jobs API address."""
    pytest.importorskip("ray.job_submission", reason="ray[default] is not installed")
    program = _ray_program()
    if program is None:
        pytest.skip("the ray command is not installed")
    temp = tempfile.mkdtemp(prefix="lrray-")
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    head = subprocess.Popen(
        [
            program, "start", "--head", "--block", "--port", "0",
            "--node-ip-address", "127.0.0.1", "--dashboard-host", "127.0.0.1",
            "--dashboard-port", "0", "--include-dashboard", "true", "--num-cpus", "2",
            "--temp-dir", temp, "--disable-usage-stats",
            # fixed by default: another Ray on this machine must not be in the way
            "--dashboard-agent-listen-port", _free_port(),
            "--dashboard-agent-grpc-port", _free_port(),
            "--runtime-env-agent-port", _free_port(),
            "--metrics-export-port", _free_port(),
            "--ray-client-server-port", _free_port(),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )  # fmt: skip
    found = threading.Event()
    seen: list[str] = []

    def read() -> None:
        assert head.stdout is not None
        for line in head.stdout:  # keeps draining, so the head never blocks on a full pipe
            seen.append(line)
            if not found.is_set() and _DASHBOARD.search(line):
                found.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        if not found.wait(HEAD_TIMEOUT):
            raise RuntimeError("the Ray head did not start:\n" + "".join(seen[-20:]))
        match = next(m for m in map(_DASHBOARD.search, seen) if m)
        address = f"http://127.0.0.1:{match.group(1)}"
        _wait_for_jobs_api(address)
        yield address
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGTERM)  # --block stops what it started
        try:
            head.wait(60)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(head.pid, signal.SIGKILL)
            head.wait(10)
        reader.join(10)
        assert head.stdout is not None
        head.stdout.close()
        shutil.rmtree(temp, ignore_errors=True)


def _wait_for_jobs_api(address: str) -> None:
    """Poll until the head runs jobs: a trivial job is accepted and ends.

    The dashboard answers before the node's job agent is ready ("No available agent to
    submit job"), so only a job that ran proves the head can take the tests' jobs.
    """
    from ray.job_submission import JobSubmissionClient

    deadline = time.monotonic() + HEAD_TIMEOUT
    submitted = None
    while submitted is None:
        try:
            submitted = JobSubmissionClient(address).submit_job(entrypoint="true")
        except Exception:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.5)
    client = JobSubmissionClient(address)
    while str(client.get_job_status(submitted).value) in ("PENDING", "RUNNING"):
        if time.monotonic() >= deadline:
            raise RuntimeError("the Ray head accepted a job but never ran it")
        time.sleep(0.2)


@pytest.fixture
def ray_env(ray_head: str, lr_project: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point looprunner (and the Ray client) at the shared head; return its address."""
    monkeypatch.setenv("RAY_ADDRESS", ray_head)
    monkeypatch.setenv("LOOPRUNNER_KILL_GRACE", "3")
    monkeypatch.setenv("NO_COLOR", "1")
    for name in ("LOOPRUNNER_STATE_DIR", "LOOPRUNNER_MOCK_FIXTURES", "LOOPRUNNER_MOCK_DELAY"):
        monkeypatch.delenv(name, raising=False)
    return ray_head
