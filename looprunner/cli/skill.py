"""``looprunner skill``: the ``/sessions`` skill for Claude Code, installed or removed."""

from __future__ import annotations

import click

from looprunner.cli.context import Context, pass_ctx
from looprunner.cli.output import emit_json

_USER_HELP = "The user's own skills (~/.claude/skills), for every project, not this project's."


@click.group()
def skill() -> None:
    """Install the /sessions skill for Claude Code, which drives looprunner --json."""


@skill.command()
@click.option("--user", is_flag=True, help=_USER_HELP)
@click.option("--print", "show", is_flag=True, help="Print the skill instead of installing it.")
@click.option("--force", is_flag=True, help="Replace a SKILL.md edited or written by someone else.")
@pass_ctx
def install(ctx: Context, user: bool, show: bool, force: bool) -> int:
    """Install (or update in place) .claude/skills/sessions/SKILL.md."""
    from looprunner.cli import skill_files

    skills = skill_files.skills_folder(ctx.project, user=user)
    if show:
        text = skill_files.skill_text()
        if ctx.json:
            emit_json({"skill": skill_files.SKILL_NAME, "text": text})
        else:
            click.echo(text, nl=False)
        return 0
    outcome = skill_files.install(skills, force=force)
    if ctx.json:
        emit_json(outcome.as_dict())
        return 0
    where = outcome.path / skill_files.SKILL_FILE
    verb = {"installed": "Installed", "updated": "Updated", "unchanged": "Already up to date:"}
    click.echo(f"{verb[outcome.action]} {where}")
    click.echo("In Claude Code, type /sessions (or ask what is running).")
    return 0


@skill.command()
@click.option("--user", is_flag=True, help=_USER_HELP)
@pass_ctx
def uninstall(ctx: Context, user: bool) -> int:
    """Remove the skill that install wrote, leaving files edited since or not ours."""
    from looprunner.cli import skill_files

    outcome = skill_files.uninstall(skill_files.skills_folder(ctx.project, user=user))
    if ctx.json:
        emit_json(outcome.as_dict())
        return 0
    if outcome.action == "nothing" and not outcome.left:
        click.echo(f"No /sessions skill installed in {outcome.path}.")
    for name in outcome.removed:
        click.echo(f"Removed {outcome.path / name}")
    for name, why in outcome.left:
        click.echo(f"Left {outcome.path / name}: {why}", err=True)
    return 0
