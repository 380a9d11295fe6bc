"""Sessions on a real local Ray head, driven through looprunner's command line.

Each test starts real engines as Ray jobs with the ``mock`` provider (a real agent
process per iteration); every wait is a poll with a deadline.
"""

from __future__ import annotations

import json
import os
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
LIVE = {"PENDING", "RUNNING"}
#: Ray jobs start slowly on a busy machine: start waits this long at most
START_TIMEOUT = 240


def client(address: str) -> Any:
    return job_submission.JobSubmissionClient(address)


def jobs_of(address: str, project: Path) -> list[Any]:
    """The Ray jobs whose metadata names ``project`` (whoever submitted them)."""
    return [
        job
        for job in client(address).list_jobs()
        if (job.metadata or {}).get("looprunner_project") == str(project)
    ]


def status_of(cli: Cli, name: str) -> dict[str, Any]:
    done = cli("--json", "status", name)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def processes_in(project: Path) -> list[str]:
    """Processes on this machine whose command line or working folder is the project's."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            cwd = str((entry / "cwd").readlink())
        except OSError:
            continue
        if str(project) in cmdline or cwd == str(project):
            found.append(f"{entry.name}: {cmdline.strip()}")
    return found


@pytest.fixture
def slow_stage(lr_stage: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """A stage of many iterations that each take a second: it runs until killed."""
    lr_stage("work", termination={"type": "fixed", "iterations": 200})
    monkeypatch.setenv("LOOPRUNNER_MOCK_DELAY", "1")


def test_a_session_runs_as_a_ray_job_and_every_command_follows_it(
    ray_env: str, lr_project: Path, lr_cli: Cli, slow_stage: None
) -> None:
    secret = "sk-test-never-in-the-job-4711"
    started = lr_cli(
        "start", "far", "--stage", "work", "--backend", "ray",
        env={"EXAMPLE_API_KEY": secret}, timeout=START_TIMEOUT,
    )  # fmt: skip
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        (job,) = jobs_of(ray_env, lr_project)
        assert job.metadata == {"looprunner_project": str(lr_project), "looprunner_session": "far"}
        assert str(job.submission_id).startswith("looprunner-")
        assert secret not in json.dumps(job.dict(), default=str)  # no secret in the job

        status = status_of(lr_cli, "far")
        assert (status["health"], status["backend"]) == ("running", "ray")
        listed = json.loads(lr_cli("--json", "list").stdout)
        assert [(row["session"], row["health"]) for row in listed] == [("far", "running")]

        wait_until(
            lambda: status_of(lr_cli, "far")["iteration_completed"] >= 1,
            timeout=120,
            what="a first iteration",
        )
        tail = lr_cli("--json", "tail", "far")
        kinds = [json.loads(line)["type"] for line in tail.stdout.splitlines()]
        assert "iteration_complete" in kinds, kinds
        monitor = lr_cli("monitor", "far", "--lines", "200")
        assert monitor.returncode == 0, monitor.stderr
        assert monitor.stdout.strip(), "monitor showed nothing of the job"
    finally:
        killed = lr_cli("kill", "far", "--yes", timeout=120)
    assert killed.returncode == 0, killed.stdout + killed.stderr
    assert status_of(lr_cli, "far")["status"] == "killed"
    wait_until(lambda: not processes_in(lr_project), timeout=60, what="no process of the job")
    (job,) = jobs_of(ray_env, lr_project)
    assert str(job.status.value) not in LIVE


def test_two_starts_of_one_name_make_exactly_one_job(
    ray_env: str, lr_project: Path, slow_stage: None
) -> None:
    argv = [
        sys.executable, "-m", "looprunner", "--project", str(lr_project),
        "start", "twice", "--stage", "work", "--backend", "ray",
    ]  # fmt: skip
    both = [
        subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    try:
        outcomes = sorted(process.wait(START_TIMEOUT) for process in both)
        assert outcomes[0] == 0 and outcomes[1] != 0, outcomes
        live = [job for job in jobs_of(ray_env, lr_project) if str(job.status.value) in LIVE]
        assert len(live) == 1, [job.submission_id for job in live]
    finally:
        for process in both:
            if process.poll() is None:
                process.kill()
            process.communicate()
        subprocess.run(
            [*argv[:5], "kill", "twice", "--yes"], capture_output=True, timeout=120, check=False
        )
    wait_until(lambda: not processes_in(lr_project), timeout=60, what="no process of the job")


def test_cleanup_never_touches_a_job_that_is_not_ours(
    ray_env: str, lr_project: Path, lr_cli: Cli, lr_stage: Callable[..., Path]
) -> None:
    ray = client(ray_env)
    # someone else's job that even names this project in its metadata
    foreign = ray.submit_job(
        entrypoint=f"{sys.executable} -c 'import time; time.sleep(600)'",
        submission_id=f"someone-else-{os.getpid()}",
        metadata={"looprunner_project": str(lr_project), "looprunner_session": "other"},
    )
    try:
        wait_until(
            lambda: str(ray.get_job_status(foreign).value) == "RUNNING",
            timeout=120,
            what="the foreign job to run",
        )
        lr_stage("work", termination={"type": "fixed", "iterations": 1})
        done = lr_cli("start", "ours", "--stage", "work", "--backend", "ray", timeout=START_TIMEOUT)
        assert done.returncode == 0, done.stdout + done.stderr
        wait_until(lambda: status_of(lr_cli, "ours")["health"] == "complete", timeout=120)

        assert lr_cli("status", "other").returncode != 0  # not reported as a session
        fixed = lr_cli("cleanup", "--fix", "--yes", timeout=120)
        assert fixed.returncode == 0, fixed.stdout + fixed.stderr
        killed = lr_cli("kill", "other", "--yes", timeout=120)
        assert killed.returncode != 0
        assert str(ray.get_job_status(foreign).value) == "RUNNING"
    finally:
        ray.stop_job(foreign)
