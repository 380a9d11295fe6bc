"""Commands racing a launch: no command records an ending that the session then contradicts.

``resume NAME & sleep 0.2; kill NAME --yes`` used to exit 0 printing "killed" while the
resumed engine ran on to ``complete``: the launcher let go of the lock before its engine
took it, ``kill`` recorded ``killed`` in that gap and deleted the lock file, and the
engine took a fresh lock and carried on. ``cleanup --fix`` did the same with "marked
crashed", and ``kill`` racing ``start --force`` exited 0 without killing anything.

Each round races two real command lines, forked from a warm interpreter (``racer.py``)
and released together, the second one a random offset later:

* ``resume NAME`` and ``kill NAME --yes``, on a crashed session;
* ``start NAME --force`` and ``kill NAME --yes``, on a finished session;
* ``resume NAME`` and ``cleanup --fix --yes``, on a crashed session.

Several rounds run at once, each session in a project of its own (``cleanup`` looks at a
whole project). After each round, once the session has settled:

* every nonzero exit is one ``looprunner: error:`` line, never a traceback;
* the event log has no gap, no torn line and no iteration recorded twice, and every
  ``session_resumed`` took over the state the log says the session was in;
* if ``kill`` exited 0 it said ``killed``, and no engine or agent of the session was
  alive when it returned; the session ends ``killed`` with no iteration recorded after
  the ending — unless a ``resume`` that looked only after the kill continued it (its
  ``session_resumed`` says ``from_status: killed``); if ``kill`` lost (the engine
  finished first) it did not say killed;
* if ``cleanup`` said it marked the session crashed, the same holds for that ending.

The offsets come from a seeded RNG (``LOOPRUNNER_FAULT_SEED=N`` replays them), spread
over a span calibrated on this machine by one lone resume (half of them over its first
third, where the launcher hands over to its engine), so they land before the launch, in
the hand-over, during the run and after its end.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from looprunner import Pipeline, Session, Stage
from looprunner.models import Event, Health
from looprunner.store.events import count_bad_lines
from looprunner.testing import wait_until, write_stage
from tests.faults.faultkit import all_pids, cmdline, engine_pids, is_live

pytestmark = pytest.mark.tmux

RACER = Path(__file__).with_name("racer.py")
SEED_ENV = "LOOPRUNNER_FAULT_SEED"
#: a real agent that costs next to nothing; it records its pid where the test looks
SH_AGENT = (
    'cat >/dev/null; echo $$ >> "$1/$LOOPRUNNER_SESSION"; sleep 0.05; '
    'printf \'{"decision": "continue", "reason": "sh", "summary": "iteration %s"}\' '
    '"$LOOPRUNNER_ITERATION" > "$LOOPRUNNER_STATUS"'
)
ITERATIONS = 3
ENDINGS = {"session_killed": "killed", "session_failed": "failed", "session_complete": "complete"}
RUNS = ("iteration_start", "iteration_complete", "stage_complete", "session_complete")


def seed() -> int:
    chosen = os.environ.get(SEED_ENV)
    return int(chosen) if chosen else random.SystemRandom().randrange(2**32)


@contextlib.contextmanager
def replay_hint(text: str) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        raise AssertionError(f"{text}: {type(exc).__name__}: {exc}") from exc


class Racer:
    """The warm interpreter that forks the racing command lines."""

    def __init__(self, project: Path, outdir: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(RACER), str(project), "1", str(outdir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"

    def race(self, jobs: list[dict]) -> list[dict]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(jobs) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)
        self.proc.stdout.close()


class Lane:
    """One project, its stage, and the pids its agents recorded."""

    def __init__(self, folder: Path) -> None:
        self.project = folder / "project"
        self.pids = folder / "agents"
        self.pids.mkdir(parents=True)
        argv = ["sh", "-c", SH_AGENT, "agent", str(self.pids)]
        write_stage(
            self.project,
            "work",
            provider="command",
            termination={"type": "fixed", "iterations": ITERATIONS},
            extra=f"command: {json.dumps(argv)}\n",
        )
        self.pipeline = Pipeline.loop(Stage.load("work", project=self.project))

    def session(self, name: str) -> Session:
        return Session(name, self.project)

    def crashed(self, name: str) -> None:
        """A session whose engine died after iteration 1, before the agent of iteration 2."""
        env = {**os.environ, "LOOPRUNNER_CRASH_AT": "before_agent:2"}
        Session.start(name, self.pipeline, self.project, env=env)
        session = self.session(name)
        wait_until(
            lambda: session.status().health is Health.CRASHED, timeout=60, what=f"{name} crashed"
        )

    def complete(self, name: str) -> None:
        Session.start(name, self.pipeline, self.project)
        assert self.session(name).wait(timeout=60).health is Health.COMPLETE

    def live(self, name: str) -> list[int]:
        """The session's live engines and agents."""
        found = engine_pids(self.project, name)
        record = self.pids / name
        if record.exists():
            found += [int(p) for p in record.read_text().split() if is_live(int(p))]
        return found + agents_by_environ(self.project, name)


def agents_by_environ(project: Path, name: str) -> list[int]:
    """Live processes whose environment says they are an agent of this session."""
    wanted = f"LOOPRUNNER_SESSION={name}".encode()
    where = str(project).encode()
    found = []
    for pid in all_pids():
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        ours = any(v.startswith(b"LOOPRUNNER_CTX=") and where in v for v in env)
        if wanted in env and ours and is_live(pid):
            found.append(pid)
    return found


# --------------------------------------------------------------------------- checks


def first_words(result: dict) -> str:
    """A command's exit code and what it said, for failure messages."""
    said = (result["stdout"].strip() or result["stderr"].strip())[:300]
    return f"exit {result['code']}: {said!r}"


def one_line_errors(*results: dict) -> None:
    for result in results:
        text = result["stdout"] + result["stderr"]
        assert "Traceback" not in text and "internal error" not in text, result
        if result["code"] != 0:
            lines = result["stderr"].strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("looprunner: error: "), result


def check_log(session: Session) -> list[Event]:
    """No gap, no torn line, no iteration twice; each resume took over the logged state."""
    events = list(session.events())
    assert [e.seq for e in events] == list(range(1, len(events) + 1)), "gap in seq"
    assert count_bad_lines(session.paths.events_file) == 0
    done = Counter((e.stage, e.iteration) for e in events if e.type == "iteration_complete")
    assert set(done.values()) <= {1}, done
    status = "running"
    for event in events:
        if event.type in ENDINGS:
            status = ENDINGS[event.type]
        elif event.type == "session_resumed":
            took = event.data.get("from_status")
            assert took in (None, status), f"resumed from {took} while the log says {status}"
            status = "running"
    return events


def nothing_after(events: list[Event], ending: int, status: str) -> str:
    """After the ending at ``ending``, no iteration — unless a later resume took it over."""
    for event in events[ending + 1 :]:
        if event.type == "session_resumed":
            assert event.data.get("from_status") == status, (
                f"{status} was reported, then an engine resumed the session from "
                f"{event.data.get('from_status')!r}: {[e.type for e in events]}"
            )
            return "resumed later"
        assert event.type not in RUNS, (
            f"{event.type} recorded after the {status} ending: {[e.type for e in events]}"
        )
    return "ended"


def check_kill(lane: Lane, name: str, kill: dict, live_after: list[int]) -> str:
    """What a kill said agrees with what became of the session."""
    session = lane.session(name)
    final = session.wait(timeout=60)
    events = check_log(session)
    if kill["code"] != 0:
        assert "killed" not in kill["stdout"], kill
        return f"kill refused ({final.health.value})"
    assert kill["stdout"].startswith(f"{name}: killed"), kill
    ending = next(i for i, e in enumerate(events) if e.type == "session_killed")
    outcome = nothing_after(events, ending, "killed")
    if outcome == "ended":
        assert final.health is Health.KILLED, final
        assert live_after == [], f"engine or agent alive after kill said killed: {live_after}"
    return f"killed, {outcome}"


# --------------------------------------------------------------------------- rounds


def calibrate(lane: Lane, racer: Racer) -> float:
    """How long a lone resume takes here, from its start to the end of the run."""
    lane.crashed("cal")
    began = time.monotonic()
    [result] = racer.race([{"argv": ["resume", "cal"], "project": str(lane.project)}])
    assert result["code"] == 0, result
    assert lane.session("cal").wait(timeout=60).health is Health.COMPLETE
    return time.monotonic() - began


def run_rounds(
    tmp_path: Path, scenario: str, *, rounds: int, lanes: int, chunk: int
) -> Counter[str]:
    """Run the rounds and return how each ended (checked as it goes)."""
    base = seed()
    rng = random.Random(f"{base}-{scenario}-{chunk}")
    lane_list = [Lane(tmp_path / f"lane-{n}") for n in range(lanes)]
    racer = Racer(lane_list[0].project, tmp_path / "racer")
    outcomes: Counter[str] = Counter()
    try:
        span = calibrate(lane_list[0], racer) * 1.5
        for batch in range(0, rounds, lanes):
            names = [f"r{chunk}-{n}" for n in range(batch, min(batch + lanes, rounds))]
            lanes_now = lane_list[: len(names)]
            prepare = Lane.complete if scenario == "start-force" else Lane.crashed
            with ThreadPoolExecutor(max_workers=len(names)) as pool:
                list(pool.map(prepare, lanes_now, names))
            # half of them in the first third, where the launcher hands over to its engine
            offsets = [rng.uniform(0, span / 3 if rng.random() < 0.5 else span) for _ in names]
            jobs = []
            for lane, name, offset in zip(lanes_now, names, offsets, strict=True):
                first = (
                    ["start", name, "--stage", "work", "--force"]
                    if scenario == "start-force"
                    else ["resume", name]
                )
                second = (
                    ["--json", "cleanup", "--fix", "--yes"]
                    if scenario == "cleanup"
                    else ["kill", name, "--yes"]
                )
                project = str(lane.project)
                jobs.append({"argv": first, "project": project})
                jobs.append({"argv": second, "project": project, "delay": offset})
            results = racer.race(jobs)
            live_after = [lane.live(name) for lane, name in zip(lanes_now, names, strict=True)]
            for n, (lane, name) in enumerate(zip(lanes_now, names, strict=True)):
                launcher, other = results[2 * n], results[2 * n + 1]
                hint = (
                    f"{SEED_ENV}={base} {scenario} chunk {chunk} {name} "
                    f"(second command after {offsets[n]:.3f}s of {span:.3f}s); "
                    f"{first_words(launcher)}; {first_words(other)}"
                )
                with replay_hint(hint):
                    one_line_errors(launcher, other)
                    if scenario == "cleanup":
                        outcome = check_cleanup(lane, name, other)
                    else:
                        outcome = check_kill(lane, name, other, live_after[n])
                    # an engine that recorded its ending is still exiting: give it time
                    with contextlib.suppress(AssertionError):
                        wait_until(lambda: not lane.live(name), timeout=30, what="the end")  # noqa: B023
                    left = lane.live(name)
                    assert left == [], f"outlived the round: {[(p, cmdline(p)) for p in left]}"
                outcomes[outcome] += 1
    finally:
        racer.close()
    assert sum(outcomes.values()) == rounds
    return outcomes


def check_cleanup(lane: Lane, name: str, cleanup: dict) -> str:
    """What cleanup said it fixed agrees with what became of the session."""
    session = lane.session(name)
    session.wait(timeout=60)
    events = check_log(session)
    assert cleanup["code"] == 0, cleanup
    report = json.loads(cleanup["stdout"])
    marked = [
        p
        for p in report["problems"]
        if p["session"] == name and p["kind"] == "zombie_state" and p["fixed"]
        if (p["action"] or "").startswith("marked crashed")
    ]
    if not marked:
        return "cleanup marked nothing"
    ending = next(
        i
        for i, e in enumerate(events)
        if e.type == "session_failed" and e.data.get("type") == "crashed"
    )
    return f"marked crashed, {nothing_after(events, ending, 'failed')}"


# --------------------------------------------------------------------------- tests


# each test records how its rounds ended as the property "outcomes" (see them with
# ``--junitxml``, or ``-s`` without xdist for the printed line)


def report(record_property, scenario: str, outcomes: Counter[str]) -> None:
    record_property("outcomes", json.dumps(dict(outcomes)))
    print(f"{scenario}: {dict(outcomes)}")


def test_kill_racing_resume_never_lies(tmp_path, tmux_keeper, record_property):
    report(record_property, "kill", run_rounds(tmp_path, "kill", rounds=8, lanes=4, chunk=0))


def test_kill_racing_start_force_never_lies(tmp_path, tmux_keeper, record_property):
    outcomes = run_rounds(tmp_path, "start-force", rounds=4, lanes=4, chunk=0)
    report(record_property, "start-force", outcomes)


def test_cleanup_racing_resume_never_lies(tmp_path, tmux_keeper, record_property):
    outcomes = run_rounds(tmp_path, "cleanup", rounds=4, lanes=4, chunk=0)
    report(record_property, "cleanup", outcomes)


@pytest.mark.slow
@pytest.mark.parametrize("chunk", range(1, 5))
def test_kill_racing_resume_two_hundred_rounds(tmp_path, tmux_keeper, record_property, chunk):
    """R=200 in all: 4 chunks of 50 (spread over workers), four sessions at a time."""
    outcomes = run_rounds(tmp_path, "kill", rounds=50, lanes=4, chunk=chunk)
    report(record_property, "kill", outcomes)


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["start-force", "cleanup"])
def test_start_force_and_cleanup_races_forty_rounds(
    tmp_path, tmux_keeper, record_property, scenario
):
    outcomes = run_rounds(tmp_path, scenario, rounds=40, lanes=4, chunk=1)
    report(record_property, scenario, outcomes)
