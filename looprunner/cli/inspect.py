"""Commands that look at sessions: ``list`` and ``status``.

What they print is built in :mod:`looprunner.cli.looking`, shared with the thin entry
that runs these commands without click (:mod:`looprunner.cli.quick`).
"""

from __future__ import annotations

import click

from looprunner.cli.context import Context, pass_ctx
from looprunner.cli.looking import LONG_RUNNING_ENV, show_list, show_status
from looprunner.cli.operate import complete_session

#: the choices of ``list --sort`` (the thin entry accepts the same)
SORTS = ("age", "cost", "name")


@click.command("list")
@click.option(
    "--long-running",
    type=float,
    default=None,
    metavar="HOURS",
    help=f"Warn about sessions running longer than this (default 2, or ${LONG_RUNNING_ENV}).",
)
@click.option(
    "--health",
    "health_filter",
    default=None,
    metavar="HEALTH[,HEALTH...]",
    help="Only sessions of these healths (running, failed, ...; comma-separated).",
)
@click.option(
    "--stage", default=None, metavar="NAME", help="Only sessions whose current stage is NAME."
)
@click.option(
    "--since",
    default=None,
    metavar="WHEN",
    help="Only sessions started since WHEN: a duration back from now (30m, 2h, 1d) or a date.",
)
@click.option(
    "--sort",
    type=click.Choice(SORTS),
    default=None,
    help="Order: name (default), age (newest first) or cost (highest first).",
)
@pass_ctx
def list_sessions(
    ctx: Context,
    long_running: float | None,
    health_filter: str | None,
    stage: str | None,
    since: str | None,
    sort: str | None,
) -> int:
    """List every session in the project (filtered and sorted on request)."""
    return show_list(
        ctx.project,
        ctx.json,
        long_running=long_running,
        health_filter=health_filter,
        stage=stage,
        since=since,
        sort=sort,
    )


@click.command()
@click.argument("name", shell_complete=complete_session)
@pass_ctx
def status(ctx: Context, name: str) -> int:
    """Show the health, resources and progress of session NAME."""
    return show_status(ctx.project, ctx.json, name)
