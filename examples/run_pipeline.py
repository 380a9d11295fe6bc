"""Start a three-stage pipeline from Python, watch it, then inspect what it left.

    python examples/run_pipeline.py            # tmux when installed, else this process
    python examples/run_pipeline.py --inline   # always in this process

Everything is built in code: the stages use the mock provider, which replays canned
outputs, so no API key is needed. Swap ``provider="mock"`` for ``"claude"`` to run a
real agent.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from looprunner import Health, Pipeline, Session, Stage
from looprunner.models import Node, NodeInputs

PROMPT = "Stage ${SESSION_NAME}, iteration ${ITERATION}. Context: ${CTX}. Write ${STATUS}."


def build_pipeline() -> Pipeline:
    """Plan (judged), then tasks, then build, each reading the stage before it."""
    plan = Stage(
        name="plan",
        prompt=PROMPT,
        provider="mock",
        termination={"type": "judgment", "consensus": 2, "max": 4},
        mock_delay=0.2,
    )
    tasks = Stage(
        name="tasks", prompt=PROMPT, provider="mock", termination={"type": "fixed", "iterations": 2}
    )
    build = Stage(
        name="build", prompt=PROMPT, provider="mock", termination={"type": "fixed", "iterations": 3}
    )
    return Pipeline(
        name="plan-to-build",
        nodes=(
            Node(id="plan", stage=plan),
            Node(id="tasks", stage=tasks, inputs=NodeInputs(from_nodes=("plan",))),
            Node(
                id="build",
                stage=build,
                inputs=NodeInputs(from_nodes=("plan", "tasks"), select="all"),
            ),
        ),
    )


def run(project: Path, backend: str) -> int:
    session = Session.start("example", build_pipeline(), project, backend=backend, background=True)
    final = session.watch(interval=0.2)
    print(f"\nfinished: {final.health.value} ({final.state.completion_reason})")
    for stage in final.state.stages:
        print(
            f"  {stage.id:<6} {stage.iterations_completed} iteration(s), {stage.termination_reason}"
        )
    context = json.loads((session.paths.iteration_dir(2, "build", 1) / "context.json").read_text())
    print("build's first iteration read:", json.dumps(context["inputs"]["from_stage"], indent=2))
    print(Session.list(project))
    return 0 if final.health is Health.COMPLETE else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inline", action="store_true", help="run in this process, not tmux")
    args = parser.parse_args(argv)
    backend = "inline" if args.inline or shutil.which("tmux") is None else "tmux"
    with tempfile.TemporaryDirectory(prefix="looprunner-example-") as folder:
        return run(Path(folder), backend)


if __name__ == "__main__":
    sys.exit(main())
