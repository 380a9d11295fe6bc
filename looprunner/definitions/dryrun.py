"""What a start would do, shown without doing it: no file written, nothing started."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from looprunner.builtin.defaults import STAGE_TYPE
from looprunner.engine.context import OUTPUT_FILE, STATUS_FILE
from looprunner.engine.prompt import render, template_values
from looprunner.errors import LooprunnerError
from looprunner.models import Pipeline, Stage
from looprunner.names import ProjectPaths
from looprunner.plugins.registry import Registries
from looprunner.protocols import NestedStages


def nested(stage: Stage, registries: Registries | None) -> list[dict[str, Any]]:
    """Return what a type that runs further stages (a parallel block) will run, in order."""
    if registries is None or (stage.type or STAGE_TYPE) not in registries.stage_types:
        return []
    try:
        built = registries.stage_types.get(stage.type or STAGE_TYPE)(stage)
        inner = built.nested_stages() if isinstance(built, NestedStages) else []
    except LooprunnerError:
        return []  # start's check reports it, as a warning of the dry run
    return [
        {
            "stage": s.name,
            "provider": s.provider_name,
            "model": s.model,
            "termination": s.termination.type,
            "max_iterations": s.termination.cap(),
        }
        for s in inner
    ]


def preview(
    pipeline: Pipeline, *, session: str, project: Path, registries: Registries | None = None
) -> dict[str, Any]:
    """Return the resolved pipeline, node by node, with each node's first prompt rendered.

    With ``registries``, a node whose type runs further stages (a parallel block) lists
    them under ``nested``, once per provider.
    """
    paths = ProjectPaths.of(project).session(session)
    nodes = []
    for index, node in enumerate(pipeline.nodes):
        stage = node.stage
        folder = paths.iteration_dir(index, node.id, 1)
        values = template_values(
            ctx=str(folder / "context.json"),
            status=str(folder / STATUS_FILE),
            progress=str(paths.progress_file),
            output=str(folder / OUTPUT_FILE),
            iteration=1,
            session=session,
            context=stage.context,
        )
        if stage.output_path:
            output = str(paths.project / render(stage.output_path, values))
            values.update(OUTPUT=output, OUTPUT_PATH=output)
        term = stage.termination
        nodes.append(
            {
                "id": node.id,
                "stage": stage.name,
                "type": stage.type or STAGE_TYPE,
                "options": dict(stage.options),
                "source": str(stage.source) if stage.source else None,
                "provider": stage.provider_name,
                "model": stage.model,
                "termination": {
                    "type": term.type,
                    "max_iterations": node.cap,
                    "min_iterations": term.min_iterations,
                    "consensus": term.consensus,
                    "judge": term.judge is not None,
                },
                "delay": stage.delay,
                "timeout": stage.timeout,
                "command": list(stage.command) if stage.command else None,
                "inputs": {
                    "from_initial": node.inputs.from_initial,
                    "from": list(node.inputs.from_nodes),
                    "select": node.inputs.select,
                },
                "first_prompt": render(stage.prompt, values),
                "nested": nested(stage, registries),
            }
        )
    return {
        "session": session,
        "pipeline": pipeline.name,
        "type": pipeline.kind,
        "run_dir": str(paths.run_dir),
        "commands": dict(pipeline.commands),
        "inputs": list(pipeline.inputs),
        "nodes": nodes,
    }
