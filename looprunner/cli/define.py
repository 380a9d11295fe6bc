"""Commands about definitions: ``stages``, ``pipelines``, ``lint``, ``dry-run``."""

from __future__ import annotations

from pathlib import Path

import click

from looprunner.cli.answers import lint_answer, pipeline_entries, stage_entries
from looprunner.cli.context import Context, pass_ctx
from looprunner.cli.output import emit_json, style, table
from looprunner.cli.run import definition_options
from looprunner.errors import EXIT_BAD_INPUT, GitMissingError, ProgramMissingError


@click.command()
@pass_ctx
def stages(ctx: Context) -> int:
    """List the stages available in the project and where each comes from."""
    entries = stage_entries(ctx.project)
    if ctx.json:
        emit_json(entries)
        return 0
    if not entries:
        click.echo("No stages found. Create .looprunner/stages/NAME/stage.yaml and prompt.md.")
        return 0
    rows = []
    for entry in entries:
        note = entry["problem"] or ("shadowed by an earlier folder" if entry["shadowed"] else "")
        rows.append([entry["name"], entry["origin"], entry["path"], note])
    click.echo(table(["STAGE", "FROM", "PATH", "NOTE"], rows))
    return 0


@click.command()
@pass_ctx
def pipelines(ctx: Context) -> int:
    """List the pipeline files available in the project."""
    entries = pipeline_entries(ctx.project)
    if ctx.json:
        emit_json(entries)
        return 0
    if not entries:
        click.echo("No pipelines found. Create .looprunner/pipelines/NAME.yaml.")
        return 0
    click.echo(
        table(["PIPELINE", "FROM", "PATH"], [[e["name"], e["origin"], e["path"]] for e in entries])
    )
    return 0


@click.command()
@click.argument("path", required=False, type=click.Path(path_type=Path))
@pass_ctx
def lint(ctx: Context, path: Path | None) -> int:
    """Validate stage and pipeline definitions (PATH, or the whole project)."""
    from looprunner.definitions.lint import lint as run_lint
    from looprunner.plugins.manager import registries

    target = path if path is not None else ctx.project
    if not target.is_absolute():
        target = (Path.cwd() / target) if path is not None else ctx.project
    report = run_lint(target, project=ctx.project, registries=registries())
    if ctx.json:
        emit_json(lint_answer(report))
    else:
        for finding in report.findings:
            colour = "red" if finding.severity == "error" else "yellow"
            click.echo(style(str(finding), colour))
        summary = (
            f"{report.errors} error(s), {report.warnings} warning(s) "
            f"in {len(report.checked)} definition(s)"
        )
        click.echo(
            summary if report.findings else f"{len(report.checked)} definition(s): no problems"
        )
    return EXIT_BAD_INPUT if report.errors else 0


@click.command("dry-run")
@definition_options
@click.option(
    "--name", default="preview", show_default=True, help="Session name used in the rendered prompt."
)
@pass_ctx
def dry_run(
    ctx: Context,
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
    name: str,
) -> int:
    """Show what a start would run (stages, providers, first prompts); start nothing."""
    from looprunner.cli import legacy_env
    from looprunner.cli.run import resolve_definition
    from looprunner.definitions.dryrun import preview
    from looprunner.names import validate_session_name
    from looprunner.session import Session

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
    warnings: list[str] = []
    session = Session(name, ctx.project)
    try:
        session.check(resolved)
    except ProgramMissingError as exc:
        warnings.append(str(exc))  # a fact of this machine: a program not installed
    # anything else is what start refuses too (an unknown provider, type, ...): exit 2
    planned = None
    try:
        planned = session.plan_worktree(resolved, worktree or None)
    except GitMissingError as exc:
        warnings.append(str(exc))
    plan = preview(
        resolved,
        session=name,
        project=ctx.project,
        registries=session.registries,
    )
    plan["warnings"] = warnings
    plan["worktree"] = (
        None
        if planned is None
        else {
            "path": str(planned.path),
            "branch": planned.branch,
            "base": planned.base,
            "action": planned.action,
            "workdir": str(planned.workdir),
        }
    )
    if ctx.json:
        emit_json(plan)
        return 0
    click.echo(
        f"{plan['type']} {plan['pipeline']!r} as session {name!r} (run dir {plan['run_dir']})"
    )
    if planned is not None:
        click.echo(f"worktree: {planned.sentence()}")
    if plan["inputs"]:
        click.echo("inputs: " + ", ".join(plan["inputs"]))
    for index, node in enumerate(plan["nodes"], 1):
        term = node["termination"]
        heading = style(f"{index}. {node['id']}", bold=True)
        model = f" ({node['model']})" if node["model"] else ""
        extras = f", consensus {term['consensus']}" if term["consensus"] else ""
        if node["inputs"]["from"]:
            extras += f", from {', '.join(node['inputs']['from'])}"
        runner = f"provider {node['provider']}{model}"
        if node["nested"]:
            runner = f"type {node['type']}, {len(node['nested'])} stage run(s)"
        click.echo(
            f"\n{heading}  stage {node['stage']}  {runner}  "
            f"{term['type']}, up to {term['max_iterations']} iteration(s){extras}"
        )
        for inner in node["nested"]:
            inner_model = f" ({inner['model']})" if inner["model"] else ""
            click.echo(
                f"    - {inner['stage']}  provider {inner['provider']}{inner_model}  "
                f"{inner['termination']}, up to {inner['max_iterations']} iteration(s)"
            )
        if not node["nested"]:  # a block's own prompt is empty: its stages have theirs
            click.echo(style("--- first prompt ---", "cyan"))
            click.echo(node["first_prompt"].rstrip())
    for warning in warnings:
        click.echo(style(f"\nwarning: {warning}", "yellow"))
    return 0


@click.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> int:
    """Print the shell completion script for SHELL (commands and session names).

    Add to your shell's startup file, e.g. for bash:
    eval "$(looprunner completion bash)"
    """
    from click.shell_completion import get_completion_class

    from looprunner.cli.app import cli

    cls = get_completion_class(shell)
    assert cls is not None
    click.echo(cls(cli, {}, "looprunner", "_LOOPRUNNER_COMPLETE").source())
    return 0


@click.command()
@pass_ctx
def plugins(ctx: Context) -> int:
    """List the loaded plugins, their distribution and version, and what they add."""
    from looprunner.plugins.manager import make_plugin_manager, plugin_info

    rows = plugin_info(make_plugin_manager())
    if ctx.json:
        emit_json(rows)
        return 0
    table_rows = []
    for row in rows:
        adds = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in row["registers"].items())
        if row["hooks"]:
            adds += ("; " if adds else "") + "hooks: " + ", ".join(row["hooks"])
        dist = f"{row['distribution'] or '-'} {row['version'] or ''}".strip()
        table_rows.append([row["name"], dist, adds])
    click.echo(table(["PLUGIN", "DISTRIBUTION", "ADDS"], table_rows))
    return 0
