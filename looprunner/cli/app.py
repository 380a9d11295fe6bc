"""The command group, global options and error handling shared by every command.

Every error leaves as one line on stderr, ``looprunner: error: ...`` (or
``{"error": {"type", "message"}}`` on stdout with ``--json``), with the exit code of
DESIGN.md: 0 ok, 1 failed, 2 bad input, 3 conflict, 4 not found.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from looprunner.cli.context import Context
from looprunner.cli.output import reader_gone, show_warnings
from looprunner.errors import EXIT_BAD_INPUT, LooprunnerError, UsageError


def fail(
    ctx: Context | None,
    error_type: str,
    message: str,
    code: int,
    next_steps: list[dict[str, object]] | None = None,
) -> NoReturn:
    """Report an error the way the caller asked for and exit with ``code``.

    With ``--json``, ``next_steps`` (the way out, see :mod:`looprunner.views.hints`)
    goes with the error as ``next`` when there is one.
    """
    if ctx is not None and ctx.json:
        from looprunner.cli.output import emit_json

        answer: dict[str, object] = {"error": {"type": error_type, "message": message}}
        if next_steps:
            answer["next"] = next_steps
        emit_json(answer)
    else:
        # several problems (every missing stage of a pipeline) are one line each
        for line in message.splitlines() or [message]:
            click.echo(f"looprunner: error: {line}", err=True)
    sys.exit(code)


#: the commands that take backend options (see looprunner.cli.backend_flags)
LAUNCHING = ("start", "resume", "restart")
#: command name -> "module:function"; a command's module is imported only when it runs,
#: so ``looprunner status`` does not pay for importing every other command
COMMANDS = {
    "start": "run:start",
    "wait": "run:wait",
    "demo": "run:demo",
    "engine": "run:engine",
    "list": "inspect:list_sessions",
    "status": "inspect:status",
    "kill": "control:kill",
    "resume": "control:resume",
    "cleanup": "control:cleanup",
    "monitor": "operate:monitor",
    "attach": "operate:attach",
    "tail": "operate:tail",
    "stages": "define:stages",
    "pipelines": "define:pipelines",
    "lint": "define:lint",
    "dry-run": "define:dry_run",
    "completion": "define:completion",
    "plugins": "define:plugins",
    "doctor": "doctor:doctor",
    "runs": "runs:runs",
    "rm": "runs:rm",
    "prune": "runs:prune",
    "restart": "runs:restart",
    "skill": "skill:skill",
    "mcp": "mcp_server:mcp",
    "top": "top:top",
}


class LazyGroup(click.Group):
    """A group that imports each command's module on first use."""

    @property
    def commands(self) -> dict[str, click.Command]:
        """Every command, imported (for documentation tools that walk the group)."""
        return {name: self._load(name) for name in COMMANDS}

    @commands.setter
    def commands(self, value: object) -> None:
        """Ignore click's own table: :data:`COMMANDS` is the table."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Return the command names without importing their modules."""
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Import and return one command."""
        return self._load(cmd_name) if cmd_name in COMMANDS else None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List the commands with their whole first help line, never cut with "..."."""
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=200)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def _load(self, cmd_name: str) -> click.Command:
        target = COMMANDS[cmd_name]
        module, _, attribute = target.partition(":")
        command = getattr(importlib.import_module(f"looprunner.cli.{module}"), attribute)
        assert isinstance(command, click.Command)
        if cmd_name in LAUNCHING:  # each installed backend's own flags (--ray-address)
            from looprunner.cli import backend_flags

            backend_flags.extend(command)
        return command


@click.group(
    cls=LazyGroup,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--project",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    show_default=True,
    help="Project folder whose sessions to manage.",
)
@click.option("--json", "as_json", is_flag=True, help="Answer with stable, machine-readable JSON.")
@click.version_option(package_name="looprunner", prog_name="looprunner")
@click.pass_context
def cli(click_ctx: click.Context, project: Path, as_json: bool) -> None:
    """Run coding-agent loops in the background and manage their whole life."""
    folder = project.expanduser().resolve()
    if not folder.is_dir():  # not "no sessions": the folder itself is the mistake
        raise UsageError(f"--project {project}: no such folder")
    click_ctx.obj = Context(project=folder, json=as_json)
    if click_ctx.invoked_subcommand is None:
        if sys.stdin.isatty() and sys.stdout.isatty() and not as_json:
            from looprunner.cli import front

            front.run(click_ctx, click_ctx.obj)
        else:
            click.echo(click_ctx.get_help())


def global_options_first(args: list[str]) -> list[str]:
    """Move ``--json`` and ``--project DIR`` given after the command to before it.

    DESIGN.md accepts the global options on either side of the command
    (``looprunner status NAME --json``); click takes a group's options only before the
    command. Nothing after ``--`` is moved.
    """
    head: list[str] = []
    rest: list[str] = []
    seen_command = False
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest += args[i:]
            break
        if seen_command and arg == "--json":
            head.append(arg)
        elif seen_command and arg == "--project" and i + 1 < len(args):
            head += [arg, args[i + 1]]
            i += 1
        elif seen_command and arg.startswith("--project="):
            head.append(arg)
        else:
            if not seen_command and arg in COMMANDS:
                seen_command = True
            elif not seen_command and arg == "--project" and i + 1 < len(args):
                rest += [arg, args[i + 1]]  # before the command: its value is no command
                i += 2
                continue
            rest.append(arg)
        i += 1
    return head + rest


def _error_hints(exc: LooprunnerError, args: list[str]) -> list[dict[str, object]]:
    """Return the ``next`` hints of a refused command (``args`` after global_options_first)."""
    from looprunner.views.hints import for_error

    command = None
    i = 0
    while i < len(args) and command is None:
        if args[i] == "--project":
            i += 1  # its value is no command
        elif args[i] in COMMANDS:
            command = args[i]
        i += 1
    session = getattr(exc, "session", None)
    return for_error(exc.type, command=command, argv=args, session=session)


def main(argv: list[str] | None = None) -> None:
    """Run the command line; never shows a traceback for an expected error."""
    args = global_options_first(list(argv if argv is not None else sys.argv[1:]))
    show_warnings()
    try:
        result: Any = cli.main(args=args, prog_name="looprunner", standalone_mode=False)
    except click.exceptions.Abort as exc:
        if isinstance(exc.__cause__ or exc.__context__, KeyboardInterrupt):
            click.echo("looprunner: interrupted", err=True)
            sys.exit(130)  # Ctrl-C, as the shell reports it
        click.echo("looprunner: aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        fail(
            Context(project=Path.cwd(), json="--json" in args),
            "usage",
            exc.format_message(),
            EXIT_BAD_INPUT if exc.exit_code == 2 else exc.exit_code,
        )
    except BrokenPipeError:
        reader_gone()
    except Exception as exc:
        refused(exc, args)
    except KeyboardInterrupt:
        click.echo("looprunner: interrupted", err=True)
        sys.exit(130)
    sys.exit(result if isinstance(result, int) else 0)


def refused(exc: BaseException, args: list[str]) -> NoReturn:
    """Report an error a command raised (``args`` after global_options_first), and exit.

    The thin entry (:mod:`looprunner.cli.quick`) reports its errors here too, so an
    error reads the same whichever way the command was reached.
    """
    fallback = Context(project=Path.cwd(), json="--json" in args)
    if isinstance(exc, LooprunnerError):
        fail(fallback, exc.type, exc.message, exc.exit_code, _error_hints(exc, args))
    if isinstance(exc, KeyboardInterrupt):
        click.echo("looprunner: interrupted", err=True)
        sys.exit(130)
    if os.environ.get("LOOPRUNNER_DEBUG"):
        raise exc
    from looprunner.store.diskfault import DISK_FULL, fault_type

    kind = fault_type(exc)
    if kind is not None and isinstance(exc, OSError):  # a full or read-only disk
        reason = "no space left on device" if kind == DISK_FULL else "read-only file system"
        fail(fallback, kind, f"{reason}: cannot write {exc.filename or 'a file'}", 1)
    fail(
        fallback,
        "internal",
        f"internal error: {type(exc).__name__}: {exc} (set LOOPRUNNER_DEBUG=1 for a traceback)",
        1,
    )
