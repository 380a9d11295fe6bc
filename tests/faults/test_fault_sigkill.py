"""SIGKILL the engine at a random instant, then resume: nothing lost, nothing repeated.

Each round starts a real session (a two-stage pipeline, five iterations in all) in tmux,
SIGKILLs its engine after a random delay and checks what any crash must leave: a
``state.json`` that parses, health ``crashed`` (or ``complete`` if the run won the race),
and a run that ``resume`` finishes with every iteration recorded exactly once — one
``iteration_complete`` per (stage, iteration), event numbers 1..n without a gap, and the
state's counts agreeing. Rounds run four at a time.

The delays come from a seeded RNG; the seed is printed in every failure, and
``LOOPRUNNER_FAULT_SEED=N`` replays it. The range of delays is calibrated on this
machine by one uninterrupted run, so the kills land all over the run (some of them after
its end) on a fast machine and a slow one alike.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import pytest

from looprunner import Pipeline, Session, convert, procinfo
from looprunner.models import Health
from looprunner.names import ProjectPaths
from looprunner.store.events import count_bad_lines, parse_event_line
from looprunner.store.state import previous_path
from looprunner.testing import wait_until
from tests.faults.faultkit import is_live

pytestmark = pytest.mark.tmux

SEED_ENV = "LOOPRUNNER_FAULT_SEED"
PIPELINE = """\
name: two
nodes:
  - id: first
    stage: work
    runs: 2
  - id: second
    stage: work
    runs: 3
"""
EXPECTED = {("first", 1), ("first", 2), ("second", 1), ("second", 2), ("second", 3)}
#: a real agent process that costs next to nothing: reads its prompt, writes its status
SH_AGENT = (
    'cat >/dev/null; printf \'{"decision": "continue", "reason": "sh", '
    '"summary": "iteration %s"}\' "$LOOPRUNNER_ITERATION" > "$LOOPRUNNER_STATUS"'
)


def seed() -> int:
    chosen = os.environ.get(SEED_ENV)
    return int(chosen) if chosen else random.SystemRandom().randrange(2**32)


@contextlib.contextmanager
def replay_hint(text: str) -> Iterator[None]:
    """Prefix any failure with what replays it (the seed, the round, the delay)."""
    try:
        yield
    except Exception as exc:
        raise AssertionError(f"{text}: {type(exc).__name__}: {exc}") from exc


def write_project(project: Path, make_stage, agent: str) -> Pipeline:
    if agent == "mock":
        make_stage("work", termination={"type": "fixed", "iterations": 5})
    else:
        make_stage(
            "work",
            provider="command",
            termination={"type": "fixed", "iterations": 5},
            extra=f"command: {json.dumps(['sh', '-c', SH_AGENT])}\n",
        )
    folder = project / ".looprunner" / "pipelines"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "two.yaml").write_text(PIPELINE)
    return Pipeline.load("two", project=project)


def stamp(value: str | None) -> float:
    assert value is not None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def gone_from_tmux(session: Session) -> bool:
    return session.status().resources.tmux is False


def cut_last_line(path: Path) -> bool:
    """Whether the log ends in a line the kill cut short (no newline, not an event)."""
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return False
    return parse_event_line(data.rsplit(b"\n", 1)[-1]) is None


def verify_complete(session: Session, *, resumed: bool, cut: int = 0) -> None:
    final = session.status()
    assert final.health is Health.COMPLETE, final
    events = list(session.events())
    seqs = [e.seq for e in events]
    assert seqs == list(range(1, len(seqs) + 1)), f"gaps or repeats in seq: {seqs}"
    done = Counter((e.stage, e.iteration) for e in events if e.type == "iteration_complete")
    assert set(done) == EXPECTED and set(done.values()) == {1}, done
    assert [s.iterations_completed for s in final.state.stages] == [2, 3]
    assert final.state.iteration_completed == 3
    types = [e.type for e in events]
    # a session_start lost to a kill before it was written is rebuilt by resume
    assert types.count("session_start") == 1, types
    assert types.count("session_resumed") == (1 if resumed else 0), types
    assert types.count("stage_complete") == 2, types
    # the line a kill cut stays where it was (the log is only appended to); nothing else
    assert count_bad_lines(session.paths.events_file) == cut


def kill_round(project: Path, pipeline: Pipeline, name: str, delay: float, hint: str) -> str:
    """Start, SIGKILL after ``delay``, check, resume, check; return what the kill hit."""
    with replay_hint(hint):
        session = Session.start(name, pipeline, project)
        state = session.status().state
        assert state is not None
        pid, started = state.pid, state.pid_start_time
        time.sleep(delay)  # the random instant is the point of the test, not a wait
        if procinfo.is_alive(pid, started, state.boot_id):
            os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not is_live(pid), timeout=30, what="the engine to die")
        wait_until(lambda: gone_from_tmux(session), timeout=30, what="its tmux session to close")
        paths = ProjectPaths.of(project).session(name)
        after = convert.state_from_json(paths.state_file.read_text())  # the file itself parses
        if previous_path(paths.state_file).exists():
            convert.state_from_json(previous_path(paths.state_file).read_text())
        status = session.status()
        assert status.health in (Health.CRASHED, Health.COMPLETE), status
        assert status.state == after
        # state is written before its event: never behind the log, at most one ahead
        logged = Counter(e.stage for e in session.events() if e.type == "iteration_complete")
        for stage in after.stages:
            behind = stage.iterations_completed - logged[stage.id]
            assert behind in (0, 1), (stage, logged)
        # Linux stops a write() for SIGKILL at a page boundary of the file, so a kill can
        # cut the line being written (and only that one: the last) -- never a line before
        cut = count_bad_lines(paths.events_file)
        assert cut == 0 or (cut == 1 and cut_last_line(paths.events_file)), cut
        if status.health is Health.COMPLETE:
            verify_complete(session, resumed=False, cut=cut)
            return "after the end"
        assert "died" in (status.detail or ""), status.detail
        where = f"{after.current.id} {after.iteration_completed}/{after.current.max_iterations}"
        session.resume()
        final = session.wait(timeout=120)
        assert final.health is Health.COMPLETE, final
        verify_complete(session, resumed=True, cut=cut)
        return where


def run_rounds(project: Path, make_stage, *, agent: str, rounds: int, chunk: int) -> None:
    pipeline = write_project(project, make_stage, agent)
    base = seed()
    rng = random.Random(f"{base}-{chunk}")
    # calibrate: how long does an uninterrupted run take here?
    baseline = Session.start("calibrate", pipeline, project)
    final = baseline.wait(timeout=120)
    assert final.health is Health.COMPLETE and final.state is not None
    took = stamp(final.state.finished_at) - stamp(final.state.started_at)
    # four rounds run at once and each is slower than the lone calibration run: twice its
    # length puts a share of the kills after the end
    span = max(took, 0.05) * 2
    delays = [rng.uniform(0, span) for _ in range(rounds)]
    hints = [
        f"{SEED_ENV}={base} chunk {chunk} round {n} (kill after {d:.3f}s of {span:.3f}s)"
        for n, d in enumerate(delays)
    ]
    with ThreadPoolExecutor(max_workers=4) as pool:
        hits = list(
            pool.map(
                lambda n: kill_round(project, pipeline, f"k{n}", delays[n], hints[n]),
                range(rounds),
            )
        )
    assert len(hits) == rounds


def test_sigkill_at_random_points_then_resume(project, tmux_keeper, make_stage):
    run_rounds(project, make_stage, agent="mock", rounds=6, chunk=0)


@pytest.mark.slow
@pytest.mark.parametrize("chunk", range(4))
def test_sigkill_at_random_points_two_hundred_rounds(project, tmux_keeper, make_stage, chunk):
    """R=200 in all: 4 chunks of 50 (spread over workers), four sessions at a time."""
    run_rounds(project, make_stage, agent="sh", rounds=50, chunk=chunk + 1)


def test_a_crash_before_a_stages_first_agent_logs_its_stage_start_once(
    project, make_stage, cli, tmux_keeper
):
    make_stage("work", termination={"type": "fixed", "iterations": 2})
    started = cli("start", "st", "--stage", "work", env={"LOOPRUNNER_CRASH_AT": "before_agent:1"})
    assert started.returncode == 0, started.stderr
    session = Session("st", project)
    wait_until(lambda: session.status().health is Health.CRASHED, what="the crash")
    assert cli("resume", "st").returncode == 0
    assert cli("wait", "st", "--timeout", "60").returncode == 0
    types = [e.type for e in session.events()]
    assert types.count("stage_start") == 1, types
