"""The thin entry: commands that only look run here, without building the click app.

``looprunner status NAME`` is typed often and answered in a few milliseconds of work;
importing click and every command's options costs more than that work. This module
parses the few options of ``status``, ``list`` and ``--version`` by hand and prints
through :mod:`looprunner.cli.looking`, the code the click commands print through. Any
word it does not know (``--help``, a misspelt option, a missing argument, ``--``) sends
the whole command line to click unchanged, so click still gives every usage error and
all help; an error the command raises is reported by :func:`looprunner.cli.app.refused`,
as the full command line reports it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

from looprunner.cli.output import echo, show_warnings

#: the options each command served here takes, each with a value (``--opt V``, ``--opt=V``)
OPTIONS = {
    "status": frozenset(),
    "list": frozenset({"--long-running", "--health", "--stage", "--since", "--sort"}),
}
#: set by the shell when it asks click to complete a word (see ``looprunner completion``)
COMPLETING = "_LOOPRUNNER_COMPLETE"
#: the values ``list --sort`` accepts (as :data:`looprunner.cli.inspect.SORTS`)
SORTS = ("age", "cost", "name")


class Parsed:
    """A command line this module serves: the project, ``--json``, command and values."""

    def __init__(self) -> None:
        self.project: str | None = None
        self.json = False
        self.command: str | None = None
        self.positional: list[str] = []
        self.options: dict[str, str] = {}


def parse(argv: list[str]) -> Parsed | None:
    """Read ``argv`` if it is a command served here, else None (click reads it)."""
    parsed = Parsed()
    words = iter(argv)
    for word in words:
        name, eq, inline = word.partition("=")
        if word == "--json":
            parsed.json = True
        elif name == "--project" and parsed.project is None:
            parsed.project = inline if eq else next(words, None)
            if not parsed.project:
                return None
        elif parsed.command is None and word in OPTIONS:
            parsed.command = word
        elif parsed.command is not None and name in OPTIONS[parsed.command]:
            value = inline if eq else next(words, None)
            if value is None or name in parsed.options:
                return None
            parsed.options[name] = value
        elif parsed.command is not None and not word.startswith("-"):
            parsed.positional.append(word)
        else:  # --help, --version among others, an unknown option, "--": click's
            return None
    return parsed if parsed.command is not None else None


def project_folder(given: str | None) -> Path | None:
    """Resolve the project folder as the full command line does; None if it is no folder."""
    folder = Path(given if given is not None else ".").expanduser().resolve()
    return folder if folder.is_dir() else None


def command(parsed: Parsed, project: Path) -> Callable[[], int] | None:
    """Return the command to run, or None when click must say what is wrong."""
    from looprunner.cli import looking

    if parsed.command == "status" and len(parsed.positional) == 1:
        name = parsed.positional[0]
        return lambda: looking.show_status(project, parsed.json, name)
    if parsed.command != "list" or parsed.positional:
        return None
    options = parsed.options
    long_running = None
    if "--long-running" in options:
        try:
            long_running = float(options["--long-running"])
        except ValueError:
            return None
    sort = options.get("--sort")
    if sort is not None and sort not in SORTS:
        return None
    return lambda: looking.show_list(
        project,
        parsed.json,
        long_running=long_running,
        health_filter=options.get("--health"),
        stage=options.get("--stage"),
        since=options.get("--since"),
        sort=sort,
    )


def run(argv: list[str]) -> bool:
    """Run ``argv`` here if it is a command served here (then exit); False if not."""
    if argv == ["--version"]:
        from looprunner._version import __version__

        echo(f"looprunner, version {__version__}")
        sys.exit(0)
    if COMPLETING in os.environ:  # click's shell completion reads the words itself
        return False
    parsed = parse(argv)
    project = project_folder(parsed.project) if parsed is not None else None
    chosen = command(parsed, project) if parsed is not None and project is not None else None
    if chosen is None:
        return False
    show_warnings()
    try:
        code = chosen()
    except (Exception, KeyboardInterrupt) as exc:
        from looprunner.cli.app import global_options_first, refused

        refused(exc, global_options_first(argv))
    sys.exit(code)
