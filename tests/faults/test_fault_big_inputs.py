"""Huge lines and huge or deeply nested definition files (issue 10, item 7).

* ``monitor`` reads ``engine.log`` backwards from its end. A single line of many
  megabytes (an agent printing a minified bundle) used to be read whole, and the buffer
  rebuilt on each 64 KiB block (one 64 MB line: 71 s). A line longer than the cap
  (``MAX_LINE_BYTES``, 1 MiB) is now returned as its last 1 MiB behind a marker, and the
  look back stops there: the work is bounded by the lines asked for, never the file.
* A stage or pipeline file larger than ``LOOPRUNNER_MAX_DEFINITION_BYTES`` (1 MiB) or
  nested deeper than ``LOOPRUNNER_MAX_DEFINITION_DEPTH`` (64) is refused before it is
  parsed (size) or while it is (depth): exit 2, one line naming the file, no traceback,
  nothing written. It used to parse for minutes (4 MB of comments: 13.5 s) or die with
  "internal error: RecursionError", exit 1.

Work is measured as bytes read by this process (``rchar`` in ``/proc/self/io``), never
as time.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from looprunner import Pipeline, Stage
from looprunner.errors import ConfigError
from looprunner.store.events import EventLog, last_events
from looprunner.store.logs import last_lines
from tests.faults.faultkit import no_traceback

CAP = 1 << 20  # the documented line cap (docs/reliability.md)
BLOCK = 1 << 16
MARKER = "line truncated"
DEFINITION_CAP = 1 << 20  # LOOPRUNNER_MAX_DEFINITION_BYTES default
DEPTH_CAP = 64  # LOOPRUNNER_MAX_DEFINITION_DEPTH default
IO = Path("/proc/self/io")

Cli = Callable[..., CompletedProcess[str]]


def bytes_read() -> int:
    for line in IO.read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


needs_proc_io = pytest.mark.skipif(not IO.exists(), reason="needs /proc/self/io")


def huge_log(path: Path, megabytes: int = 8) -> None:
    with path.open("wb") as handle:
        handle.write(b"first line\n")
        handle.write(b"x" * (megabytes << 20))
        handle.write(b"\nlast line\n")


@needs_proc_io
def test_last_lines_of_a_huge_line_reads_a_bounded_amount(tmp_path: Path) -> None:
    log = tmp_path / "engine.log"
    huge_log(log)
    before = bytes_read()
    lines = last_lines(log, 5)
    read = bytes_read() - before
    assert lines[-1] == "last line"
    assert len(lines) == 2, [line[:80] for line in lines]  # the look back stops at the cap
    assert MARKER in lines[0]
    assert lines[0].endswith("x" * 100)
    assert len(lines[0]) <= CAP + 200
    assert read <= CAP + 3 * BLOCK, read


@needs_proc_io
def test_last_lines_of_many_short_lines_reads_what_it_returns(tmp_path: Path) -> None:
    log = tmp_path / "engine.log"
    log.write_bytes(b"".join(b"line %d\n" % n for n in range(300_000)))
    before = bytes_read()
    lines = last_lines(log, 2000)
    read = bytes_read() - before
    assert lines == [f"line {n}" for n in range(298_000, 300_000)]
    assert read <= sum(len(line) + 1 for line in lines) + 2 * BLOCK, read


def test_the_last_events_are_read_whole_however_large(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    log = EventLog(path, "big")
    log.append("session_start")
    log.append("iteration_complete", data={"summary": "y" * (3 * CAP)})
    with path.open("ab") as handle:  # a writer died mid-line
        handle.write(b'{"torn": "x' + b"z" * (2 * CAP))
    assert [e.type for e in last_events(path, 1)] == ["iteration_complete"]
    assert len(last_events(path, 1)[0].data["summary"]) == 3 * CAP
    assert log.append("session_complete").seq == 3


def test_monitor_shows_a_huge_line_cut_and_bounded(
    cli: Cli, make_stage: Callable[..., Path], project: Path
) -> None:
    make_stage("work")
    assert cli("start", "big", "--stage", "work", "-n", "1", "--foreground").returncode == 0
    log = project / ".claude" / "pipeline-runs" / "big" / "engine.log"
    with log.open("ab") as handle:
        handle.write(b"y" * (8 << 20) + b"\nafter the huge line\n")
    result = cli("monitor", "big", "-n", "3")
    no_traceback(result)
    assert result.returncode == 0, result.stderr
    assert "after the huge line" in result.stdout
    assert MARKER in result.stdout
    assert len(result.stdout) <= CAP + 4096


def nested(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


def test_a_stage_file_nested_500_deep_exits_2_naming_it(
    cli: Cli, make_stage: Callable[..., Path], project: Path
) -> None:
    make_stage("work", extra=f"options:\n  deep: {nested(500)}\n")
    result = cli("start", "deep", "--stage", "work", "-n", "1", "--foreground")
    no_traceback(result)
    assert result.returncode == 2, (result.returncode, result.stderr[-500:])
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr[-500:]
    assert "stage.yaml:7:" in result.stderr
    assert "LOOPRUNNER_MAX_DEFINITION_DEPTH" in result.stderr
    assert not (project / ".claude").exists()


def test_a_block_style_stage_file_deeper_than_the_limit_is_refused(
    make_stage: Callable[..., Path], project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deep = "".join("  " * (n + 1) + f"k{n}:\n" for n in range(DEPTH_CAP + 5)) + "  " * 70 + "v\n"
    make_stage("work", extra="options:\n" + deep)
    monkeypatch.chdir(project)
    with pytest.raises(ConfigError, match=r"stage\.yaml:\d+:\d+: .*nested deeper than 64"):
        Stage.load("work")
    monkeypatch.setenv("LOOPRUNNER_MAX_DEFINITION_DEPTH", "200")
    assert Stage.load("work").name == "work"


def test_a_stage_file_over_the_size_limit_exits_2_before_parsing(
    cli: Cli, make_stage: Callable[..., Path], project: Path
) -> None:
    comments = ("# " + "c" * 77 + "\n") * (DEFINITION_CAP // 80 + 1000)
    make_stage("work", extra=comments)
    result = cli("start", "huge", "--stage", "work", "-n", "1", "--foreground")
    no_traceback(result)
    assert result.returncode == 2, (result.returncode, result.stderr[-500:])
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr[-500:]
    assert "stage.yaml" in result.stderr
    assert "LOOPRUNNER_MAX_DEFINITION_BYTES" in result.stderr
    assert not (project / ".claude").exists()


def test_the_size_limit_is_set_by_its_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = tmp_path / "p.yaml"
    node = {"id": "work", "stage": "work", "termination": {"type": "fixed", "iterations": 1}}
    pipeline.write_text("name: p\nnodes:\n  - " + json.dumps(node) + "\n" + "#" * 3000 + "\n")
    monkeypatch.setenv("LOOPRUNNER_MAX_DEFINITION_BYTES", "2000")
    with pytest.raises(ConfigError, match=r"p\.yaml: .*more than the limit of 2000 bytes"):
        Pipeline.load(pipeline)
    monkeypatch.setenv("LOOPRUNNER_MAX_DEFINITION_BYTES", "nonsense")  # ignored: 1 MiB
    with pytest.raises(ConfigError, match="unknown stage 'work'"):  # read, then resolved
        Pipeline.load(pipeline)


def test_a_deep_pipeline_file_exits_2_naming_it(cli: Cli, tmp_path: Path, project: Path) -> None:
    pipeline = tmp_path / "deep.yaml"
    pipeline.write_text(f"name: deep\nnodes: {nested(500)}\n")
    result = cli("start", "deep", "--pipeline", str(pipeline), "--foreground")
    no_traceback(result)
    assert result.returncode == 2, (result.returncode, result.stderr[-500:])
    assert "deep.yaml:2:" in result.stderr
    assert not (project / ".claude").exists()
