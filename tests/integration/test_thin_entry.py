"""``status``, ``list``, ``tail`` and ``wait`` answer the same through either entry.

``python -m looprunner`` runs these commands without click (``looprunner.cli.quick``);
``looprunner.cli.app.main`` is the click command line they were written for. Every
answer, error and exit code must be the same, so the thin entry is a cost saved, never
a second behaviour.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from looprunner.testing.kit import wait_until

#: ages and durations move on between two runs a moment apart
AGE = re.compile(r"\b\d+[smhd](\d+[smh])?\b")

ASKED = [
    ("status", "done"),
    ("--json", "status", "done"),
    ("status", "live", "--json"),
    ("status", "live"),
    ("list",),
    ("--json", "list"),
    ("list", "--sort", "age", "--health", "complete,running"),
    ("tail", "done"),
    ("--json", "tail", "-n", "2", "done"),
    ("tail", "live", "--lines=1"),
    ("wait", "done", "--timeout", "5"),
    ("--json", "wait", "done"),
    ("wait", "live", "--timeout", "0.2"),
    ("status", "nope"),
    ("--json", "status", "nope"),
    ("tail", "nope"),
]


def through_click(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the click command line itself, as it ran before the thin entry."""
    code = "import sys; from looprunner.cli.app import main; main(sys.argv[1:])"
    return subprocess.run(
        [sys.executable, "-c", code, "--project", str(project), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


#: a column is as wide as its widest age: 9s in one run and 10s in the next pad differently
PADDING = re.compile(r" {2,}")


def answer(done: subprocess.CompletedProcess[str]) -> tuple[int, str, str]:
    def steady(text: str) -> str:
        return PADDING.sub("  ", AGE.sub("AGE", text))

    return done.returncode, steady(done.stdout), steady(done.stderr)


@pytest.mark.tmux
def test_the_thin_entry_answers_as_the_click_command_line_does(project: Path, make_stage, cli):
    make_stage("work", termination={"type": "fixed", "iterations": 2})
    make_stage("slow", termination={"type": "fixed", "iterations": 2}, extra="mock_delay: 60\n")
    assert cli("start", "done", "--stage", "work", "--foreground").returncode == 0
    assert cli("start", "live", "--stage", "slow").returncode == 0

    def first_iteration_running() -> bool:
        shown = json.loads(cli("--json", "status", "live").stdout)
        return shown["health"] == "running" and shown["iteration"] == 1

    wait_until(first_iteration_running, timeout=60, what="live's first iteration")
    try:
        for args in ASKED:
            assert answer(cli(*args)) == answer(through_click(project, *args)), args
    finally:
        cli("kill", "live", "--yes")
