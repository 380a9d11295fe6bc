"""``looprunner doctor``: what this machine can run (see :mod:`looprunner.session.doctor`)."""

from __future__ import annotations

import os

import click

from looprunner.cli.context import Context, pass_ctx
from looprunner.cli.output import emit_json, style

#: how each kind of check is headed in the text report, in order
HEADINGS = {
    "machine": "machine",
    "backend": "backends",
    "provider": "providers",
    "plugin": "plugins",
    "stage": "stages",
    "pipeline": "pipelines",
}


@click.command()
@pass_ctx
def doctor(ctx: Context) -> int:
    """Show what this machine can run: tmux, providers, root, plugins, the project's stages.

    Exits 1 when a stage or pipeline of the project could not start here (or the default
    backend cannot run); warnings (no credentials found, running as root) do not.
    """
    from looprunner.convert import unstructure
    from looprunner.session import Session
    from looprunner.session.doctor import diagnose
    from looprunner.session.ref import Plugins

    registries = Session("doctor", ctx.project).registries
    report = diagnose(ctx.project, Plugins.of(registries), dict(os.environ))
    if ctx.json:
        emit_json({"ok": report.ok, "checks": [unstructure(c) for c in report.checks]})
        return 0 if report.ok else 1
    for kind, heading in HEADINGS.items():
        checks = [c for c in report.checks if c.kind == kind]
        if not checks:
            continue
        click.echo(style(heading, bold=True))
        for check in checks:
            mark = style("ok", "green") if check.ok else style("NO", "red")
            version = f" [{check.version}]" if check.version else ""
            click.echo(f"  {mark}  {check.name}{version}: {check.detail}")
            for note in check.notes:
                click.echo(style(f"      warning: {note}", "yellow"))
    failing = [c for c in report.checks if not c.ok and c.kind in ("stage", "pipeline")]
    summary = (
        f"{len(failing)} stage(s) or pipeline(s) of this project cannot run here"
        if failing
        else "every stage and pipeline of this project can run here"
    )
    click.echo(style(summary, "red" if not report.ok else "green"))
    return 0 if report.ok else 1
