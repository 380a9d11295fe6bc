"""Commands that change a session: ``kill``."""

from __future__ import annotations

import sys

import click

from looprunner.cli.app import Context, pass_ctx
from looprunner.cli.output import emit_json, health
from looprunner.errors import UsageError
from looprunner.models import Health
from looprunner.session import Session, as_dict, not_found


@click.command()
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_ctx
def kill(ctx: Context, name: str, yes: bool) -> int:
    """Stop session NAME: engine and agent ended, state 'killed', history kept."""
    session = Session(name, ctx.project)
    before = session.status()
    if before.health is Health.NOT_FOUND:
        raise not_found(name, ctx.project)
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(f"refusing to kill {name!r} without confirmation; pass --yes")
        state = before.state
        where = f" at {state.current.id} iteration {state.iteration}" if state else ""
        click.confirm(f"Kill session {name} ({before.health.value}{where})?", abort=True)
    after = session.kill()
    if ctx.json:
        emit_json(as_dict(after))
    else:
        click.echo(
            f"{name}: {health(after.health.value)} (history kept in {session.paths.run_dir})"
        )
    return 0
