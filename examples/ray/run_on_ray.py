"""Run several sessions of a parallel pipeline on a two-node Ray cluster; say where each ran.

    python examples/ray/run_on_ray.py                  # starts a local two-node cluster
    python examples/ray/run_on_ray.py --address http://HEAD:8265 --project /shared/demo

Needs the plugin (``pip install -e plugins/looprunner-ray``). Without ``--address`` it
starts a Ray head and a worker node on this machine (each with ``--cpus`` CPUs) and
stops them at the end. Every engine reserves one CPU (``LOOPRUNNER_RAY_NUM_CPUS=1``), so
sessions started at once fill both nodes. Each session runs the pipeline ``fanout``: a
parallel block of two mock providers (no API key needed), then a stage that reads both.
At the end it prints, for each session, the node its Ray job ran on: the engine and
every provider of its block ran there, as child processes of the engine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

PIPELINE = """\
name: fanout
nodes:
  - id: draft
    parallel:
      providers:
        - {name: left, provider: mock}
        - {name: right, provider: mock}
      stages:
        - id: write
          prompt: "Draft ${ITERATION} of ${SESSION_NAME}. Write ${STATUS}."
          termination: {type: fixed, iterations: 2}
  - id: merge
    prompt: "Merge the drafts in ${CTX}. Write ${STATUS}."
    provider: mock
    termination: {type: fixed, iterations: 1}
    inputs:
      from_parallel: write
"""


def looprunner(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the looprunner command line (argv only: nothing goes through a shell)."""
    argv = [sys.executable, "-m", "looprunner", "--project", str(project), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=900, check=False)


def run(project: Path, sessions: int) -> int:
    from ray.job_submission import JobSubmissionClient
    from ray.util.state import list_nodes

    folder = project / ".looprunner" / "pipelines"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "fanout.yaml").write_text(PIPELINE, encoding="utf-8")
    os.environ["LOOPRUNNER_RAY_NUM_CPUS"] = "1"
    os.environ.setdefault("LOOPRUNNER_MOCK_DELAY", "2")  # long enough to run side by side
    names = [f"demo-{i}" for i in range(1, sessions + 1)]
    starts = [
        subprocess.Popen(
            [sys.executable, "-m", "looprunner", "--project", str(project), "start", name,
             "--pipeline", "fanout", "--backend", "ray"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in names
    ]  # fmt: skip
    for name, start in zip(names, starts, strict=True):
        _, error = start.communicate(timeout=900)
        if start.returncode != 0:
            print(f"{name}: start failed: {error.strip()}")
    failed = 0
    for name in names:
        waited = looprunner(project, "wait", name, "--timeout", "600")
        failed += waited.returncode != 0
    address = os.environ["RAY_ADDRESS"]
    nodes = {
        node.node_id: ("head" if node.is_head_node else "worker", node.node_ip)
        for node in list_nodes(address=address, limit=1000)
    }
    jobs = {
        (job.metadata or {}).get("looprunner_session"): job
        for job in JobSubmissionClient(address).list_jobs()
        if (job.metadata or {}).get("looprunner_project") == str(project)
    }
    print(f"\n{'session':<10} {'health':<10} {'node':<8} node id")
    for name in names:
        shown = looprunner(project, "--json", "status", name)
        health = json.loads(shown.stdout)["health"] if shown.returncode == 0 else "?"
        job = jobs.get(name)
        node = str(job.driver_node_id) if job is not None else "?"
        kind, _ = nodes.get(node, ("?", "?"))
        print(f"{name:<10} {health:<10} {kind:<8} {node[:16]}")
    used = {str(job.driver_node_id) for job in jobs.values()}
    print(f"\n{len(used)} node(s) ran the {len(names)} sessions; {failed} did not complete")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", help="a cluster's Jobs API (default: start a local one)")
    parser.add_argument("--project", type=Path, help="project folder (on shared storage)")
    parser.add_argument("--sessions", type=int, default=4, help="sessions to run at once")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of each local node")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="looprunner-ray-example-") as scratch:
        project = (args.project or Path(scratch)).resolve()
        if args.address:
            os.environ["RAY_ADDRESS"] = args.address
            return run(project, args.sessions)
        from looprunner_ray import local

        print("starting a Ray head and a worker node on this machine (a minute or so)...")
        with local.start(num_cpus=args.cpus) as cluster:
            cluster.add_worker(num_cpus=args.cpus, timeout=600)  # minutes on a loaded machine
            os.environ["RAY_ADDRESS"] = cluster.address
            return run(project, args.sessions)


if __name__ == "__main__":
    sys.exit(main())
