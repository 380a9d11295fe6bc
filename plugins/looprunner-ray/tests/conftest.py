"""Fixtures of the looprunner-ray tests: one real local Ray head for the whole test run.

The head (:mod:`looprunner_ray.local`) serves the Jobs API on 127.0.0.1, with a pinned
CPU count and a short temp folder of its own, in a process group of its own that is
ended at the end of the run: nothing of anyone else's Ray is touched. Every test that
needs it is marked ``ray`` and ``xdist_group("ray")``: under ``pytest -n auto`` (which
distributes with ``--dist loadgroup``, see pyproject.toml) they all run in one worker,
so one head serves the whole run. A test that needs a second node gets a worker node
joined to that head for its own duration (``ray_worker``). Every test marked ``ray`` is
skipped, with the reason, where ``ray`` is not installed
(``pip install -e plugins/looprunner-ray``).
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from looprunner_ray.local import LocalCluster, LocalNode

#: CPUs of the head; a worker node gets more, so an engine that reserves them lands there
HEAD_CPUS = 2
WORKER_CPUS = 3


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker (looprunner runs pytest with --strict-markers)."""
    config.addinivalue_line("markers", "ray: needs Ray; starts (or shares) a local Ray head")


def _have_ray_command() -> bool:
    return Path(sys.executable).with_name("ray").exists() or shutil.which("ray") is not None


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[LocalCluster]:
    """Start the local Ray head for the test run; stop it (and any worker) at the end."""
    pytest.importorskip("ray.job_submission", reason="ray[default] is not installed")
    if not _have_ray_command():
        pytest.skip("the ray command is not installed")
    from looprunner_ray import local

    cluster = local.start(num_cpus=HEAD_CPUS)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def ray_head(ray_cluster: LocalCluster) -> str:
    """The shared head's Jobs API address."""
    return ray_cluster.address


@pytest.fixture
def ray_worker(ray_cluster: LocalCluster) -> Iterator[LocalNode]:
    """A second node (``WORKER_CPUS`` CPUs, more than the head has) for one test."""
    node = ray_cluster.add_worker(num_cpus=WORKER_CPUS)
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
