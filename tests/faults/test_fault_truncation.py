"""``state.json`` and ``events.jsonl`` cut at every byte offset: readers never crash.

One real run is built first; then, for every offset, a copy of its run directory with
the file cut there is written under a session name of its own. The library is asked
about each (``Session.list`` once over all of them, ``Session.status``, ``events``,
``tail``, ``output``), and the real command line about a sample (``status --json``,
``tail``, ``monitor``; ``list`` over every copy at once).

What must hold:

* a torn event line is skipped — the events read are exactly the whole lines before
  the cut — and ``count_bad_lines`` reports it;
* a torn ``state.json`` is rebuilt from the log, exactly (from ``state.prev.json``
  brought forward, or from the log alone); with no log either the health is
  ``unknown`` ("state.json cannot be read"), never a traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from looprunner import Session, SessionError, convert
from looprunner.models import Event, Health
from looprunner.names import ProjectPaths
from looprunner.store.events import count_bad_lines, parse_event_line, read_events
from tests.faults.faultkit import no_traceback

pytestmark = pytest.mark.tmux

RUN_FILES = ("state.json", "state.prev.json", "events.jsonl", "pipeline.yaml", "engine.log")


@pytest.fixture
def finished_run(project: Path, make_stage, cli, tmux_keeper) -> Path:
    """A real run of three iterations, finished; returns its run directory."""
    make_stage(
        "work",
        termination={"type": "fixed", "iterations": 3},
        outputs={"default": "some output\n"},
    )
    assert cli("start", "source", "--stage", "work").returncode == 0
    waited = cli("wait", "source", "--timeout", "60")
    assert waited.returncode == 0, waited.stdout + waited.stderr
    run = ProjectPaths.of(project).session("source").run_dir
    for name in RUN_FILES:
        assert (run / name).is_file(), f"the finished run has no {name}"
    return run


def renamed(source: Path, file: str, name: str) -> bytes:
    """The source run's ``file`` as session ``name`` would have written it."""
    data = (source / file).read_bytes()
    if file.endswith(".json"):
        return data.replace(b'"session": "source"', f'"session": "{name}"'.encode())
    if file.endswith(".jsonl"):
        return data.replace(b'"session":"source"', f'"session":"{name}"'.encode())
    return data


def plant(project: Path, source: Path, name: str, replace: dict[str, bytes | None]) -> Path:
    """Write a run directory for session ``name``: the source's files, some replaced."""
    run = ProjectPaths.of(project).session(name).run_dir
    run.mkdir(parents=True)
    for file in RUN_FILES:
        data = replace[file] if file in replace else renamed(source, file, name)
        if data is not None:
            (run / file).write_bytes(data)
    return run


def whole_events(prefix: bytes) -> tuple[list[Event], int]:
    """The events a prefix of the log holds, and how many torn lines it ends with."""
    events, bad = [], 0
    for raw in prefix.split(b"\n"):
        if not raw.strip():
            continue
        event = parse_event_line(raw)
        if event is None:
            bad += 1
        else:
            events.append(event)
    return events, bad


def cli_json(project: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], Any]:
    done = subprocess.run(
        [sys.executable, "-m", "looprunner", "--project", str(project), "--json", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    no_traceback(done)
    return done, json.loads(done.stdout) if done.stdout.strip() else None


def test_events_cut_at_every_offset_read_as_the_whole_lines_before_the_cut(project, finished_run):
    size = len((finished_run / "events.jsonl").read_bytes())
    expected: dict[str, tuple[list[Event], int]] = {}
    for offset in range(size + 1):
        name = f"e{offset:05d}"  # same length for every offset: the same file size
        full = renamed(finished_run, "events.jsonl", name)
        assert full.count(b"\n") >= 10 and len(full) == size
        plant(project, finished_run, name, {"events.jsonl": full[:offset]})
        expected[name] = whole_events(full[:offset])
    listed = {status.session: status for status in Session.list(project)}
    for name, (events, bad) in expected.items():
        where = f"events.jsonl cut at byte {int(name[1:])} of {size}"
        session = Session(name, project)
        log = session.paths.events_file
        assert read_events(log) == events, where
        assert count_bad_lines(log) == bad, where
        assert bad <= 1, "a cut tears one line at most"
        assert list(session.events()) == events, where
        assert list(session.tail()) == events, where
        assert listed[name].health is Health.COMPLETE, where
    assert listed["source"].health is Health.COMPLETE


@pytest.mark.parametrize("keep_previous", [True, False], ids=["with-prev", "without-prev"])
def test_state_cut_at_every_offset_is_rebuilt_from_the_log(project, finished_run, keep_previous):
    """The log is the record: a cut state.json is rebuilt from it, exactly, with or
    without ``state.prev.json`` (the run's first state, which the log brings forward)."""
    size = len((finished_run / "state.json").read_bytes())
    seqs = [e.seq for e in read_events(finished_run / "events.jsonl")]
    cuts = {}
    for offset in range(size + 1):
        name = f"s{offset:05d}"  # as long as "source": every copy has the same size
        full = renamed(finished_run, "state.json", name)
        assert len(full) == size
        replace: dict[str, bytes | None] = {"state.json": full[:offset]}
        if not keep_previous:
            replace["state.prev.json"] = None
        plant(project, finished_run, name, replace)
        cuts[name] = offset
    listed = {status.session: status for status in Session.list(project)}
    for n, (name, offset) in enumerate(cuts.items()):
        where = f"state.json cut at byte {offset} of {size}"
        state = convert.state_from_json(renamed(finished_run, "state.json", name).decode())
        previous = convert.state_from_json(renamed(finished_run, "state.prev.json", name).decode())
        assert previous != state and previous.session == name
        status = listed[name]
        assert status.state == state and status.health is Health.COMPLETE, where
        session = Session(name, project)
        assert [e.seq for e in session.events()] == seqs, where
        if n % 4 == 0:  # output() asks tmux again: a sample is enough
            source, lines = session.output(20)
            assert source == "engine.log" and lines, where


def test_a_cut_state_without_a_log_to_rebuild_it_reads_as_unknown(project, finished_run):
    """Nothing to rebuild from (the log gone too): health unknown, never a traceback."""
    full = renamed(finished_run, "state.json", "nolog")
    replace = {"state.json": full[: len(full) // 2], "state.prev.json": None, "events.jsonl": None}
    plant(project, finished_run, "nolog", replace)
    status = Session("nolog", project).status()
    assert status.state is None and status.health is Health.UNKNOWN
    assert status.detail == "state.json cannot be read"


def test_a_sample_of_cuts_through_the_command_line(project, finished_run):
    """Real processes, on a sample of offsets: exit 0 with an answer, never a traceback."""

    def first_line_half(data: bytes) -> bytes:
        return data[: data.index(b"\n") // 2]

    cutters = {
        "ev-empty": ("events.jsonl", lambda data: b""),
        "ev-mid-first-line": ("events.jsonl", first_line_half),
        "ev-mid-last-line": ("events.jsonl", lambda data: data[:-40]),
        "ev-no-final-newline": ("events.jsonl", lambda data: data[:-1]),
        "st-empty": ("state.json", lambda data: b""),
        "st-half": ("state.json", lambda data: data[: len(data) // 2]),
        "st-half-no-prev": ("state.json", lambda data: data[: len(data) // 2]),
        "st-half-no-log": ("state.json", lambda data: data[: len(data) // 2]),
        "st-no-final-newline": ("state.json", lambda data: data[:-1]),
    }
    samples: dict[str, dict[str, bytes | None]] = {}
    for name, (file, cut) in cutters.items():
        samples[name] = {file: cut(renamed(finished_run, file, name))}
        if name.endswith(("no-prev", "no-log")):
            samples[name]["state.prev.json"] = None
        if name.endswith("no-log"):
            samples[name]["events.jsonl"] = None
        plant(project, finished_run, name, samples[name])
    commands = {
        (name, what): subprocess.Popen(
            [sys.executable, "-m", "looprunner", "--project", str(project), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in samples
        for what, args in (
            ("status", ("--json", "status", name)),
            ("tail", ("--json", "tail", name)),
            ("monitor", ("monitor", name, "-n", "5")),
        )
    }
    answers = {}
    for key, proc in commands.items():
        out, err = proc.communicate(timeout=120)
        result = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
        no_traceback(result)
        assert proc.returncode == 0, (key, out, err)
        answers[key] = out
    for name, replace in samples.items():
        status = json.loads(answers[name, "status"])
        tail = [json.loads(line) for line in answers[name, "tail"].splitlines()]
        cut = replace.get("events.jsonl") or renamed(finished_run, "events.jsonl", name)
        if name in ("ev-empty", "st-half-no-log"):
            cut = b""
        assert [e["seq"] for e in tail] == [e.seq for e in whole_events(cut)[0]], name
        if name == "st-half-no-log":  # nothing left to rebuild it from
            assert status["health"] == "unknown", status
        else:  # a cut state is rebuilt from the log
            assert status["health"] == "complete", (name, status)
        assert name in answers[name, "monitor"]
    done, listed = cli_json(project, "list")
    assert done.returncode == 0
    assert {entry["session"] for entry in listed} == {"source", *samples}
    text = subprocess.run(
        [sys.executable, "-m", "looprunner", "--project", str(project), "list"],
        capture_output=True,
        text=True,
        check=False,
    )
    no_traceback(text)
    assert text.returncode == 0 and "st-half-no-prev" in text.stdout


def test_a_torn_state_of_a_finished_run_is_rebuilt_and_not_run_again(project, finished_run):
    full = (finished_run / "state.json").read_bytes()
    plant(project, finished_run, "torn", {"state.json": full[: len(full) // 3]})
    session = Session("torn", project)
    status = session.status()
    assert status.health is Health.COMPLETE, "the log says the run completed"
    assert status.state == convert.state_from_json(
        renamed(finished_run, "state.json", "torn").decode()
    )
    with pytest.raises(SessionError, match="already completed"):
        session.resume()
    done = [(e.stage, e.iteration) for e in session.events() if e.type == "iteration_complete"]
    assert done == [("work", 1), ("work", 2), ("work", 3)]
