"""The interactive front door: bare ``looprunner`` in a terminal offers the actions.

Each action asks for what it needs (choosing sessions and stages from numbered lists)
and then runs the same command a user could type, so both paths behave the same.
"""

from __future__ import annotations

from collections import Counter

import click

from looprunner.cli.context import Context
from looprunner.cli.output import health, style
from looprunner.errors import LooprunnerError
from looprunner.models import Health, SessionStatus
from looprunner.session import Session

ACTIONS = [
    ("start", "start a new loop"),
    ("list", "list sessions"),
    ("status", "show a session in depth"),
    ("monitor", "show a session's recent output"),
    ("attach", "attach to a session's tmux session"),
    ("kill", "stop a session"),
    ("resume", "resume a crashed, failed or killed session"),
    ("cleanup", "find and repair stale resources"),
]
WANTS_SESSION = {
    "status": None,
    "monitor": None,
    "attach": {Health.RUNNING},
    "kill": {Health.RUNNING, Health.CRASHED, Health.ORPHANED, Health.UNKNOWN},
    "resume": {Health.CRASHED, Health.FAILED, Health.KILLED},
}


def _pick(prompt: str, options: list[str]) -> int | None:
    for number, option in enumerate(options, 1):
        click.echo(f"  {number}) {option}")
    answer = click.prompt(prompt, default="", show_default=False).strip()
    if not answer or answer.lower() in ("q", "quit"):
        return None
    if answer.isdigit() and 1 <= int(answer) <= len(options):
        return int(answer) - 1
    click.echo(f"'{answer}' is not one of the choices.")
    return None


def _choose_session(statuses: list[SessionStatus], allowed: set[Health] | None) -> str | None:
    choices = [s for s in statuses if allowed is None or s.health in allowed]
    if not choices:
        click.echo("No session fits that action.")
        return None
    index = _pick(
        "Session number (Enter to go back)",
        [f"{s.session:<24} {health(s.health.value)}" for s in choices],
    )
    return None if index is None else choices[index].session


def _ask_name(statuses: list[SessionStatus]) -> str | None:
    """Ask for a new session's name until it is valid and free; None to go back.

    Checked as soon as it is typed, so a mistake costs one line, not the answers before.
    """
    from looprunner.names import validate_session_name

    taken = {s.session: s.health.value for s in statuses}
    while True:
        name = click.prompt(
            "Session name (lower-case letters, digits, hyphens; Enter to go back)",
            default="",
            show_default=False,
        ).strip()
        if not name:
            return None
        try:
            validate_session_name(name)
        except LooprunnerError as exc:
            click.echo(exc.message)
            continue
        if name in taken:
            click.echo(f"session {name!r} already exists ({taken[name]}); choose another name")
            continue
        return name


def _ask_cap() -> str:
    """Ask for an iteration cap until it is a positive whole number or empty (the stage's)."""
    while True:
        cap = click.prompt(
            "Iteration cap (Enter for the stage's own)", default="", show_default=False
        ).strip()
        if not cap or (cap.isdigit() and int(cap) > 0):
            return cap
        click.echo(f"iteration cap {cap!r} is not a positive whole number")


def run(click_ctx: click.Context, ctx: Context) -> None:
    """Offer the actions until the user quits."""
    from looprunner.definitions import catalog

    root = click_ctx.command
    assert isinstance(root, click.Group)
    click.echo(style(f"looprunner — {ctx.project}", bold=True))
    while True:
        statuses = Session.list(ctx.project)
        counts = Counter(s.health.value for s in statuses)
        summary = ", ".join(f"{n} {h}" for h, n in sorted(counts.items())) or "none yet"
        click.echo(f"\nSessions: {summary}")
        index = _pick(
            "What would you like to do? (number, Enter to quit)",
            [f"{a:<8} {d}" for a, d in ACTIONS],
        )
        if index is None:
            return
        action = ACTIONS[index][0]
        args: list[str] = []
        if action == "start":
            stages = [ref.name for ref in catalog.list_stages(ctx.project) if ref.problem is None]
            if not stages:
                click.echo(
                    "No stages here yet: create .looprunner/stages/NAME/stage.yaml "
                    "(or try 'looprunner demo')."
                )
                continue
            choice = _pick("Stage number", stages)
            if choice is None:
                continue
            name = _ask_name(statuses)
            if name is None:
                continue
            iterations = _ask_cap()
            args = [name, "--stage", stages[choice]] + (["-n", iterations] if iterations else [])
        elif action in WANTS_SESSION:
            chosen = _choose_session(statuses, WANTS_SESSION[action])
            if chosen is None:
                continue
            args = [chosen]
            if action == "kill":
                if not click.confirm(f"Kill {chosen}?", default=False):
                    continue
                args.append("--yes")
        command = root.get_command(click_ctx, action)
        assert command is not None
        try:
            with command.make_context(action, args, parent=click_ctx) as sub_ctx:
                command.invoke(sub_ctx)
        except LooprunnerError as exc:
            click.echo(f"looprunner: error: {exc.message}", err=True)
        except click.ClickException as exc:
            click.echo(f"looprunner: error: {exc.format_message()}", err=True)
