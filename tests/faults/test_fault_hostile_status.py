"""A hostile ``status.json`` and a flood of output (issue 10, item 5).

An agent is an untrusted program: it decides what its ``status.json`` is. Each test runs
a real engine (``start --foreground``) on a ``command``-provider agent that does one
hostile thing, and checks what a user sees: the exit code, ``state.json``'s error, the
event log, ``engine.log``, ``output.md``.

* a FIFO at the status path used to block the engine forever (past any stage timeout);
* a symlink to ``/dev/zero`` was read without bound (the engine runs under an address
  space limit here, so the old code fails instead of eating the machine's memory);
* a status over ``LOOPRUNNER_MAX_STATUS_BYTES`` (1 MiB) was read whole and its
  ``reason`` copied into the events, the state and the next ``context.json``;
* ``reason`` and ``summary`` are now kept to ``LOOPRUNNER_MAX_REASON_BYTES`` (4 KiB)
  each, marked with how much was cut;
* output past ``LOOPRUNNER_MAX_OUTPUT_BYTES`` (16 MiB) was silently dropped from
  ``output.md`` and written whole to ``engine.log``; the rest is now counted and said.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

from looprunner.names import ProjectPaths
from tests.faults.faultkit import no_traceback

#: a generous bound on a run that must end quickly (the FIFO used to block forever)
DEADLINE = 90

AGENT = r"""
import json, os, sys
from pathlib import Path

sys.stdin.read()
status = Path(os.environ["LOOPRUNNER_STATUS"])
iteration = int(os.environ["LOOPRUNNER_ITERATION"])
how = sys.argv[1]
if how == "fifo":
    os.mkfifo(status)
elif how == "zero":
    status.symlink_to("/dev/zero")
elif how == "dir":
    status.mkdir()
elif how == "big":
    status.write_text(json.dumps({"decision": "continue", "reason": "r" * (2 << 20)}))
elif how == "long":
    status.write_text(json.dumps(
        {"decision": "continue", "reason": "R" * 200_000, "summary": "S" * 100_000}
    ))
elif how == "flood":
    out = sys.stdout.buffer
    for _ in range(int(sys.argv[2])):
        out.write(b"f" * 999 + b"\n")
    out.flush()
    status.write_text(json.dumps({"decision": "continue", "summary": "flooded"}))
"""


def agent_stage(project: Path, tmp_path: Path, *argv: str, iterations: int = 1) -> None:
    script = tmp_path / "hostile_agent.py"
    script.write_text(AGENT)
    folder = project / ".looprunner" / "stages" / "work"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "stage.yaml").write_text(
        "name: work\nprovider: command\n"
        f"command: {json.dumps([sys.executable, str(script), *argv])}\n"
        f"termination:\n  type: fixed\n  iterations: {iterations}\n"
    )
    (folder / "prompt.md").write_text("Write ${STATUS}.\n")


def limit_memory() -> None:  # pragma: no cover - runs in the child
    """Cap the engine's address space: an unbounded read fails instead of eating RAM."""
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


def run(
    project: Path, name: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    argv = ["start", name, "--stage", "work", "--foreground"]
    result = subprocess.run(
        [sys.executable, "-m", "looprunner", "--project", str(project), *argv],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=DEADLINE,
        preexec_fn=limit_memory,
        check=False,
    )
    no_traceback(result)
    return result


def state_of(project: Path, name: str) -> dict[str, Any]:
    paths = ProjectPaths.of(project).session(name)
    data: dict[str, Any] = json.loads(paths.state_file.read_text())
    return data


def events_of(project: Path, name: str) -> list[dict[str, Any]]:
    text = ProjectPaths.of(project).session(name).events_file.read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def assert_refused(
    project: Path, name: str, result: subprocess.CompletedProcess[str], why: str
) -> None:
    assert result.returncode == 1, (result.stdout[-2000:], result.stderr[-2000:])
    error = state_of(project, name)["error"]
    assert error["type"] == "status_invalid", error
    assert "status.json" in error["message"] and why in error["message"], error
    failed = [e for e in events_of(project, name) if e["type"] == "iteration_failed"]
    assert failed and why in failed[0]["data"]["message"], failed


def test_a_fifo_at_the_status_path_fails_the_iteration_at_once(project, tmp_path):
    agent_stage(project, tmp_path, "fifo")
    result = run(project, "fifo")
    assert_refused(project, "fifo", result, "not a regular file")


def test_a_status_symlink_to_dev_zero_is_refused_unread(project, tmp_path):
    agent_stage(project, tmp_path, "zero")
    result = run(project, "zero")
    assert_refused(project, "zero", result, "symbolic link")


def test_a_status_folder_is_not_a_regular_file(project, tmp_path):
    agent_stage(project, tmp_path, "dir")
    result = run(project, "dir")
    assert_refused(project, "dir", result, "not a regular file")


def test_a_status_over_the_size_limit_is_refused(project, tmp_path):
    agent_stage(project, tmp_path, "big")
    result = run(project, "big")
    assert_refused(project, "big", result, "larger than 1048576 bytes")
    assert "LOOPRUNNER_MAX_STATUS_BYTES" in state_of(project, "big")["error"]["message"]
    events_size = ProjectPaths.of(project).session("big").events_file.stat().st_size
    assert events_size < 64 * 1024, events_size


def test_the_size_limit_is_an_option(project, tmp_path):
    agent_stage(project, tmp_path, "long")
    result = run(project, "small", env={"LOOPRUNNER_MAX_STATUS_BYTES": "1000"})
    assert_refused(project, "small", result, "larger than 1000 bytes")


def test_a_long_reason_and_summary_are_cut_and_marked_everywhere(project, tmp_path):
    agent_stage(project, tmp_path, "long", iterations=2)
    result = run(project, "long")
    assert result.returncode == 0, result.stderr
    paths = ProjectPaths.of(project).session("long")
    done = [e for e in events_of(project, "long") if e["type"] == "iteration_complete"]
    assert len(done) == 2
    for event in done:
        reason, summary = event["data"]["reason"], event["data"]["summary"]
        assert reason.startswith("R" * 4096) and len(reason) < 4096 + 100, len(reason)
        assert "[looprunner: 195904 more bytes of reason not kept]" in reason
        assert summary.startswith("S" * 4096) and len(summary) < 4096 + 100, len(summary)
        assert "[looprunner: 95904 more bytes of summary not kept]" in summary
    context = json.loads(
        (paths.stage_dir(0, "work") / "iterations" / "002" / "context.json").read_text()
    )
    assert len(context["previous"]["reason"]) < 4096 + 100
    assert "more bytes of reason not kept" in context["previous"]["reason"]
    assert paths.events_file.stat().st_size < 64 * 1024
    assert paths.state_file.stat().st_size < 64 * 1024


def test_output_past_the_cap_is_counted_and_said(project, tmp_path):
    lines = 1000  # 1,000,000 bytes of output
    agent_stage(project, tmp_path, "flood", str(lines))
    cap = 100_000
    result = run(project, "flood", env={"LOOPRUNNER_MAX_OUTPUT_BYTES": str(cap)})
    assert result.returncode == 0, result.stderr
    dropped = lines * 1000 - cap
    marker = f"[looprunner: {dropped} bytes of output not kept]"
    paths = ProjectPaths.of(project).session("flood")
    log = paths.engine_log.read_text()
    assert marker in log
    assert log.count("f" * 999) <= cap // 999 + 1
    assert len(log) < cap + 16 * 1024
    output = (paths.stage_dir(0, "work") / "iterations" / "001" / "output.md").read_text()
    assert output.rstrip().endswith(marker)
    assert len(output) < cap + 1024
    done = [e for e in events_of(project, "flood") if e["type"] == "iteration_complete"]
    assert done[0]["data"]["output_truncated_bytes"] == dropped
