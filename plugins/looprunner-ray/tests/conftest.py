"""Fixtures of the looprunner-ray tests: one real local Ray head for the whole test run.

The head (:mod:`looprunner_ray.local`) serves the Jobs API on 127.0.0.1, with a pinned
CPU count and a short temp folder of its own, in a process group of its own: nothing of
anyone else's Ray is touched. Under ``pytest -n auto`` every worker process uses the
same head: the first worker that needs it starts it and writes its address into the
run's shared temp folder, under a file lock; the others read it there. Every worker
notes in that folder that it runs (from ``pytest_configure`` to ``pytest_unconfigure``),
and the worker that started the head stops it only when no other worker runs any more,
so one head serves the whole run and none outlives it (Linux also ends it if that
worker is killed). A head that ended by itself during the run is an error at the end of
the owner's tests, with what it said. A test that needs a second node gets a worker
node joined to the head for its own duration (``ray_worker``). Every test marked
``ray`` is skipped, with the reason, where ``ray`` is not installed
(``pip install -e plugins/looprunner-ray``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from looprunner_ray.local import LocalCluster, LocalNode

#: CPUs of the head; a worker node gets more, so an engine that reserves them lands there
HEAD_CPUS = 2
WORKER_CPUS = 3
#: a worker node may take minutes to join on a loaded machine (Ray retries are ours)
WORKER_TIMEOUT = 480.0
#: how long the worker that started the head waits for the others to finish (seconds)
OTHERS_TIMEOUT = 3600.0


def _shared_folder(config: pytest.Config) -> Path | None:
    """The folder every xdist worker of this run sees (None: not under xdist)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    basetemp = config.option.basetemp
    if not worker or not basetemp:
        return None
    return Path(basetemp).parent / "ray-shared"


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker (strict markers); note in the shared folder that this worker runs."""
    config.addinivalue_line("markers", "ray: needs Ray; starts (or shares) a local Ray head")
    shared = _shared_folder(config)
    if shared is not None:
        (shared / "running").mkdir(parents=True, exist_ok=True)
        (shared / "running" / str(os.getpid())).touch()


def pytest_unconfigure(config: pytest.Config) -> None:
    """Note that this worker runs no more."""
    shared = _shared_folder(config)
    if shared is not None:
        (shared / "running" / str(os.getpid())).unlink(missing_ok=True)


def _others_running(shared: Path) -> list[int]:
    found = []
    for entry in (shared / "running").iterdir():
        pid = int(entry.name)
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:  # a worker that was killed: it runs no more
            entry.unlink(missing_ok=True)
            continue
        found.append(pid)
    return found


@contextlib.contextmanager
def _locked(shared: Path) -> Iterator[None]:
    with (shared / "head.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _have_ray_command() -> bool:
    return Path(sys.executable).with_name("ray").exists() or shutil.which("ray") is not None


@pytest.fixture(scope="session")
def ray_cluster(pytestconfig: pytest.Config) -> Iterator[LocalCluster]:
    """Start (or find) the run's local Ray head; the worker that started it stops it."""
    pytest.importorskip("ray.job_submission", reason="ray[default] is not installed")
    if not _have_ray_command():
        pytest.skip("the ray command is not installed")
    from looprunner_ray import local

    shared = _shared_folder(pytestconfig)
    if shared is None:  # one process: this run's head is ours alone
        with local.start(num_cpus=HEAD_CPUS) as cluster:
            yield cluster
            ended = cluster.ended_by_itself()
        if ended is not None:
            raise RuntimeError(ended)
        return
    record = shared / "head.json"
    with _locked(shared):
        if record.exists():
            known = json.loads(record.read_text())
            joined = local.LocalCluster.joined(known["address"], known["gcs"], known["pid"])
            cluster, owner = joined, False
        else:
            cluster, owner = local.start(num_cpus=HEAD_CPUS), True
            temp = record.with_name(".head.json.tmp")
            temp.write_text(
                json.dumps(
                    {"address": cluster.address, "gcs": cluster.gcs, "pid": cluster.head_pid}
                )
            )
            temp.replace(record)
    try:
        yield cluster
    finally:
        if owner:  # the others may still run tests on it: wait until none runs any more
            deadline = time.monotonic() + OTHERS_TIMEOUT
            while _others_running(shared) and time.monotonic() < deadline:
                time.sleep(1.0)
            with _locked(shared):
                record.unlink(missing_ok=True)
        # a head that died under the run fails the tests that used it afterwards with
        # refused connections; its own words (which process, why) are said here
        ended = cluster.ended_by_itself() if owner else None
        cluster.stop()
        if ended is not None:
            raise RuntimeError(ended)


@pytest.fixture(scope="session")
def ray_head(ray_cluster: LocalCluster) -> str:
    """The shared head's Jobs API address."""
    return ray_cluster.address


@pytest.fixture
def ray_worker(ray_cluster: LocalCluster) -> Iterator[LocalNode]:
    """A second node (``WORKER_CPUS`` CPUs, more than the head has) for one test."""
    node = ray_cluster.add_worker(num_cpus=WORKER_CPUS, timeout=WORKER_TIMEOUT)
    try:
        yield node
    finally:
        node.stop()
        ray_cluster.workers.remove(node)


@pytest.fixture
def ray_env(ray_head: str, lr_project: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point looprunner (and the Ray client) at the shared head; return its address."""
    monkeypatch.setenv("RAY_ADDRESS", ray_head)
    monkeypatch.setenv("LOOPRUNNER_KILL_GRACE", "3")
    monkeypatch.setenv("NO_COLOR", "1")
    for name in (
        "LOOPRUNNER_STATE_DIR",
        "LOOPRUNNER_MOCK_FIXTURES",
        "LOOPRUNNER_MOCK_DELAY",
        "LOOPRUNNER_RAY_NUM_CPUS",
        "LOOPRUNNER_RAY_MEMORY",
    ):
        monkeypatch.delenv(name, raising=False)
    return ray_head
