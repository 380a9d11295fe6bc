"""Commands for earlier and finished runs: ``runs``, ``rm``, ``prune``, ``restart``.

``start --force`` keeps the old run beside the new one; these make such runs visible
and removable (never a live session), and start a finished session again as it ran.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from looprunner.builtin.defaults import FOREGROUND_BACKEND
from looprunner.cli.backend_flags import backend_option_flag, given
from looprunner.cli.context import Context, pass_ctx
from looprunner.cli.operate import complete_session
from looprunner.cli.output import emit_json, health, style, table
from looprunner.errors import UsageError
from looprunner.models import Health, RemovalReport, RunInfo
from looprunner.session import Session, as_dict, not_found
from looprunner.views.clock import age
from looprunner.views.display import cost_text


def _row(run: RunInfo) -> list[str]:
    state = run.state
    current = state.current if state is not None and state.stages else None
    return [
        run.name,
        run.session,
        f"{age(run.kept_at)} ago" if run.kept_at else "-",
        health(run.health.value),
        current.id if current is not None else "-",
        f"{state.iteration}/{current.max_iterations}" if state and current else "-",
        cost_text(state.cost_usd, state.usage) if state is not None else "-",
    ]


def _table(found: list[RunInfo] | tuple[RunInfo, ...]) -> str:
    headers = ["NAME", "SESSION", "KEPT", "HEALTH", "STAGE", "ITER", "COST"]
    return table(headers, [_row(run) for run in found])


def _run_json(run: RunInfo) -> dict[str, Any]:
    from looprunner.session.runs import as_dict as run_dict

    return run_dict(run)


@click.command()
@click.argument("name", required=False, shell_complete=complete_session)
@pass_ctx
def runs(ctx: Context, name: str | None) -> int:
    """List the earlier runs 'start --force' kept aside (all, or session NAME's)."""
    found = Session.runs(ctx.project, name)
    if (
        name is not None
        and not found
        and Session(name, ctx.project).status().health is (Health.NOT_FOUND)
    ):
        raise not_found(name, ctx.project)
    if ctx.json:
        emit_json([_run_json(run) for run in found])
        return 0
    if not found:
        of = f" of {name}" if name else ""
        click.echo(f"No earlier runs{of} kept in {ctx.project}.")
        return 0
    click.echo(_table(found))
    click.echo(
        "\nLook at one: "
        + style(f"looprunner status {found[-1].name}", "cyan")
        + "  Remove: "
        + style("looprunner rm NAME...", "cyan")
        + " or "
        + style("looprunner prune --older-than 7d", "cyan")
    )
    return 0


def confirm_removal(ctx: Context, yes: bool) -> Callable[[tuple[RunInfo, ...]], bool] | None:
    """Ask before removing, on a terminal; refuse (exit 2) where nobody can answer."""
    if yes:
        return None

    def ask(planned: tuple[RunInfo, ...]) -> bool:
        if ctx.json or not sys.stdin.isatty():
            raise UsageError(
                f"refusing to remove {len(planned)} run(s) without confirmation; pass --yes"
            )
        click.echo(_table(planned))
        return click.confirm(f"Remove these {len(planned)} run(s) and their files?")

    return ask


def _report(ctx: Context, report: RemovalReport, *, verb: str = "Removed") -> None:
    if ctx.json:
        emit_json(
            {
                "dry_run": report.dry_run,
                "removed": [_run_json(run) for run in report.removed],
                "left": [{"name": run.name, "reason": why} for run, why in report.left],
                "worktrees": list(report.worktrees),
            }
        )
        return
    for run in report.removed:
        click.echo(f"{verb} {run.name} ({run.health.value}): {run.run_dir}")
    for line in report.worktrees:
        click.echo(line)
    for run, why in report.left:
        click.echo(style(f"left {run.name}: {why}", "yellow"))


@click.command("rm")
@click.argument(
    "names", nargs=-1, required=True, metavar="NAME...", shell_complete=complete_session
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@pass_ctx
def rm(ctx: Context, names: tuple[str, ...], yes: bool) -> int:
    """Remove finished sessions and earlier runs, with their files (never a live one)."""
    report = Session.remove(names, ctx.project, confirm=confirm_removal(ctx, yes))
    if not report.removed:
        if not ctx.json:
            click.echo("Nothing removed.")
        else:
            _report(ctx, report)
        return 1
    _report(ctx, report)
    return 0


@click.command()
@click.option(
    "--older-than",
    metavar="DURATION",
    help="Only runs that ended longer ago than this (30m, 12h, 7d, 2w).",
)
@click.option(
    "--health",
    "healths",
    metavar="LIST",
    help="Only runs of these healths, comma-separated (complete,failed,killed,crashed).",
)
@click.option("--dry-run", is_flag=True, help="List what would be removed; remove nothing.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@pass_ctx
def prune(
    ctx: Context, older_than: str | None, healths: str | None, dry_run: bool, yes: bool
) -> int:
    """Remove finished sessions and earlier runs by age and health (never a live one)."""
    from looprunner.session.removal import parse_duration, parse_healths
    from looprunner.session.removal import prune as run_prune

    for option, value, parse in (
        ("--older-than", older_than, parse_duration),
        ("--health", healths, parse_healths),
    ):
        try:
            parse(value)
        except UsageError as exc:
            raise UsageError(f"{option} {value}: {exc.message}") from exc
    report = run_prune(
        ctx.project,
        older_than=older_than,
        health=healths,
        dry_run=dry_run,
        confirm=confirm_removal(ctx, yes),
    )
    if ctx.json:
        _report(ctx, report)
        return 0
    if not report.removed and not report.left:
        click.echo("Nothing to prune.")
        return 0
    if dry_run:
        click.echo(f"Would remove {len(report.removed)} run(s):")
        click.echo(_table(report.removed))
        return 0
    _report(ctx, report)
    return 0


@click.command()
@click.argument("name", shell_complete=complete_session)
@click.option("--backend", default=None, help="Backend to run in (default: the one it ran in).")
@click.option("--foreground", is_flag=True, help="Run in this process (inline backend) and wait.")
@backend_option_flag
@pass_ctx
def restart(
    ctx: Context, name: str, backend: str | None, foreground: bool, backend_option: tuple[str, ...]
) -> int:
    """Start finished session NAME again with what it ran; its old run is kept aside."""
    if foreground and backend not in (None, FOREGROUND_BACKEND):
        raise UsageError("--foreground runs the engine in this process; it cannot use --backend")
    from looprunner.cli.run import engine_output, next_steps

    session = Session(name, ctx.project)
    chosen = FOREGROUND_BACKEND if foreground else backend
    options = given(chosen, backend_option)
    with engine_output(ctx):
        session.restart(backend=chosen, backend_options=options)
    earlier = Session.runs(ctx.project, session.name)
    kept = earlier[-1].name if earlier else None
    status = session.status()
    if ctx.json:
        emit_json({**as_dict(status), "previous_run": kept})
    else:
        where = "" if session.in_process else f" in {session.where()}"
        click.echo(f"Restarted {style(name, bold=True)}{where}: {health(status.health.value)}")
        if kept:
            click.echo(f"  its previous run is kept as {kept}")
        if not session.in_process:
            click.echo(next_steps(name))
    if session.in_process:
        return 0 if status.health is Health.COMPLETE else 1
    return 0
