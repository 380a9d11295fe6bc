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


@click.command()
@click.argument("name")
@click.option("--backend", default=None, help="Backend to resume in (default: the one it ran in).")
@click.option(
    "--foreground", is_flag=True, help="Resume in this process (inline backend) and wait."
)
@pass_ctx
def resume(ctx: Context, name: str, backend: str | None, foreground: bool) -> int:
    """Continue crashed, failed or killed session NAME from its last completed iteration."""
    session = Session(name, ctx.project)
    before = session.status()
    if before.health is Health.NOT_FOUND:
        raise not_found(name, ctx.project)
    if foreground and backend not in (None, "inline"):
        raise UsageError("--foreground runs the engine in this process; it cannot use --backend")
    session.resume(backend="inline" if foreground else backend)
    after = session.status()
    if ctx.json:
        emit_json(as_dict(after))
    else:
        state = before.state
        where = (
            f" at stage {state.current.id}, iteration {state.iteration_completed + 1}"
            if state
            else ""
        )
        click.echo(f"Resumed {name}{where}: {health(after.health.value)}")
        if not foreground:
            click.echo(f"  looprunner status {name}   looprunner wait {name}")
    if foreground:
        return 0 if after.health is Health.COMPLETE else 1
    return 0
