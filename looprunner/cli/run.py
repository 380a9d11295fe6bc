"""Commands that start and wait for sessions: ``start``, ``wait``, ``demo``, ``engine``.

The definitions load only in the commands that read them: the engine process, started
by every ``start``, never needs them.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from looprunner.builtin.defaults import BACKEND as DEFAULT_BACKEND
from looprunner.builtin.defaults import FOREGROUND_BACKEND
from looprunner.cli import legacy_env
from looprunner.cli.answers import session_answer
from looprunner.cli.backend_flags import backend_option_flag, given
from looprunner.cli.context import Context, pass_ctx
from looprunner.cli.following import show_wait, wait_for
from looprunner.cli.operate import complete_session
from looprunner.cli.output import emit_json, health, style
from looprunner.errors import UsageError
from looprunner.models import Health, Pipeline
from looprunner.session import Session, as_dict
from looprunner.views import hints


def engine_output(ctx: Context) -> contextlib.AbstractContextManager[object]:
    """Send an in-process engine's log to stderr when stdout carries JSON."""
    if ctx.json:
        return contextlib.redirect_stdout(sys.stderr)
    return contextlib.nullcontext()


def next_steps(name: str) -> str:
    """List the commands worth knowing right after a start."""
    return "\n".join(
        f"  {style(cmd, 'cyan')}"
        for cmd in (
            f"looprunner status {name}",
            f"looprunner wait {name}",
            f"looprunner kill {name} --yes",
        )
    )


F = TypeVar("F", bound=Callable[..., Any])


def _project_of(ctx: click.Context) -> Path:
    project = ctx.find_root().params.get("project")
    return Path(project).expanduser().resolve() if project else Path.cwd()


def complete_stage(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Shell completion: the stage names of the project (and the built-ins)."""
    from looprunner.definitions import catalog

    names = {ref.name for ref in catalog.list_stages(_project_of(ctx)) if ref.problem is None}
    return sorted(n for n in names if n.startswith(incomplete))


def complete_pipeline(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Shell completion: the pipeline names of the project."""
    from looprunner.definitions.pipelines import list_pipelines

    return [r.name for r in list_pipelines(_project_of(ctx)) if r.name.startswith(incomplete)]


def definition_options(f: F) -> F:
    """Add the options that say what to run (shared by ``start`` and ``dry-run``)."""
    options = [
        click.option(
            "--stage",
            "stage",
            metavar="TYPE",
            help="Run a loop of this stage.",
            shell_complete=complete_stage,
        ),
        click.option(
            "--pipeline",
            "pipeline",
            metavar="NAME_OR_FILE",
            help="Run this pipeline.",
            shell_complete=complete_pipeline,
        ),
        click.option(
            "-n",
            "iterations",
            type=int,
            metavar="MAX",
            help="Iteration cap (overrides the stage's).",
        ),
        click.option(
            "--provider",
            help="Provider for stages that do not set one (claude, codex, command, mock).",
        ),
        click.option("--model", help="Model for stages that do not set one."),
        click.option(
            "--input",
            "inputs",
            multiple=True,
            type=click.Path(path_type=Path),
            metavar="FILE",
            help="Initial input file (repeatable).",
        ),
        click.option("--context", help="Text added to every stage's ${CONTEXT}."),
        click.option(
            "--runs",
            type=int,
            metavar="N",
            help="Run the whole pipeline N times, one run after another (default 1).",
        ),
        click.option(
            "--judge",
            is_flag=True,
            help="A judge agent decides judgment stages (scripts/prompts/judge.md if present).",
        ),
        click.option(
            "--worktree",
            is_flag=True,
            help="Agents work in a git worktree of their own (.looprunner/worktrees/NAME).",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def resolve_definition(
    ctx: Context,
    *,
    stage: str | None,
    pipeline: str | None,
    iterations: int | None,
    overrides: legacy_env.Overrides,
    runs: int | None,
    judge: bool,
) -> Pipeline:
    """Resolve what ``start`` or ``dry-run`` was asked to run (loop-agents' variables too)."""
    from looprunner.definitions.build import build_pipeline

    given = legacy_env.apply(overrides)
    return build_pipeline(
        ctx.project,
        stage=stage,
        pipeline=pipeline,
        iterations=iterations,
        provider=given.provider,
        model=given.model,
        inputs=given.inputs,
        context=given.context,
        runs=runs,
        judge=judge,
    )


@click.command()
@click.argument("name", shell_complete=complete_session)
@definition_options
@click.option("--force", is_flag=True, help="Move a finished or crashed run aside and start again.")
@click.option("--foreground", is_flag=True, help="Run in this process (inline backend) and wait.")
@click.option("--backend", default=None, help="Backend to run the engine in (default tmux).")
@backend_option_flag
@pass_ctx
def start(
    ctx: Context,
    name: str,
    stage: str | None,
    pipeline: str | None,
    iterations: int | None,
    provider: str | None,
    model: str | None,
    inputs: tuple[Path, ...],
    context: str | None,
    runs: int | None,
    judge: bool,
    worktree: bool,
    force: bool,
    foreground: bool,
    backend: str | None,
    backend_option: tuple[str, ...],
) -> int:
    """Start session NAME running a stage loop or a pipeline."""
    from looprunner.names import validate_session_name

    validate_session_name(name)
    resolved = resolve_definition(
        ctx,
        stage=stage,
        pipeline=pipeline,
        iterations=iterations,
        overrides=legacy_env.Overrides(provider, model, context, inputs),
        runs=runs,
        judge=judge,
    )
    if foreground and backend not in (None, FOREGROUND_BACKEND):
        raise UsageError("--foreground runs the engine in this process; it cannot use --backend")
    chosen = FOREGROUND_BACKEND if foreground else (backend or DEFAULT_BACKEND)
    options = given(chosen, backend_option)
    with engine_output(ctx):
        session = Session.start(
            name,
            resolved,
            ctx.project,
            backend=chosen,
            force=force,
            worktree=worktree or None,
            backend_options=options,
        )
    foreground = session.in_process  # an in-process engine ran to its end before returning
    status = session.status()
    if ctx.json:
        emit_json(session_answer(status, None if foreground else hints.after_start(name)))
    elif foreground:
        click.echo(f"session {name}: {health(status.health.value)}")
    else:
        node = resolved.nodes[0]
        what = (
            f"stage {node.stage.name}" if resolved.kind == "loop" else f"pipeline {resolved.name}"
        )
        click.echo(
            f"Started {style(name, bold=True)} ({what}, up to {node.cap} iteration(s) "
            f"in its first stage) in {session.where()}.\n{next_steps(name)}"
        )
    if foreground:
        return 0 if status.health is Health.COMPLETE else 1
    return 0


@click.command()
@click.argument("name", shell_complete=complete_session)
@click.option("--timeout", type=float, metavar="S", help="Give up after S seconds (exit 1).")
@click.option("--quiet", "-q", is_flag=True, help="Print only the final line, no progress.")
@pass_ctx
def wait(ctx: Context, name: str, timeout: float | None, quiet: bool) -> int:
    """Block until session NAME finishes; exit 0 if it completed."""
    return show_wait(ctx.project, ctx.json, name, timeout, quiet)


@click.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Create the demo project here instead of a temporary folder.",
)
@click.option("--name", default="demo", show_default=True, help="Session name.")
@click.option(
    "--pace",
    type=float,
    default=0.5,
    show_default=True,
    help="Seconds the demo agent pauses per task, so progress is visible.",
)
@click.option("--foreground", is_flag=True, help="Run in this process instead of tmux.")
@pass_ctx
def demo(ctx: Context, directory: Path | None, name: str, pace: float, foreground: bool) -> int:
    """Run a real loop on the built-in demo agent (no API key needed)."""
    import tempfile

    from looprunner.builtin import demo as demo_project
    from looprunner.errors import BackendError

    project = (
        (directory or Path(tempfile.mkdtemp(prefix="looprunner-demo-"))).expanduser().resolve()
    )
    tasks = demo_project.create(project, pace=pace)
    if not ctx.json:
        click.echo(f"Demo project: {project}")
        click.echo(
            f"The demo agent will work through {tasks} TODO items in TODO.md, one per iteration."
        )
    from looprunner.definitions.build import build_pipeline

    pipeline = build_pipeline(
        project,
        stage="demo",
        pipeline=None,
        iterations=None,
        provider=None,
        model=None,
        inputs=(),
        context=None,
    )
    started = time.monotonic()
    with engine_output(ctx):
        try:
            session = Session.start(
                name,
                pipeline,
                project,
                backend=FOREGROUND_BACKEND if foreground else DEFAULT_BACKEND,
                force=True,
            )
        except BackendError as exc:  # the default backend cannot run here (no tmux)
            if not ctx.json:
                click.echo(f"{exc.message}: running in this process instead.")
            session = Session.start(name, pipeline, project, backend=FOREGROUND_BACKEND, force=True)
    trim_demo_runs(ctx, project, name)
    status = wait_for(session, None, show=not ctx.json)
    if ctx.json:
        emit_json({"project": str(project), **as_dict(status)})
    else:
        state = status.state
        done = state.stages[0].iterations_completed if state else 0
        click.echo(
            f"\nSession {name} {health(status.health.value)} after {done} iteration(s) "
            f"in {time.monotonic() - started:.1f}s."
        )
        click.echo(f"Run directory: {session.paths.run_dir}")
        click.echo("Look around:")
        for cmd in (f"status {name}", "list", f"wait {name}"):
            click.echo(f"  {style(f'looprunner --project {project} {cmd}', 'cyan')}")
        click.echo(f"  {style(f'cat {project}/TODO.md {session.paths.progress_file}', 'cyan')}")
    return 0 if status.health is Health.COMPLETE else 1


#: how many earlier runs of the demo session ``demo`` keeps beside the current one
DEMO_RUNS_KEPT = 3


def trim_demo_runs(ctx: Context, project: Path, name: str) -> None:
    """Remove the demo's own earlier runs but the newest few, so reruns do not pile up.

    Only earlier runs of the demo stage are touched: a session of that name that ran
    anything else is the user's, and kept.
    """
    from looprunner.session.removal import prune

    report = prune(
        project,
        session=name,
        keep=DEMO_RUNS_KEPT,
        where=lambda run: run.kept and run.state is not None and run.state.pipeline == "demo",
    )
    if report.removed and not ctx.json:
        click.echo(
            f"Removed {len(report.removed)} older demo run(s); the newest {DEMO_RUNS_KEPT} "
            f"are kept (looprunner --project {project} runs)."
        )


@click.command(hidden=True)
@click.option("--session", "name", required=True)
@click.option("--backend", required=True)
@click.option("--resume", is_flag=True)
@click.option("--env-fifo", type=click.Path(path_type=Path))
@click.option("--env-file", type=click.Path(path_type=Path))
@click.option("--launch-token", default=None)
@pass_ctx
def engine(
    ctx: Context,
    name: str,
    backend: str,
    resume: bool,
    env_fifo: Path | None,
    env_file: Path | None,
    launch_token: str | None,
) -> int:
    """Run the engine of session NAME in this process (how backends start it)."""
    from looprunner.names import validate_session_name
    from looprunner.session.entry import run_engine

    validate_session_name(name)
    return run_engine(
        ctx.project,
        name,
        backend=backend,
        resume=resume,
        env_fifo=env_fifo,
        env_file=env_file,
        launch_token=launch_token,
    )
