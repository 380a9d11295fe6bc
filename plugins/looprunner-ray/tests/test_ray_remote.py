"""The launcher's environment reaches an engine that Ray may place on any node.

The Ray backend asks for looprunner's file handoff (a FIFO reaches no other kernel): a
0600 file in the run directory, on the shared storage, that the engine removes first
thing. These prove, on a real local Ray head with a real ``command`` agent, that a fake
secret reaches the agent, is stored in no file of the project and in nothing the job
carries, and that no handoff file outlives a launch, one the cluster refuses included.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from looprunner.testing import iteration_summaries, wait_until, write_env_probe_stage

pytestmark = [
    pytest.mark.ray,
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]
job_submission = pytest.importorskip("ray.job_submission", reason="ray[default] is not installed")

Cli = Callable[..., Any]
START_TIMEOUT = 240
SECRET = "sk-ray-remote-fake-secret-0451"


def write_probe_stage(project: Path, iterations: int) -> None:
    write_env_probe_stage(project, iterations=iterations)


def summaries(project: Path, name: str) -> list[str]:
    return iteration_summaries(project / ".claude" / "pipeline-runs" / name / "events.jsonl")


def handoff_files(project: Path) -> list[str]:
    return [str(path) for path in project.rglob(".env-handoff*")]


def files_holding(project: Path, value: str) -> list[str]:
    return [
        str(path)
        for path in project.rglob("*")
        if path.is_file() and not path.is_symlink() and value.encode() in path.read_bytes()
    ]


def jobs_of(address: str, project: Path) -> list[Any]:
    return [
        job
        for job in job_submission.JobSubmissionClient(address).list_jobs()
        if (job.metadata or {}).get("looprunner_project") == str(project)
    ]


def test_a_secret_reaches_the_agent_of_a_ray_job_through_a_file_that_does_not_stay(
    ray_env: str, lr_project: Path, lr_cli: Cli
) -> None:
    write_probe_stage(lr_project, iterations=2)
    started = lr_cli(
        "start", "remote", "--stage", "probe", "--backend", "ray",
        env={"EXAMPLE_API_KEY": SECRET}, timeout=START_TIMEOUT,
    )  # fmt: skip
    assert started.returncode == 0, started.stdout + started.stderr
    assert not handoff_files(lr_project), "the handoff file outlived the launch"
    waited = lr_cli("wait", "remote", "--timeout", "180", timeout=200)
    assert waited.returncode == 0, waited.stdout + waited.stderr
    assert summaries(lr_project, "remote") == [hashlib.sha256(SECRET.encode()).hexdigest()] * 2

    assert not files_holding(lr_project, SECRET)
    (job,) = jobs_of(ray_env, lr_project)
    details = job_submission.JobSubmissionClient(ray_env).get_job_info(job.submission_id)
    carried = json.dumps([details.entrypoint, details.metadata, details.runtime_env], default=str)
    assert "--env-file" in details.entrypoint
    assert SECRET not in carried
    assert SECRET not in json.dumps(job.dict(), default=str)
    assert not handoff_files(lr_project)


def test_a_launch_the_cluster_refuses_leaves_no_handoff_file(
    ray_env: str, lr_project: Path, lr_cli: Cli
) -> None:
    write_probe_stage(lr_project, iterations=1)
    digest = hashlib.sha256(str(lr_project).encode()).hexdigest()[:12]
    client = job_submission.JobSubmissionClient(ray_env)
    # a job of someone else's holding the id the first launch would take: Ray refuses it
    squatter = client.submit_job(entrypoint="true", submission_id=f"looprunner-{digest}-refused-1")
    try:
        refused = lr_cli(
            "start", "refused", "--stage", "probe", "--backend", "ray",
            env={"EXAMPLE_API_KEY": SECRET}, timeout=START_TIMEOUT,
        )  # fmt: skip
        assert refused.returncode != 0, refused.stdout
        assert "refused" in refused.stderr or "submitted" in refused.stderr, refused.stderr
        assert not handoff_files(lr_project)
        assert not files_holding(lr_project, SECRET)
    finally:
        wait_until(
            lambda: str(client.get_job_status(squatter).value) not in ("PENDING", "RUNNING"),
            timeout=120,
            what="the squatting job to end",
        )


def test_a_launch_that_never_reaches_a_node_leaves_no_handoff_file(
    ray_env: str, lr_project: Path, lr_cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_probe_stage(lr_project, iterations=1)
    monkeypatch.setenv("LOOPRUNNER_RAY_NUM_CPUS", "64")  # the head has 2: stays pending
    monkeypatch.setenv("LOOPRUNNER_RAY_LAUNCH_TIMEOUT", "5")
    failed = lr_cli(
        "start", "pending", "--stage", "probe", "--backend", "ray",
        env={"EXAMPLE_API_KEY": SECRET}, timeout=START_TIMEOUT,
    )  # fmt: skip
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "did not start" in failed.stderr
    assert not handoff_files(lr_project)
    assert not files_holding(lr_project, SECRET)
