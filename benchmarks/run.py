"""looprunner's benchmark suite: ``python benchmarks/run.py [--quick] [--only NAME]``.

Each benchmark prints a table row and the whole run is written as JSON to
``benchmarks/results/<timestamp>.json`` (and ``latest.json``). Figures are medians of
repeated runs on this machine; compare only figures from one run. ``--quick`` uses
small counts so CI can run every benchmark in seconds (its figures are noisier).
Targets are documented in docs/performance.md; this script reports, it never fails on
a slow figure.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from looprunner import Health, Pipeline, Session, Stage  # noqa: E402
from looprunner.engine.spawn import death_signal_wrapper  # noqa: E402
from looprunner.names import ProjectPaths  # noqa: E402
from looprunner.store.events import read_events  # noqa: E402

PY = sys.executable
#: the command as users run it: the script the install put beside the interpreter
#: (``python -m looprunner`` also loads ``runpy`` and what it imports, about 5 ms)
SCRIPT = Path(PY).with_name("looprunner")
LOOPRUNNER = [str(SCRIPT)] if SCRIPT.is_file() else [PY, "-m", "looprunner"]
COMMAND = "looprunner" if SCRIPT.is_file() else "python -m looprunner"
#: the ``mock`` provider's agent, as the provider starts it (for its floor)
MOCK_AGENT = (PY, "-m", "looprunner.builtin.mock_agent")
TRIVIAL_AGENT = ["/bin/sh", "-c", 'printf \'{"decision":"continue"}\' > "$LOOPRUNNER_STATUS"']


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def parse_ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def run_loop(project: Path, name: str, stage: Stage, iterations: int) -> Session:
    """Run a loop in this process (its log goes to engine.log, not the terminal)."""
    with Path(os.devnull).open("w") as quiet, contextlib.redirect_stdout(quiet):
        return Session.start(
            name, Pipeline.loop(stage, iterations=iterations), project, backend="inline"
        )


def mean_overhead(session: Session, wall: float) -> float:
    """(wall time of the run - time spent in agents) / iterations."""
    events = read_events(session.paths.events_file)
    durations = [float(e.data["duration"]) for e in events if e.type == "iteration_complete"]
    return (wall - sum(durations)) / max(1, len(durations))


def shell_loop_floor(
    folder: Path,
    n: int,
    wrapper: tuple[str, ...] = (),
    agent: tuple[str, ...] = tuple(TRIVIAL_AGENT),
    *,
    prompt: bool = False,
) -> float:
    """Seconds per iteration of a bash loop that spawns ``agent`` ``n`` times.

    The floor for the gap between two iterations: what spawning the same agent costs
    with nothing around it, measured in the same run as looprunner's figure. With
    ``wrapper`` (``setpriv --pdeathsig TERM --``), the agent is spawned as the engine
    spawns it where no warden can run (``looprunner/engine/warden.py``): for comparison.
    With ``prompt``, the agent is given a one-line prompt on its input, as the engine
    gives one (the mock agent reads it), and what it prints goes to ``/dev/null``.
    """
    feed = "<<< x > /dev/null" if prompt else "</dev/null"
    loop = f'for ((i = 0; i < $1; i++)); do "${{@:2}}" {feed}; done'
    env = {**os.environ, "LOOPRUNNER_STATUS": str(folder / "floor-status.json")}
    argv = [*wrapper, *agent]
    t0 = time.perf_counter()
    subprocess.run(["bash", "-c", loop, "floor", str(n), *argv], env=env, check=True)
    return (time.perf_counter() - t0) / n


def mean_gap(session: Session) -> float:
    """Mean seconds from one iteration's start to the next's (first to last start).

    A mean, as the floor is: event times have millisecond resolution, so a median of
    single gaps moves in whole milliseconds.
    """
    events = read_events(session.paths.events_file)
    starts = [parse_ts(e.ts) for e in events if e.type == "iteration_start"]
    return (starts[-1] - starts[0]) / max(1, len(starts) - 1)


def iteration_gaps(session: Session) -> list[float]:
    """Wall time between one iteration's start and the next's."""
    events = read_events(session.paths.events_file)
    starts = [parse_ts(e.ts) for e in events if e.type == "iteration_start"]
    return [later - earlier for earlier, later in itertools.pairwise(starts)]


def per_iteration_overhead(session: Session) -> list[float]:
    """Wall time between iteration starts minus the agent's own run time."""
    events = read_events(session.paths.events_file)
    starts = [parse_ts(e.ts) for e in events if e.type == "iteration_start"]
    durations = [float(e.data["duration"]) for e in events if e.type == "iteration_complete"]
    return [
        (starts[i + 1] - starts[i]) - durations[i]
        for i in range(min(len(starts) - 1, len(durations)))
    ]


class Bench:
    def __init__(self, quick: bool, long: bool = False) -> None:
        self.quick = quick
        self.long = long
        self.results: list[dict[str, Any]] = []
        self.root = Path(tempfile.mkdtemp(prefix="looprunner-bench-"))
        self.socket = f"lrbench-{uuid.uuid4().hex[:8]}"
        os.environ["LOOPRUNNER_TMUX_SOCKET"] = self.socket
        os.environ.setdefault("LOOPRUNNER_KILL_GRACE", "2")

    def project(self, name: str) -> Path:
        folder = self.root / name
        folder.mkdir()
        return folder

    def record(self, name: str, figure: float, unit: str, target: str, **detail: Any) -> None:
        row = {"name": name, "figure": figure, "unit": unit, "target": target, **detail}
        self.results.append(row)
        print(
            f"{name:<34} {figure:>10} {unit:<6} target {target:<14} {json.dumps(detail)}",
            flush=True,
        )

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    # ------------------------------------------------------------------ benchmarks

    def engine_overhead(self) -> None:
        """Engine work per iteration, agent time excluded (mock and trivial command)."""
        n = 50 if self.quick else 500
        project = self.project("overhead")
        mock = Stage(
            name="mock", provider="mock", prompt="x", termination={"type": "fixed", "iterations": n}
        )
        t0 = time.perf_counter()
        session = run_loop(project, "mock", mock, n)
        wall = time.perf_counter() - t0
        values = per_iteration_overhead(session)
        # the same figure the other way: the gap beyond a bash loop spawning the mock agent
        floor = shell_loop_floor(project, n, agent=MOCK_AGENT, prompt=True)
        gap = mean_gap(session)
        self.record(
            "engine overhead / iteration (mock)",
            ms(median(values)),
            "ms",
            "<= 5 ms",
            iterations=n,
            mean_ms=ms(mean_overhead(session, wall)),
            gap_ms=ms(gap),
            floor_ms=ms(floor),
            beyond_floor_ms=ms(gap - floor),
        )
        command = Stage(
            name="cmd",
            provider="command",
            command=tuple(TRIVIAL_AGENT),
            prompt="x",
            termination={"type": "fixed", "iterations": n},
        )
        t0 = time.perf_counter()
        session = run_loop(project, "cmd", command, n)
        wall = time.perf_counter() - t0
        values = per_iteration_overhead(session)
        self.record(
            "overhead beyond agent (command)",
            ms(median(values)),
            "ms",
            "<= 10 ms",
            iterations=n,
            mean_ms=ms(mean_overhead(session, wall)),
        )
        self.iteration_gap(project, command)

    def iteration_gap(self, project: Path, command: Stage) -> None:
        """The gap between iterations beyond a bash loop spawning the same agent.

        Runs of 10 and 1,000 iterations (``--long``: and 10,000; ``--quick``: 10 and 50),
        each followed by its floors: a bash loop spawning the trivial agent as many times
        (at least 200, so the floor of a short run is not one noisy spawn), and one
        spawning it through ``setpriv --pdeathsig`` (the engine's way where no warden can
        run). Each length is measured in three rounds of run and floors (one with
        ``--quick``), and its figures are the round whose gap beyond the floor is the
        median: a disk that slows for a few seconds spoils one round, not the figure. The
        figure is the longest run's mean gap beyond the plain floor; each length's is in
        ``by_length``, with every round's in ``rounds_beyond_ms``.
        """
        lengths = (10, 50) if self.quick else (10, 1000, 10_000) if self.long else (10, 1000)
        rounds = 1 if self.quick else 3
        by_length: dict[str, dict[str, Any]] = {}
        for n in lengths:
            stage = attrs.evolve(command, termination={"type": "fixed", "iterations": n})
            measured: list[dict[str, float]] = []
            for round_number in range(rounds):
                session = run_loop(project, f"gap-{n}-{round_number}", stage, n)
                gap = mean_gap(session)
                floor = shell_loop_floor(project, max(n, 200))
                wrapper = death_signal_wrapper() or ()
                wrapped = shell_loop_floor(project, max(n, 200), wrapper) if wrapper else floor
                measured.append(
                    {
                        "beyond_ms": ms(gap - floor),
                        "beyond_wrapped_ms": ms(gap - wrapped),
                        "gap_ms": ms(gap),
                        "median_gap_ms": ms(median(iteration_gaps(session))),
                        "floor_ms": ms(floor),
                        "wrapped_floor_ms": ms(wrapped),
                    }
                )
            middle = sorted(measured, key=lambda r: r["beyond_ms"])[len(measured) // 2]
            by_length[str(n)] = {
                **middle,
                "rounds_beyond_ms": [r["beyond_ms"] for r in measured],
            }
        longest = by_length[str(lengths[-1])]
        self.record(
            "iteration gap beyond a shell loop",
            longest["beyond_ms"],
            "ms",
            "<= 3 ms",
            iterations=lengths[-1],
            gap_ms=longest["gap_ms"],
            floor_ms=longest["floor_ms"],
            beyond_wrapped_ms=longest["beyond_wrapped_ms"],
            wrapped_floor_ms=longest["wrapped_floor_ms"],
            rounds_beyond_ms=longest["rounds_beyond_ms"],
            by_length=by_length,
        )

    def flatness(self) -> None:
        """Is iteration 10,000 as cheap as iteration 10? (full mode only; quick: 1,000)."""
        n = 1000 if self.quick else 10_000
        project = self.project("flat")
        stage = Stage(
            name="cmd",
            provider="command",
            command=tuple(TRIVIAL_AGENT),
            prompt="x",
            termination={"type": "fixed", "iterations": n},
        )
        started = time.monotonic()
        session = run_loop(project, "flat", stage, n)
        values = per_iteration_overhead(session)
        # a tenth of the run at each end, its mean: event times are whole milliseconds,
        # so the median of 50 single iterations moved in whole steps (3 ms against 5)
        window = n // 10
        early, late = mean(values[10 : 10 + window]), mean(values[-window:])
        self.record(
            "late vs early iteration overhead",
            round(late / early, 2) if early else float("nan"),
            "x",
            "<= 1.2 x",
            early_ms=ms(early),
            late_ms=ms(late),
            window=window,
            iterations=n,
            total_s=round(time.monotonic() - started, 1),
        )

    def start_latency(self) -> None:
        """Session.start (tmux) until the engine holds the lock and state says running."""
        rounds = 5 if self.quick else 20
        project = self.project("start")
        stage = Stage(
            name="w",
            provider="mock",
            prompt="x",
            termination={"type": "fixed", "iterations": 1},
            mock_delay=30,
        )
        times = []
        for i in range(rounds):
            t0 = time.perf_counter()
            session = Session.start(f"s{i}", stage, project)
            times.append(time.perf_counter() - t0)
            session.kill()
        self.record(
            "Session.start until running (tmux)",
            ms(median(times)),
            "ms",
            "<= 300 ms",
            rounds=rounds,
        )

    def cli_times(self) -> None:
        """Whole-process `status` and `list --json` (200 on disk, 20 live), tmux calls counted."""
        project = self.project("cli")
        on_disk = 40 if self.quick else 200
        live = 5 if self.quick else 20
        done = Stage(
            name="w", provider="mock", prompt="x", termination={"type": "fixed", "iterations": 1}
        )
        first = run_loop(project, "seed", done, 1)
        runs = ProjectPaths.of(project).runs
        for i in range(on_disk - live - 1):
            target = runs / f"old-{i}"
            shutil.copytree(first.paths.run_dir, target)
            state = json.loads((target / "state.json").read_text())
            state["session"] = f"old-{i}"
            (target / "state.json").write_text(json.dumps(state))
        slow = Stage(
            name="w",
            provider="mock",
            prompt="x",
            termination={"type": "fixed", "iterations": 1},
            mock_delay=600,  # running until killed below, however slow the machine
        )
        live_sessions = [Session.start(f"live-{i}", slow, project) for i in range(live)]
        shim = self.root / "shim"
        shim.mkdir()
        log = self.root / "tmux-calls.log"
        real = shutil.which("tmux")
        (shim / "tmux").write_text(f'#!/bin/sh\necho "$*" >> {log}\nexec {real} "$@"\n')
        (shim / "tmux").chmod(0o755)
        env = {**self.installed_env(), "PATH": f"{shim}:{os.environ['PATH']}"}

        cpu: dict[str, list[float]] = {}

        def timed(*args: str) -> float:
            """Run one command; return its wall time and keep its CPU time in ``cpu``.

            CPU time (user + system) is what the command costs itself; on a machine busy
            with other work, its wall time also counts the wait for a core.
            """
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            subprocess.run(
                [PY, *args] if args[0] == "-c" else [*LOOPRUNNER, "--project", str(project), *args],
                env=env,
                capture_output=True,
                check=True,
            )
            wall = time.perf_counter() - t0
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            used = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
            cpu.setdefault(args[0] if args[0] == "-c" else " ".join(args), []).append(used)
            return wall

        rounds = 5 if self.quick else 15
        for warm_up in (("status", "live-0"), ("--json", "list")):
            timed(*warm_up)  # writes the bytecode caches
        cpu.clear()
        bare, status_times = [], []
        for _ in range(rounds):  # alternating: a busy moment weighs on both alike
            bare.append(timed("-c", "pass"))
            status_times.append(timed("status", "live-0"))
        self.record(
            "`looprunner status NAME` process",
            ms(median(status_times) - median(bare)),
            "ms",
            "<= 50 ms beyond python",
            rounds=rounds,
            command=COMMAND,
            process_ms=ms(median(status_times)),
            interpreter_ms=ms(median(bare)),
            cpu_beyond_python_ms=ms(median(cpu["status live-0"]) - median(cpu["-c"])),
        )
        log.write_text("")
        bare, list_times = [], []
        for _ in range(rounds):
            bare.append(timed("-c", "pass"))
            list_times.append(timed("--json", "list"))
        calls = len(log.read_text().splitlines()) / rounds
        self.record(
            "`looprunner list --json` process",
            ms(median(list_times) - median(bare)),
            "ms",
            "<= 80 ms beyond python",
            sessions=on_disk,
            live=live,
            tmux_calls_per_list=calls,
            command=COMMAND,
            process_ms=ms(median(list_times)),
            interpreter_ms=ms(median(bare)),
            cpu_beyond_python_ms=ms(median(cpu["--json list"]) - median(cpu["-c"])),
        )
        for session in live_sessions:
            if session.status().health is Health.RUNNING:
                session.kill()

    def installed_env(self) -> dict[str, str]:
        """The environment of a command run as an installed package runs: from bytecode.

        ``PYTHONDONTWRITEBYTECODE`` (set on some development machines) would make every
        run compile looprunner from source, a cost no installed copy pays; the caches go
        to this run's own folder.
        """
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        return {**env, "PYTHONPYCACHEPREFIX": str(self.root / "pycache")}

    def import_time(self) -> None:
        """`python -c "import looprunner"` minus a bare interpreter start."""
        rounds = 10 if self.quick else 30
        env = self.installed_env()

        def wall(code: str) -> float:
            t0 = time.perf_counter()
            subprocess.run([PY, "-c", code], check=True, env=env)
            return time.perf_counter() - t0

        wall("from looprunner import Session, Stage, Pipeline")  # write the bytecode caches
        bare, full, api = [], [], []
        for _ in range(rounds):  # alternating: a busy moment weighs on all three alike
            bare.append(wall("pass"))
            full.append(wall("import looprunner"))
            api.append(wall("from looprunner import Session, Stage, Pipeline"))
        self.record(
            "import looprunner (beyond python)",
            ms(median(full) - median(bare)),
            "ms",
            "<= 20 ms",
            interpreter_ms=ms(median(bare)),
            api_import_ms=ms(median(api) - median(bare)),
        )

    def idle_engine(self) -> None:
        """CPU and memory of an engine waiting on a long-running agent."""
        window = 3 if self.quick else 20
        project = self.project("idle")
        stage = Stage(
            name="w",
            provider="mock",
            prompt="x",
            termination={"type": "fixed", "iterations": 1},
            mock_delay=window + 30,
        )
        session = Session.start("idle", stage, project)
        state = session.status().state
        while state is None or not state.agent_pid:
            time.sleep(0.05)
            state = session.status().state
        pid = state.pid
        tick = os.sysconf("SC_CLK_TCK")

        def cpu() -> float:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / tick

        c0, t0 = cpu(), time.monotonic()
        time.sleep(window)
        used, spent = cpu() - c0, time.monotonic() - t0
        rss_kb = next(
            int(line.split()[1])
            for line in Path(f"/proc/{pid}/status").read_text().splitlines()
            if line.startswith("VmRSS")
        )
        self.record("idle engine CPU", round(100 * used / spent, 2), "%", "~0 %", window_s=window)
        self.record("idle engine RSS", round(rss_kb / 1024, 1), "MB", "<= 40 MB")
        session.kill()

    def big_logs(self) -> None:
        """`monitor` and `tail -n` on a 1 GB log vs a 1 MB one (time should not grow)."""
        size = (64 if self.quick else 1024) * 1024 * 1024
        project = self.project("logs")
        stage = Stage(
            name="w", provider="mock", prompt="x", termination={"type": "fixed", "iterations": 2}
        )
        session = run_loop(project, "logs", stage, 2)
        events = session.paths.events_file.read_bytes()
        engine_log = session.paths.engine_log.read_bytes()

        def grow(path: Path, tail: bytes, total: int) -> None:
            filler = b'{"ts":"x","seq":0,"type":"filler","session":"logs"}\n' * 20000
            with path.open("wb") as handle:
                while handle.tell() < total - len(tail):
                    handle.write(filler)
                handle.write(tail)

        timings: dict[str, dict[str, float]] = {}
        for label, total in (("1MB", 1024 * 1024), ("big", size)):
            grow(session.paths.events_file, events, total)
            grow(session.paths.engine_log, engine_log, total)

            def timed(*args: str) -> float:
                t0 = time.perf_counter()
                subprocess.run(
                    [*LOOPRUNNER, "--project", str(project), *args],
                    capture_output=True,
                    check=True,
                )
                return time.perf_counter() - t0

            timings[label] = {
                "monitor": median([timed("monitor", "logs", "-n", "50") for _ in range(3)]),
                "tail": median([timed("tail", "logs", "-n", "50") for _ in range(3)]),
                "status": median([timed("status", "logs") for _ in range(3)]),
            }
        for what in ("monitor", "tail", "status"):
            self.record(
                f"`{what}` on {size // 2**20} MB logs",
                ms(timings["big"][what]),
                "ms",
                "~ same as 1 MB",
                small_ms=ms(timings["1MB"][what]),
            )

    def concurrent(self) -> None:
        """Many sessions at once: all complete, no lock error, no lost event."""
        count = 10 if self.quick else 100
        project = self.project("many")
        stage_dir = project / ".looprunner" / "stages" / "w"
        stage_dir.mkdir(parents=True)
        (stage_dir / "stage.yaml").write_text(
            "name: w\nprovider: mock\ntermination:\n  type: fixed\n  iterations: 3\n"
        )
        (stage_dir / "prompt.md").write_text("x ${ITERATION}\n")
        t0 = time.monotonic()
        procs = [
            subprocess.Popen(
                [
                    PY,
                    "-m",
                    "looprunner",
                    "--project",
                    str(project),
                    "start",
                    f"c{i}",
                    "--stage",
                    "w",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for i in range(count)
        ]
        outcomes = [(p.wait(), p.stderr.read().decode() if p.stderr else "") for p in procs]
        failures = sum(1 for code, _ in outcomes if code != 0)
        reasons = sorted({err.strip()[:160] for code, err in outcomes if code != 0})
        statuses = [Session(f"c{i}", project).wait(timeout=600) for i in range(count)]
        complete = sum(1 for s in statuses if s.health.value == "complete")
        lost = 0
        for i in range(count):
            evs = read_events(Session(f"c{i}", project).paths.events_file)
            if [e.seq for e in evs] != list(range(1, len(evs) + 1)) or sum(
                e.type == "iteration_complete" for e in evs
            ) != 3:
                lost += 1
        self.record(
            "concurrent sessions complete",
            complete,
            "of",
            f"{count} of {count}",
            start_failures=failures,
            failure_messages=reasons,
            sessions_with_lost_events=lost,
            wall_s=round(time.monotonic() - t0, 1),
        )

    def parallel_block(self) -> None:
        """A parallel block of 2 and 8 providers against its slowest provider alone."""
        iterations = 2 if self.quick else 5
        project = self.project("parallel")
        stage_dir = project / ".looprunner" / "stages" / "nap"
        stage_dir.mkdir(parents=True)
        agent = 'sleep 0.2; printf \'{"decision":"continue"}\' > "$LOOPRUNNER_STATUS"'
        (stage_dir / "stage.yaml").write_text(
            "name: nap\nprovider: command\n"
            f"command: {json.dumps(['/bin/sh', '-c', agent])}\n"
            f"termination: {{type: fixed, iterations: {iterations}}}\n"
        )
        (stage_dir / "prompt.md").write_text("nap\n")

        def wall(count: int) -> float:
            names = ", ".join(f"{{name: p{i}, provider: command}}" for i in range(count))
            path = project / f"block{count}.yaml"
            path.write_text(
                f"name: block{count}\nnodes:\n  - id: blk\n    parallel:\n"
                f"      providers: [{names}]\n      stages: [{{id: nap, stage: nap}}]\n"
            )
            pipeline = Pipeline.load(path, project=project)
            name = f"b{count}-{uuid.uuid4().hex[:6]}"
            t0 = time.perf_counter()
            with Path(os.devnull).open("w") as quiet, contextlib.redirect_stdout(quiet):
                session = Session.start(name, pipeline, project, backend="inline")
            elapsed = time.perf_counter() - t0
            assert session.status().health.value == "complete", name
            return elapsed

        repeats = 1 if self.quick else 3
        alone = median([wall(1) for _ in range(repeats)])
        for count in (2, 8):
            block = median([wall(count) for _ in range(repeats)])
            self.record(
                f"parallel block of {count} providers",
                ms(block),
                "ms",
                "~ alone",
                slowest_alone_ms=ms(alone),
                ratio=round(block / alone, 2),
                iterations_each=iterations,
                agent_s=0.2,
            )


BENCHMARKS: dict[str, Callable[[Bench], None]] = {
    "overhead": Bench.engine_overhead,
    "flatness": Bench.flatness,
    "start": Bench.start_latency,
    "cli": Bench.cli_times,
    "import": Bench.import_time,
    "idle": Bench.idle_engine,
    "logs": Bench.big_logs,
    "concurrent": Bench.concurrent,
    "parallel": Bench.parallel_block,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts (CI)")
    parser.add_argument(
        "--long", action="store_true", help="also the iteration gap over 10,000 iterations"
    )
    parser.add_argument(
        "--only", action="append", choices=sorted(BENCHMARKS), help="run only these"
    )
    parser.add_argument(
        "--out", type=Path, default=HERE / "results", help="folder for the JSON results"
    )
    args = parser.parse_args(argv)
    bench = Bench(quick=args.quick, long=args.long and not args.quick)
    try:
        for name, function in BENCHMARKS.items():
            if args.only and name not in args.only:
                continue
            function(bench)
    finally:
        bench.close()
    args.out.mkdir(parents=True, exist_ok=True)
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "system": platform.platform(),
        },
        "results": bench.results,
    }
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    for target in (args.out / f"{stamp}.json", args.out / "latest.json"):
        target.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten to {args.out / 'latest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
