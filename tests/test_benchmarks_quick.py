"""CI runs the benchmark suite in its quick mode: every benchmark must run to its end.

Figures are reported, never asserted (speed is measured in benchmarks/, see
docs/performance.md); what this checks is that each measurement still works.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.tmux]


def test_quick_benchmarks_run_and_report_every_target(tmp_path: Path, tmux_socket: str) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "run.py"), "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        env={**os.environ, "LOOPRUNNER_TMUX_SOCKET": tmux_socket},
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    report = json.loads((tmp_path / "latest.json").read_text())
    names = {row["name"] for row in report["results"]}
    assert len(names) == 16, names
    by_name = {row["name"]: row for row in report["results"]}
    gap = by_name["iteration gap beyond a shell loop"]
    assert gap["floor_ms"] > 0 and gap["gap_ms"] > 0  # the floor is measured in the same run
    assert gap["rounds_beyond_ms"] == [gap["figure"]]  # --quick: one round, and it is the figure
    concurrent = by_name["concurrent sessions complete"]
    assert concurrent["figure"] == 10 and concurrent["sessions_with_lost_events"] == 0
    assert by_name["`looprunner list --json` process"]["tmux_calls_per_list"] == 1
