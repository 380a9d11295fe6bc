"""The job's entrypoint refuses a node that does not see the launcher's project folder.

These run the entrypoint as the node would (a real process), without a cluster.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("looprunner_ray", reason="looprunner-ray is not installed")


def run_entry(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "looprunner_ray.entry", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_node_that_sees_another_marker_refuses_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "job.marker"
    marker.write_text("the-token-of-another-folder")
    ran = tmp_path / "engine-ran"
    done = run_entry(
        str(tmp_path), str(marker), "the-launchers-token", "--",
        sys.executable, "-c", f"open({str(ran)!r}, 'w')",
    )  # fmt: skip
    assert done.returncode == 2
    assert f"the project folder {tmp_path} is not the launcher's" in done.stdout
    assert "storage every node mounts at the same path" in done.stdout
    assert not ran.exists()
    assert not marker.with_name("job.marker.seen").exists()


def test_a_node_without_the_marker_refuses(tmp_path: Path) -> None:
    done = run_entry(str(tmp_path), str(tmp_path / "absent.marker"), "t", "--", sys.executable)
    assert done.returncode == 2
    assert "is not the launcher's" in done.stdout


def test_a_node_that_sees_the_marker_acknowledges_it_and_runs_the_engine(tmp_path: Path) -> None:
    marker = tmp_path / "job.marker"
    marker.write_text("tok")
    ran = tmp_path / "engine-ran"
    done = run_entry(
        str(tmp_path), str(marker), "tok", "--",
        sys.executable, "-c", "import os; open('engine-ran', 'w').write(os.getcwd())",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert ran.read_text() == str(tmp_path)  # ran in the project folder
    assert marker.with_name("job.marker.seen").exists()
