"""Many ``looprunner start NAME`` at the same instant: exactly one engine, nothing half-written.

Each round releases N processes together (a shared start pipe: each blocks reading it,
and closing its write end wakes them all), all starting the same new session. Exactly
one may win: one exit 0, one engine holding the lock, recorded in state and running in
the one tmux session; every other process exits 3 saying the session is already
running or already exists, and leaves no trace. The sessions run a gated agent, so
each round is checked while its engine sits idle waiting for the agent, then released.

The fast variant runs real ``python -m looprunner start`` interpreters; the slow one
forks them from a warm interpreter (``racer.py``) to afford 50 rounds of 20.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from looprunner import Session, convert, procinfo
from looprunner.models import Health
from looprunner.names import ProjectPaths
from looprunner.store import lock as lockmod
from looprunner.store.events import count_bad_lines, read_events
from tests.faults.faultkit import Gate, engine_pids

pytestmark = pytest.mark.tmux

RACER = Path(__file__).with_name("racer.py")
REFUSALS = ("already running", "already exists")
#: what a loser must never say in the instant between the winner's launch and its
#: engine taking the lock (the session is starting, not orphaned)
MISDIAGNOSIS = "exists but no engine holds the lock"


def tmux_sessions(socket: str) -> list[str]:
    done = subprocess.run(
        ["tmux", "-L", socket, "list-sessions", "-F", "#{session_name}"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.split()


def pane_pid(socket: str, name: str) -> int:
    done = subprocess.run(
        ["tmux", "-L", socket, "list-panes", "-t", f"=pipeline-{name}:", "-F", "#{pane_pid}"],
        capture_output=True,
        text=True,
        check=True,
    )
    [pid] = done.stdout.split()
    return int(pid)


def check_round(
    project: Path, socket: str, gate: Gate, name: str, results: list[dict], where: str
) -> None:
    """Exactly one winner, every loser refused cleanly, one engine, nothing half-written."""
    codes = sorted(r["code"] for r in results)
    assert codes == [0] + [3] * (len(results) - 1), (where, results)
    for result in results:
        text = result["stdout"] + result["stderr"]
        assert "Traceback" not in text and "internal error" not in text, (where, result)
        if result["code"] == 3:
            lines = result["stderr"].splitlines()
            assert len(lines) == 1 and lines[0].startswith("looprunner: error: "), (where, result)
            assert any(word in lines[0] for word in REFUSALS), (where, result)
            assert MISDIAGNOSIS not in lines[0], (where, result)
            assert result["stdout"] == "", (where, result)
    # the engine is idle once its agent runs: look at everything now
    agent = gate.wait_started(name, 1)
    paths = ProjectPaths.of(project).session(name)
    state = convert.state_from_json(paths.state_file.read_text())  # the file itself parses
    assert state.status == "running" and state.agent_pid == agent, where
    assert procinfo.is_alive(state.pid, state.pid_start_time, state.boot_id), where
    probe = lockmod.probe(paths.lock_file)
    assert probe.held and probe.metadata["pid"] == state.pid, (where, probe)
    assert engine_pids(project, name) == [state.pid], where
    assert f"pipeline-{name}" in tmux_sessions(socket), where
    assert pane_pid(socket, name) == state.pid, "the one tmux session runs the one engine"
    # nothing half-written, nothing moved aside, no second run
    runs = paths.run_dir.parent
    assert sorted(p.name for p in runs.iterdir() if p.name.startswith(name)) == [name], where
    leftovers = [p for p in paths.run_dir.rglob("*") if p.name.startswith((".tmp-", ".env"))]
    assert leftovers == [], (where, leftovers)
    assert count_bad_lines(paths.events_file) == 0, where
    types = [e.type for e in read_events(paths.events_file)]
    assert types.count("session_start") == 1 and "session_resumed" not in types, (where, types)
    convert.load_resolved_pipeline(paths.pipeline_file)
    assert Session(name, project).status().health is Health.RUNNING, where


def check_all_finished(project: Path, names: list[str]) -> None:
    for name in names:
        session = Session(name, project)
        final = session.wait(timeout=120)
        assert final.health is Health.COMPLETE, (name, final)
        events = list(session.events())
        assert [e.seq for e in events] == list(range(1, len(events) + 1)), name
        types = [e.type for e in events]
        assert types.count("session_start") == 1, (name, types)
        assert types.count("iteration_complete") == 1, (name, types)
        assert types[-1] == "session_complete", (name, types)
    paths = ProjectPaths.of(project)
    assert sorted(p.name for p in paths.runs.iterdir()) == sorted(names), "no extra runs"


def test_duplicate_start_of_real_processes_gives_one_engine(
    project, tmux_keeper, tmux_socket, tmp_path
):
    """N=5 real ``python -m looprunner start`` processes, released together, 3 rounds."""
    gate = Gate(tmp_path / "gate")
    gate.stage(project)
    count, rounds = 5, 3
    names = []
    for round_no in range(rounds):
        name = f"dup-{round_no}"
        names.append(name)
        read_end, write_end = os.pipe()
        argv = [sys.executable, "-m", "looprunner", "--project", str(project)]
        argv += ["start", name, "--stage", "work"]
        # each process blocks reading the shared pipe, then becomes the real command line
        waiter = "import os, sys; os.read(0, 1); os.execv(sys.argv[1], sys.argv[1:])"
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", waiter, *argv],
                stdin=read_end,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(count)
        ]
        os.close(read_end)
        os.close(write_end)  # go: every waiter reads end-of-file at once
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            results.append({"code": proc.returncode, "stdout": out, "stderr": err})
        check_round(project, tmux_socket, gate, name, results, f"round {round_no}")
        gate.release(name)
    check_all_finished(project, names)


@pytest.mark.slow
@pytest.mark.parametrize("chunk", range(5))
def test_duplicate_start_fifty_rounds_of_twenty(project, tmux_keeper, tmux_socket, tmp_path, chunk):
    """N=20 processes per round, R=50 rounds in all (5 chunks of 10, spread over workers)."""
    gate = Gate(tmp_path / "gate")
    gate.stage(project)
    count, rounds = 20, 10
    racer = subprocess.Popen(
        [sys.executable, str(RACER), str(project), str(count), str(tmp_path / "racer")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert racer.stdin is not None and racer.stdout is not None
    names = []
    try:
        assert racer.stdout.readline().strip() == "ready"
        for round_no in range(rounds):
            name = f"dup-{chunk}-{round_no}"
            names.append(name)
            racer.stdin.write(json.dumps(["start", name, "--stage", "work"]) + "\n")
            racer.stdin.flush()
            results = json.loads(racer.stdout.readline())
            check_round(
                project, tmux_socket, gate, name, results, f"chunk {chunk} round {round_no}"
            )
            gate.release(name)
    finally:
        racer.stdin.close()
        racer.wait(timeout=60)
        racer.stdout.close()
    check_all_finished(project, names)


def test_a_start_racing_another_ones_engine_startup_says_already_running(
    project, make_stage, cli, tmux_socket
):
    make_stage("work", termination={"type": "fixed", "iterations": 1})
    # the instant a loser sees: the winner launched its engine, which has no lock yet
    run_dir = ProjectPaths.of(project).session("starting").run_dir
    run_dir.mkdir(parents=True)
    subprocess.run(
        ["tmux", "-L", tmux_socket, "new-session", "-d", "-s", "pipeline-starting", "sleep", "600"],
        check=True,
    )
    subprocess.run(
        [
            "tmux",
            "-L",
            tmux_socket,
            "set-option",
            "-t",
            "=pipeline-starting:",
            "@looprunner",
            str(project),
        ],
        check=True,
    )
    refused = cli("start", "starting", "--stage", "work")
    assert refused.returncode == 3
    assert json.loads(cli("--json", "cleanup").stdout)["problems"] == [], "nothing to clean"
    assert any(word in refused.stderr for word in REFUSALS), refused.stderr
