"""The Ray backend beside tmux, on one machine: ``python benchmarks/ray_backend.py [--quick]``.

Needs the plugin (``pip install -e plugins/looprunner-ray``). Starts its own two-node
Ray cluster on this machine (:mod:`looprunner_ray.local`: a head and a worker, each of
``CPUS`` logical CPUs), then measures, for both backends in the same run:

- start latency: ``Session.start`` until the engine holds the lock and runs;
- per-iteration overhead: the gap between iterations beyond the agent's own time (the
  engine is the same; this shows whether running inside a Ray job costs anything);
- ``SESSIONS`` sessions started at once from the command line: all complete, none lost
  (every event numbered without a gap, every iteration completed once), and, for Ray,
  how many engines each node ran (each reserves one CPU, so both nodes take some).

Prints a table and writes ``benchmarks/results/ray-latest.json`` (and a timestamped
copy), with the machine's load average before and after: Ray's figures depend on it
much more than tmux's. Figures and how to read them: docs/performance.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from run import PY, Bench, median, ms, per_iteration_overhead  # noqa: E402

from looprunner import Session, Stage  # noqa: E402
from looprunner.store.events import read_events  # noqa: E402

#: logical CPUs of each node: room for every concurrent engine, half on each node
CPUS = 10
SESSIONS = 20
ITERATIONS = 3


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.1f} {five:.1f} {fifteen:.1f}"


def quiet_start(name: str, stage: Stage, project: Path, backend: str) -> Session:
    with Path(os.devnull).open("w") as sink, contextlib.redirect_stdout(sink):
        return Session.start(name, stage, project, backend=backend)


class RayBench(Bench):
    def start_latency(self, backend: str) -> None:
        rounds = 3 if self.quick else 10
        project = self.project(f"start-{backend}")
        stage = Stage(
            name="w",
            provider="mock",
            prompt="x",
            termination={"type": "fixed", "iterations": 1},
            mock_delay=60,
        )
        times = []
        for i in range(rounds):
            t0 = time.perf_counter()
            session = quiet_start(f"s{i}", stage, project, backend)
            times.append(time.perf_counter() - t0)
            session.kill()
        self.record(
            f"Session.start until running ({backend})",
            ms(median(times)),
            "ms",
            "-",
            rounds=rounds,
            min_ms=ms(min(times)),
            max_ms=ms(max(times)),
        )

    def iteration_overhead(self, backend: str) -> None:
        n = 20 if self.quick else 100
        project = self.project(f"overhead-{backend}")
        stage = Stage(
            name="w", provider="mock", prompt="x", termination={"type": "fixed", "iterations": n}
        )
        session = quiet_start("loop", stage, project, backend)
        status = session.wait(timeout=600)
        values = per_iteration_overhead(session)
        self.record(
            f"overhead / iteration ({backend})",
            ms(median(values)),
            "ms",
            "-",
            iterations=n,
            health=status.health.value,
        )

    def concurrent(self, backend: str, count: int) -> None:
        project = self.project(f"many-{backend}")
        stage_dir = project / ".looprunner" / "stages" / "w"
        stage_dir.mkdir(parents=True)
        (stage_dir / "stage.yaml").write_text(
            f"name: w\nprovider: mock\ntermination:\n  type: fixed\n  iterations: {ITERATIONS}\n"
        )
        (stage_dir / "prompt.md").write_text("x ${ITERATION}\n")
        argv = [PY, "-m", "looprunner", "--project", str(project), "start"]
        t0 = time.monotonic()
        procs = [
            subprocess.Popen(
                [*argv, f"c{i}", "--stage", "w", "--backend", backend],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            for i in range(count)
        ]
        outcomes = [(p.wait(), p.stderr.read().decode() if p.stderr else "") for p in procs]
        for p in procs:
            if p.stderr:
                p.stderr.close()
        failures = sorted({err.strip()[:160] for code, err in outcomes if code != 0})
        started = [i for i in range(count) if outcomes[i][0] == 0]
        statuses = [Session(f"c{i}", project).wait(timeout=900) for i in started]
        wall = time.monotonic() - t0
        complete = sum(1 for s in statuses if s.health.value == "complete")
        lost = 0
        for i in started:
            events = read_events(Session(f"c{i}", project).paths.events_file)
            gapless = [e.seq for e in events] == list(range(1, len(events) + 1))
            done = [e.iteration for e in events if e.type == "iteration_complete"]
            if not gapless or done != list(range(1, ITERATIONS + 1)):
                lost += 1
        detail: dict[str, Any] = {}
        if backend == "ray":
            detail["engines_per_node"] = self.engines_per_node(project)
        self.record(
            f"{count} sessions at once ({backend})",
            complete,
            "of",
            f"{count} of {count}",
            start_failures=count - len(started),
            failure_messages=failures,
            sessions_with_lost_events=lost,
            wall_s=round(wall, 1),
            **detail,
        )

    @staticmethod
    def engines_per_node(project: Path) -> dict[str, int]:
        from ray.job_submission import JobSubmissionClient

        mine = [
            job
            for job in JobSubmissionClient(os.environ["RAY_ADDRESS"]).list_jobs()
            if (job.metadata or {}).get("looprunner_project") == str(project)
        ]
        return dict(Counter(str(job.driver_node_id)[:8] for job in mine))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts")
    parser.add_argument("--sessions", type=int, default=SESSIONS, help="sessions at once")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="results folder")
    args = parser.parse_args(argv)
    from looprunner_ray import local

    before = load()
    bench = RayBench(quick=args.quick)
    t0 = time.monotonic()
    cluster = local.start(num_cpus=CPUS)
    try:
        cluster.add_worker(num_cpus=CPUS, timeout=600)  # minutes on a loaded machine
        print(f"two-node Ray cluster up in {time.monotonic() - t0:.0f} s (load {load()})")
        os.environ["RAY_ADDRESS"] = cluster.address
        for backend in ("tmux", "ray"):
            bench.start_latency(backend)
        for backend in ("tmux", "ray"):
            bench.iteration_overhead(backend)
        # each engine reserves a CPU: Ray must use both nodes
        os.environ["LOOPRUNNER_RAY_NUM_CPUS"] = "1"
        for backend in ("tmux", "ray"):
            bench.concurrent(backend, args.sessions)
    finally:
        bench.close()
        cluster.stop()
    args.out.mkdir(parents=True, exist_ok=True)
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": {"cpus": os.cpu_count(), "load_before": before, "load_after": load()},
        "results": bench.results,
    }
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    for target in (args.out / f"ray-{stamp}.json", args.out / "ray-latest.json"):
        target.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nload before {before}, after {load()}; written to {args.out / 'ray-latest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
