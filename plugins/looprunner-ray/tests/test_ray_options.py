"""``--ray-address`` and the project's settings: a session is found where it was launched.

With ``RAY_ADDRESS`` unset, a session started with ``--ray-address`` (or with the address
in ``.looprunner/config.yaml``, or in its pipeline file) must still be reported, followed
and killed by commands given no address at all: the launch recorded it. Real local Ray
head, ``mock`` agent.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from looprunner.testing import wait_until

pytestmark = [
    pytest.mark.ray,
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]
job_submission = pytest.importorskip("ray.job_submission", reason="ray[default] is not installed")

Cli = Callable[..., subprocess.CompletedProcess[str]]
START_TIMEOUT = 240
LIVE = {"PENDING", "RUNNING"}


@pytest.fixture
def no_address(ray_env: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The head's address, with RAY_ADDRESS unset for every command the test runs."""
    monkeypatch.delenv("RAY_ADDRESS")
    return ray_env


@pytest.fixture
def slow_stage(lr_stage: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> None:
    lr_stage("work", termination={"type": "fixed", "iterations": 200})
    monkeypatch.setenv("LOOPRUNNER_MOCK_DELAY", "1")


def status_of(cli: Cli, name: str) -> dict[str, Any]:
    done = cli("--json", "status", name, timeout=120)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def live_jobs(address: str, project: Path) -> list[Any]:
    return [
        job
        for job in job_submission.JobSubmissionClient(address).list_jobs()
        if (job.metadata or {}).get("looprunner_project") == str(project)
        and str(job.status.value) in LIVE
    ]


def run_and_kill(cli: Cli, address: str, project: Path, name: str) -> None:
    """Every later command finds the job with no address given, and kill stops it."""
    try:
        status = status_of(cli, name)
        assert (status["health"], status["resources"]["tmux"]) == ("running", True), status
        listed = json.loads(cli("--json", "list", timeout=120).stdout)
        assert [(row["session"], row["health"]) for row in listed] == [(name, "running")]
        wait_until(
            lambda: status_of(cli, name)["iteration_completed"] >= 1,
            timeout=120,
            what="a first iteration",
        )
        monitor = cli("monitor", name, "--lines", "50", timeout=120)
        assert monitor.returncode == 0 and monitor.stdout.strip(), monitor.stderr
    finally:
        killed = cli("kill", name, "--yes", timeout=120)
    assert killed.returncode == 0, killed.stdout + killed.stderr
    assert status_of(cli, name)["status"] == "killed"
    assert not live_jobs(address, project)


def test_a_session_started_with_ray_address_is_followed_without_it(
    no_address: str, lr_project: Path, lr_cli: Cli, slow_stage: None
) -> None:
    started = lr_cli(
        "start", "flagged", "--stage", "work", "--backend", "ray",
        "--ray-address", no_address, timeout=START_TIMEOUT,
    )  # fmt: skip
    assert started.returncode == 0, started.stdout + started.stderr
    assert len(live_jobs(no_address, lr_project)) == 1
    run_and_kill(lr_cli, no_address, lr_project, "flagged")


def test_the_address_in_the_project_config_is_used_and_recorded(
    no_address: str, lr_project: Path, lr_cli: Cli, slow_stage: None
) -> None:
    config = lr_project / ".looprunner" / "config.yaml"
    config.write_text(f"backends:\n  ray:\n    address: {no_address}\n")
    doctor = lr_cli("--json", "doctor", timeout=120)  # asks the cluster the project names
    checks = json.loads(doctor.stdout)["checks"]
    (ray,) = [c for c in checks if (c["kind"], c["name"]) == ("backend", "ray")]
    assert ray["ok"] and ray["detail"].startswith(f"cluster at {no_address}: "), ray
    started = lr_cli(
        "start", "configured", "--stage", "work", "--backend", "ray", timeout=START_TIMEOUT
    )
    assert started.returncode == 0, started.stdout + started.stderr
    config.unlink()  # the session remembers where it runs
    run_and_kill(lr_cli, no_address, lr_project, "configured")


def test_the_address_in_the_pipeline_file_is_used_and_recorded(
    no_address: str, lr_project: Path, lr_cli: Cli, slow_stage: None
) -> None:
    folder = lr_project / ".looprunner" / "pipelines"
    folder.mkdir(parents=True, exist_ok=True)
    pipeline = folder / "far.yaml"
    pipeline.write_text(
        f"name: far\nbackends:\n  ray:\n    address: {no_address}\n"
        "nodes:\n  - id: work\n    stage: work\n"
    )
    started = lr_cli(
        "start", "piped", "--pipeline", "far", "--backend", "ray", timeout=START_TIMEOUT
    )
    assert started.returncode == 0, started.stdout + started.stderr
    pipeline.unlink()  # the session remembers where it runs
    run_and_kill(lr_cli, no_address, lr_project, "piped")


def test_an_unknown_ray_option_is_refused_naming_the_known_ones(
    lr_project: Path, lr_cli: Cli, lr_stage: Callable[..., Path]
) -> None:
    lr_stage("work")
    done = lr_cli(
        "start", "typo", "--stage", "work", "--backend", "ray",
        "--backend-option", "adress=http://127.0.0.1:1",
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip() == (
        "looprunner: error: --backend-option: backend 'ray' has no option 'adress' "
        "(its options: address)"
    )
    assert not (lr_project / ".claude").exists()
    other = lr_cli("start", "typo", "--stage", "work", "--ray-address", "http://127.0.0.1:1")
    assert other.returncode == 2
    assert "--ray-address is an option of backend 'ray', not of 'tmux'" in other.stderr


def test_start_help_lists_ray_address() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "looprunner", "start", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "--ray-address" in done.stdout
    assert "RAY_ADDRESS" in done.stdout
