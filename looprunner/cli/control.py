"""Commands that change a session: ``kill``."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from looprunner.builtin.defaults import FOREGROUND_BACKEND
from looprunner.cli.answers import cleanup_answer, session_answer
from looprunner.cli.backend_flags import backend_option_flag, given
from looprunner.cli.context import Context, pass_ctx
from looprunner.cli.operate import complete_session
from looprunner.cli.output import emit_json, health
from looprunner.errors import SessionError, UsageError
from looprunner.models import Health
from looprunner.session import Session, as_dict, not_found
from looprunner.views import hints

if TYPE_CHECKING:
    from looprunner.models import Problem


@click.command()
@click.argument("name", shell_complete=complete_session)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@pass_ctx
def kill(ctx: Context, name: str, yes: bool) -> int:
    """Stop session NAME: engine and agent ended, state 'killed', history kept."""
    session = Session(name, ctx.project)
    before = session.status()
    if before.health is Health.NOT_FOUND:
        raise not_found(name, ctx.project)
    session.refuse_kept("killed")  # an earlier run is bad input, finished or not
    if before.finished:  # said before asking: there is nothing to confirm
        raise SessionError(
            f"session {name!r} is not running (it is {before.health.value})", session=name
        )
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
@click.argument("name", shell_complete=complete_session)
@click.option("--backend", default=None, help="Backend to resume in (default: the one it ran in).")
@click.option(
    "--foreground", is_flag=True, help="Resume in this process (inline backend) and wait."
)
@backend_option_flag
@pass_ctx
def resume(
    ctx: Context, name: str, backend: str | None, foreground: bool, backend_option: tuple[str, ...]
) -> int:
    """Continue crashed, failed or killed session NAME from its last completed iteration."""
    session = Session(name, ctx.project)
    before = session.status()
    if before.health is Health.NOT_FOUND:
        raise not_found(name, ctx.project)
    if foreground and backend not in (None, FOREGROUND_BACKEND):
        raise UsageError("--foreground runs the engine in this process; it cannot use --backend")
    from looprunner.cli.run import engine_output

    chosen = FOREGROUND_BACKEND if foreground else backend
    options = given(chosen, backend_option)
    with engine_output(ctx):
        session.resume(backend=chosen, backend_options=options)
    foreground = session.in_process
    after = session.status()
    if ctx.json:
        running = after.health is Health.RUNNING
        emit_json(session_answer(after, hints.after_start(name) if running else None))
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


@click.command()
@click.option("--fix", is_flag=True, help="Repair what is found (default: only report).")
@click.option("--yes", "-y", is_flag=True, help="Repair everything without asking.")
@pass_ctx
def cleanup(ctx: Context, fix: bool, yes: bool) -> int:
    """Find stale locks, orphaned tmux sessions, zombie states, unsafe files; fix with --fix."""
    from looprunner.models import KINDS, ProblemKind
    from looprunner.session.maintenance import cleanup as run_cleanup

    report = run_cleanup(ctx.project)
    kinds: tuple[ProblemKind, ...] = KINDS
    confirm = None
    if fix and report.problems and not yes:
        if not sys.stdin.isatty():
            raise UsageError("refusing to repair without confirmation; pass --yes")
        _show_report(report.problems)
        choice = click.prompt(
            "Repair: [a]ll, [o]ne by one, [s]tale locks only, [c]ancel",
            type=click.Choice(["a", "o", "s", "c"]),
            default="a",
        )
        if choice == "c":
            click.echo("Nothing changed.")
            return 0
        if choice == "s":
            kinds = ("stale_lock",)
        if choice == "o":

            def confirm(problem: Problem) -> bool:
                return click.confirm(f"Repair {problem.kind} of {problem.session}?", default=True)

    if fix and report.problems:
        report = run_cleanup(ctx.project, fix=True, kinds=kinds, confirm=confirm)
    if ctx.json:
        emit_json(cleanup_answer(report))
        return 0
    if not report.tmux_reachable:
        click.echo(
            "warning: the tmux server cannot be reached; tmux sessions were not checked", err=True
        )
    if report.clean:
        click.echo("Nothing to clean up: every lock, state and tmux session is in sync.")
        return 0
    _show_report(report.problems)
    if not report.fix:
        click.echo(f"\n{len(report.problems)} problem(s). Repair with: looprunner cleanup --fix")
    return 0


def _show_report(problems: tuple[Problem, ...]) -> None:
    from looprunner.cli.output import table

    click.echo(
        table(
            ["SESSION", "PROBLEM", "DETAIL", "DONE"],
            [[p.session, p.kind, p.detail, p.action or ""] for p in problems],
        )
    )
