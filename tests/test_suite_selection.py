"""``pytest`` runs the quick selection; the CI command still runs every test.

The long rounds (200 SIGKILLs, 200 kill-and-resume races, 50 duplicate starts of 20) and the
runs of the real ``claude`` and ``codex`` are marked ``slow``: a plain ``pytest`` leaves
them out, keeping a quick sample of each round (the unmarked variants), and ``.ci/run``
selects them back (docs/performance.md, "The test suite").
"""

from __future__ import annotations

import shlex
import subprocess
import sys

from tests.conftest import REPO

SIGKILL = "tests/faults/test_fault_sigkill.py"
QUICK_SAMPLE = f"{SIGKILL}::test_sigkill_at_random_points_then_resume"


def collected(*args: str) -> list[str]:
    """The test ids pytest would run with these arguments."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return [line for line in done.stdout.splitlines() if "::" in line]


def ci_pytest_arguments() -> list[str]:
    """What ``.ci/run`` passes to pytest, less the worker count."""
    line = next(
        line for line in (REPO / ".ci" / "run").read_text().splitlines() if "&& pytest" in line
    )
    words = shlex.split(line.split("&& pytest", 1)[1])
    if "-n" in words:
        del words[words.index("-n") : words.index("-n") + 2]
    return words


def test_pytest_alone_keeps_a_quick_sample_and_ci_runs_every_round():
    quick = collected(SIGKILL)
    assert QUICK_SAMPLE in quick
    assert not [test_id for test_id in quick if "two_hundred_rounds" in test_id], quick
    everything = collected(*ci_pytest_arguments(), SIGKILL)
    rounds = [test_id for test_id in everything if "two_hundred_rounds" in test_id]
    assert len(rounds) == 4 and QUICK_SAMPLE in everything, everything
