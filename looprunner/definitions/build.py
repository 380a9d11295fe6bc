"""What ``start`` and ``dry-run`` were asked to run, resolved into one Pipeline.

Lives here rather than in the command line so a notebook or script can resolve a
definition exactly as ``looprunner start`` does, with the same checks and messages.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import attrs

from looprunner.definitions.blocks import rename_block_sources
from looprunner.definitions.catalog import load_stage
from looprunner.definitions.pipelines import load_pipeline
from looprunner.errors import ConfigError, UsageError
from looprunner.models import JudgeSpec, Pipeline


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
    runs: int | None = None,
    judge: bool = False,
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
    runs:
        Run the whole pipeline this many times (``--runs``, loop-agents' repeat count;
        see :meth:`Pipeline.repeated`); only with ``pipeline``.
    judge:
        Let a judge agent decide every stage whose termination takes one (``judgment``),
        with the project's ``scripts/prompts/judge.md`` where it exists (``--judge``;
        see :func:`with_judges`).

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
    if runs is not None and pipeline is None:
        raise UsageError("--runs repeats a pipeline; to run a stage longer, raise its cap with -n")
    if runs is not None and runs < 1:
        raise UsageError(f"--runs must be at least 1, got {runs}")
    for path in inputs:
        if not path.exists():
            raise UsageError(f"--input {path}: no such file")
    if stage is not None:
        resolved = Pipeline.loop(load_stage(stage, project=project), iterations=iterations)
    else:
        assert pipeline is not None
        resolved = load_pipeline(pipeline, project=project).repeated(
            runs or 1, adjust=rename_block_sources
        )
    if provider is not None:
        _warn_unused_provider(resolved, provider)
    resolved = resolved.with_overrides(
        provider=provider,
        model=model,
        context=context,
        inputs=tuple(str(p.resolve()) for p in inputs),
    )
    return with_judges(resolved, project) if judge else resolved


class OverrideNotUsedWarning(UserWarning):
    """A command-line override that a definition's own setting outranks."""


def _warn_unused_provider(pipeline: Pipeline, provider: str) -> None:
    """Say so when ``--provider`` loses to a stage's own provider, instead of ignoring it."""
    for node in pipeline.nodes:
        own = node.stage.provider
        if own is not None and own != provider:
            warnings.warn(
                f"--provider {provider} is not used for {node.id!r}: its stage sets "
                f"provider {own}, which wins over --provider (set it in a node to override)",
                OverrideNotUsedWarning,
                stacklevel=3,
            )


#: where a loop-agents project keeps its judge prompt
JUDGE_PROMPT_FILE = Path("scripts") / "prompts" / "judge.md"


def with_judges(pipeline: Pipeline, project: Path) -> Pipeline:
    """Give every stage whose termination takes a judge agent one (``start --judge``).

    loop-agents always let a judge agent decide its ``judgment`` stages; looprunner
    lets the workers' consensus decide unless a stage names a judge. This switch brings
    the judge back: each termination that accepts ``termination.judge`` (its
    ``validate`` says so, so a plugin's can too) gets one running with the stage's own
    provider and model unless it names its own, and every judge without a prompt of its
    own uses the project's ``scripts/prompts/judge.md`` where it exists, looprunner's
    judge prompt otherwise.
    """
    from looprunner.plugins.manager import registries

    file = project / JUDGE_PROMPT_FILE
    try:
        prompt: str | None = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        prompt = None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the judge prompt {file}: {exc}", path=file) from exc
    terminations = registries().terminations
    nodes = []
    for node in pipeline.nodes:
        term = node.stage.termination
        spec = term.judge or JudgeSpec()
        own = spec.prompt if spec.prompt is not None else prompt
        judged = attrs.evolve(term, judge=attrs.evolve(spec, prompt=own))
        try:
            terminations.get(term.type)(judged).validate()
        except ConfigError:
            nodes.append(node)  # a termination that takes no judge (fixed, queue) as it was
            continue
        nodes.append(attrs.evolve(node, stage=attrs.evolve(node.stage, termination=judged)))
    return attrs.evolve(pipeline, nodes=tuple(nodes))
