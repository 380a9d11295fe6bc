"""What ``start`` and ``dry-run`` were asked to run, resolved into one Pipeline.

Lives here rather than in the command line so a notebook or script can resolve a
definition exactly as ``looprunner start`` does, with the same checks and messages.
"""

from __future__ import annotations

from pathlib import Path

from looprunner.definitions.catalog import load_stage
from looprunner.definitions.pipelines import load_pipeline
from looprunner.errors import UsageError
from looprunner.models import Pipeline


def build_pipeline(
    project: Path,
    *,
    stage: str | None,
    pipeline: str | None,
    iterations: int | None = None,
    provider: str | None = None,
    model: str | None = None,
    inputs: tuple[Path, ...] = (),
    context: str | None = None,
) -> Pipeline:
    """Resolve a stage loop or a pipeline, with command-line overrides applied.

    Parameters
    ----------
    project:
        The project the stage or pipeline is looked up in.
    stage, pipeline:
        Exactly one: a stage name or folder (run as a loop), or a pipeline name or file.
    iterations:
        The loop's iteration cap (``-n``); only with ``stage``.
    provider, model, context, inputs:
        Overrides for every node (see :meth:`Pipeline.with_overrides`); ``inputs`` must
        exist.

    Raises
    ------
    UsageError
        When the arguments contradict each other or an input file is missing.
    ConfigError
        When the definition cannot be found or read.
    """
    if (stage is None) == (pipeline is None):
        raise UsageError("give exactly one of --stage TYPE or --pipeline NAME_OR_FILE")
    if iterations is not None and iterations < 1:
        raise UsageError(f"-n must be at least 1, got {iterations}")
    if pipeline is not None and iterations is not None:
        raise UsageError("-n applies to --stage; set iteration caps in the pipeline file")
    for path in inputs:
        if not path.exists():
            raise UsageError(f"--input {path}: no such file")
    if stage is not None:
        resolved = Pipeline.loop(load_stage(stage, project=project), iterations=iterations)
    else:
        assert pipeline is not None
        resolved = load_pipeline(pipeline, project=project)
    return resolved.with_overrides(
        provider=provider,
        model=model,
        context=context,
        inputs=tuple(str(p.resolve()) for p in inputs),
    )
