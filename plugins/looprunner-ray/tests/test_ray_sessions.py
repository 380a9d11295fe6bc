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
from typing import TYPE_CHECKING, Any

import pytest
from looprunner.testing import wait_until

if TYPE_CHECKING:
    from looprunner_ray.local import LocalNode

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


def processes_in(project: Path) -> dict[int, str]:
    """Processes on this machine that carry the project's mark, by pid.

    The engine names the project on its command line and works in it; each agent gets
    the project's paths in its environment (``LOOPRUNNER_CTX`` and the like).
    """
    found = {}
    mark = str(project).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            environ = (entry / "environ").read_bytes()
            cwd = str((entry / "cwd").readlink())
        except OSError:
            continue
        if mark in cmdline or mark in environ or cwd == str(project):
            found[int(entry.name)] = cmdline.decode(errors="replace").strip()
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


def events_of(project: Path) -> list[dict[str, Any]]:
    """Every event of the project's one run, in order."""
    (log,) = project.rglob("events.jsonl")
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def test_a_session_whose_node_is_lost_crashes_and_resume_completes_it(
    ray_env: str,
    lr_project: Path,
    lr_cli: Cli,
    lr_stage: Callable[..., Path],
    lr_fake_agent: Callable[[dict[str, Any]], list[str]],
    ray_worker: LocalNode,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # iteration 2's agent waits (bounded) until the node under it is gone
    argv = lr_fake_agent({"2": {"sleep": 600, "decision": "continue"}})
    script = Path(argv[-1])
    calls = script.with_suffix(".calls.jsonl")
    lr_stage(
        "work",
        provider="command",
        termination={"type": "fixed", "iterations": 3},
        extra=f"command: {json.dumps(argv)}\n",
    )
    # more CPUs than the head has: only the worker node can take the engine
    monkeypatch.setenv("LOOPRUNNER_RAY_NUM_CPUS", "3")
    started = lr_cli("start", "far", "--stage", "work", "--backend", "ray", timeout=START_TIMEOUT)
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        wait_until(
            lambda: calls.exists() and '"iteration": 2' in calls.read_text(),
            timeout=120,
            what="iteration 2's agent to run",
        )
        ours = processes_in(lr_project)
        on_worker = ray_worker.pids()
        assert ours and set(ours) <= on_worker, (ours, sorted(on_worker))  # engine + agent
        ray_worker.lose()
        assert not processes_in(lr_project)

        wait_until(
            lambda: status_of(lr_cli, "far")["health"] == "crashed",
            timeout=120,
            what="status to say crashed",
        )
        (lost,) = jobs_of(ray_env, lr_project)
        assert str(lost.status.value) == "FAILED"

        script.write_text(json.dumps({"default": {"decision": "continue"}}))
        monkeypatch.delenv("LOOPRUNNER_RAY_NUM_CPUS")  # any node that exists: the head
        resumed = lr_cli("resume", "far", timeout=START_TIMEOUT)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        wait_until(
            lambda: status_of(lr_cli, "far")["health"] == "complete",
            timeout=180,
            what="the resumed session to complete",
        )
    finally:
        lr_cli("kill", "far", "--yes", timeout=120)
    events = events_of(lr_project)
    completed = [event["iteration"] for event in events if event["type"] == "iteration_complete"]
    assert completed == [1, 2, 3], completed  # none lost, none twice
    folders = sorted(path.name for path in lr_project.rglob("iterations/*") if path.is_dir())
    assert folders == ["001", "002", "003"], folders
    ran = [json.loads(line)["iteration"] for line in calls.read_text().splitlines()]
    assert ran == [1, 2, 2, 3], ran  # only the interrupted iteration ran again
    assert sorted(job.submission_id[-2:] for job in jobs_of(ray_env, lr_project)) == ["-1", "-2"]


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
