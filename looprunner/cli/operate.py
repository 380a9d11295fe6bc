"""Commands that watch a session: ``monitor``, ``attach``, ``tail``."""

from __future__ import annotations

import os
import sys

import click

from looprunner.cli.context import Context, pass_ctx
from looprunner.cli.following import show_tail
from looprunner.cli.output import emit_json, health, style
from looprunner.errors import SessionError
from looprunner.models import Health, SessionStatus
from looprunner.session import Session, as_dict, not_found
from looprunner.views.clock import age


def complete_session(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Shell completion: the session names of the project (run directories and locks)."""
    from pathlib import Path

    project = ctx.find_root().params.get("project") or Path()
    return [n for n in Session.names_on_disk(project) if n.startswith(incomplete)]


def _existing(ctx: Context, name: str) -> tuple[Session, SessionStatus]:
    session = Session(name, ctx.project)
    status = session.status()
    if status.health is Health.NOT_FOUND:
        raise not_found(name, ctx.project)
    return session, status


def header(status: SessionStatus) -> str:
    """One line: session, health, stage, iteration / max, started, age."""
    state = status.state
    if state is None:
        return f"{status.session}: {health(status.health.value)}"
    current = state.current
    return (
        f"{style(status.session, bold=True)}: {health(status.health.value)} · stage {current.id} "
        f"({state.current_stage + 1}/{len(state.stages)}) · iteration "
        f"{state.iteration}/{current.max_iterations} · started {state.started_at} "
        f"({age(state.started_at)} ago)"
    )


@click.command()
@click.argument("name", shell_complete=complete_session)
@click.option("--lines", "-n", default=50, show_default=True, help="How many lines to show.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing output until the session ends.")
@pass_ctx
def monitor(ctx: Context, name: str, lines: int, follow: bool) -> int:
    """Show session NAME's recent output without attaching."""
    session, status = _existing(ctx, name)
    source, text = session.output(lines)
    if ctx.json:
        emit_json({**as_dict(status), "source": source, "lines": text})
        return 0
    click.echo(header(status))
    click.echo(style(f"--- last {len(text)} line(s) from {source} ---", "cyan"))
    for line in text:
        click.echo(line)
    if follow and status.health is Health.RUNNING:
        click.echo(
            style("--- following engine.log (Ctrl-C to stop watching) ---", "cyan"), err=True
        )
        try:
            for chunk in session.follow_output():
                click.echo(chunk, nl=False)
        except KeyboardInterrupt:
            return 130  # stopped watching with Ctrl-C: the session runs on
        click.echo(style(f"--- {name} is {session.status().health.value} ---", "cyan"), err=True)
    return 0


@click.command()
@click.argument("name", shell_complete=complete_session)
@pass_ctx
def attach(ctx: Context, name: str) -> int:
    """Attach this terminal to session NAME's tmux session (detach with C-b d)."""
    session, _ = _existing(ctx, name)
    command = session.attach_command()
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise SessionError(
            f"attach needs a terminal; use 'looprunner monitor {name}' or "
            f"'looprunner status {name}' instead (or run: {' '.join(command)})",
            session=name,
        )
    os.execvp(command[0], command)
    return 1  # pragma: no cover - execvp does not return


@click.command()
@click.argument("name", shell_complete=complete_session)
@click.option("--follow", "-f", is_flag=True, help="Wait for new events until the session ends.")
@click.option("--lines", "-n", type=int, default=None, help="Only the last N events.")
@pass_ctx
def tail(ctx: Context, name: str, follow: bool, lines: int | None) -> int:
    """Show session NAME's event log (raw JSON lines with --json)."""
    return show_tail(ctx.project, ctx.json, name, follow, lines)
