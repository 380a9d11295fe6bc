"""What the agent gets each iteration: ``context.json`` and the prompt's variables."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from looprunner.models import AgentStatus, Node, Pipeline
from looprunner.names import SessionPaths

OUTPUT_FILE = "output.md"
#: how many earlier iterations' outputs ``inputs.from_previous_iterations`` lists
PREVIOUS_OUTPUTS = 50
STATUS_FILE = "status.json"
CONTEXT_FILE = "context.json"
#: ``limits.remaining_seconds`` when nothing limits the session's wall time
NO_LIMIT = -1


def stage_output(paths: SessionPaths, index: int, node: Node) -> Path:
    """Return the stage's final output file."""
    return paths.stage_dir(index, node.id) / OUTPUT_FILE


def build_context(
    *,
    paths: SessionPaths,
    pipeline: Pipeline,
    index: int,
    iteration: int,
    cap: int,
    previous: AgentStatus | None,
    output_path: Path,
    from_parallel: Mapping[str, list[str]] | None = None,
) -> dict[str, Any]:
    """Return the ``context.json`` document of one iteration (all paths absolute).

    ``from_parallel`` maps each provider of earlier parallel blocks this node reads to
    the output files it gets (see :mod:`looprunner.engine.branches`).
    """
    node = pipeline.nodes[index]
    iteration_dir = paths.iteration_dir(index, node.id, iteration)
    # every completed iteration left an output.md; list the most recent ones only, so
    # an iteration costs the same at 10,000 as at 10
    stage_dir = paths.stage_dir(index, node.id)
    first = max(1, iteration - PREVIOUS_OUTPUTS)
    earlier = [f"{stage_dir}/iterations/{n:03d}/{OUTPUT_FILE}" for n in range(first, iteration)]
    from_stage: dict[str, list[str]] = {}
    wanted = set(node.inputs.from_nodes)
    if not wanted and index > 0:
        wanted = {pipeline.nodes[index - 1].id}
    for other_index, other in enumerate(pipeline.nodes[:index]):
        if other.id not in wanted:
            continue
        if node.inputs.select == "all":
            folder = paths.stage_dir(other_index, other.id) / "iterations"
            files = sorted(folder.glob(f"*/{OUTPUT_FILE}")) if folder.is_dir() else []
        else:
            files = [stage_output(paths, other_index, other)]
        from_stage[other.id] = [str(f) for f in files if f.exists()]
    return {
        "session": paths.name,
        "pipeline": pipeline.name,
        "stage": {"id": node.id, "index": index, "type": node.stage.name},
        "iteration": iteration,
        "max_iterations": cap,
        "paths": {
            "project": str(paths.agent_dir),
            "run_dir": str(paths.run_dir),
            "session_dir": str(paths.run_dir),  # loop-agents' name for the run directory
            "stage_dir": str(paths.stage_dir(index, node.id)),
            "iteration_dir": str(iteration_dir),
            "context": str(iteration_dir / CONTEXT_FILE),
            "status": str(iteration_dir / STATUS_FILE),
            "output": str(output_path),
            "progress": str(paths.progress_file),
            "stage_output": str(stage_output(paths, index, node)),
        },
        "inputs": {
            "from_initial": list(pipeline.inputs) if node.inputs.from_initial else [],
            "from_stage": from_stage,
            "from_previous_iterations": earlier,
            "from_parallel": {k: list(v) for k, v in (from_parallel or {}).items()},
        },
        # loop-agents' limits: what its prompts read to pace themselves; looprunner sets
        # no session runtime limit, so remaining_seconds is -1, as loop-agents wrote then
        "limits": {"max_iterations": cap, "remaining_seconds": NO_LIMIT},
        "commands": dict(pipeline.commands),
        "context": node.stage.context,
        "previous": (
            {
                "iteration": iteration - 1,
                "decision": previous.decision.value,
                "reason": previous.reason,
                "summary": previous.summary,
            }
            if previous is not None
            else None
        ),
    }
