"""The thin entry: commands that only look run here, without building the click app.

``looprunner status NAME`` is typed often and answered in a few milliseconds of work;
importing click and every command's options costs more than that work. This module
parses the few options of ``status``, ``list``, ``tail``, ``wait`` and ``--version`` by
hand and prints through :mod:`looprunner.cli.looking` and
:mod:`looprunner.cli.following`, the code the click commands print through. Any word it
does not read (``--help``, a misspelt option, ``-n5``, a missing argument, ``--``) sends
the whole command line to click unchanged, so click still gives every usage error and
all help; an error the command raises is reported by :func:`looprunner.cli.app.refused`,
as the full command line reports it. Shell completion is click's too.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing itself is not imported: ``--version`` needs nothing of it
if TYPE_CHECKING:
    from collections.abc import Callable

#: the options each command served here takes that have a value (``--opt V``, ``--opt=V``)
OPTIONS = {
    "status": frozenset(),
    "list": frozenset({"--long-running", "--health", "--stage", "--since", "--sort"}),
    "tail": frozenset({"--lines"}),
    "wait": frozenset({"--timeout"}),
}
#: the flags each command served here takes (no value)
FLAGS = {"tail": frozenset({"--follow"}), "wait": frozenset({"--quiet"})}
#: short spellings, as the click commands declare them
SHORT = {"-n": "--lines", "-f": "--follow", "-q": "--quiet"}
#: set by the shell when it asks click to complete a word (see ``looprunner completion``)
COMPLETING = "_LOOPRUNNER_COMPLETE"
#: the values ``list --sort`` accepts (as :data:`looprunner.cli.inspect.SORTS`)
SORTS = ("age", "cost", "name")


class Parsed:
    """A command line this module serves: the project, ``--json``, command and values."""

    def __init__(self) -> None:
        self.project: str | None = None  # --project, taken out of ``options`` at the end
        self.json = False
        self.command: str | None = None
        self.positional: list[str] = []
        self.options: dict[str, str] = {}


def parse(argv: list[str]) -> Parsed | None:
    """Read ``argv`` if it is a command served here, else None (click reads it).

    Only the plain spellings are read here; anything else (``-n5``, an option given
    twice, a value that looks like an option) is left to click, which may accept it.
    """
    parsed = Parsed()
    words = iter(argv)
    for word in words:
        name, eq, inline = word.partition("=") if word.startswith("--") else (word, "", "")
        name = SHORT.get(name, name)
        command = parsed.command or ""
        if word == "--json":
            parsed.json = True
        elif name in ("--project", *OPTIONS.get(command, ())):
            value = inline if eq else next(words, None)
            if not value or value.startswith("-") or name in parsed.options:
                return None
            parsed.options[name] = value
        elif name in FLAGS.get(command, ()) and not eq:
            parsed.options[name] = ""
        elif not command and word in OPTIONS:
            parsed.command = word
        elif command and not word.startswith("-"):
            parsed.positional.append(word)
        else:  # --help, --version among others, an unknown option, "--": click's
            return None
    parsed.project = parsed.options.pop("--project", None)
    return parsed if parsed.command is not None else None


def project_folder(given: str | None) -> str | None:
    """Resolve the project folder as the full command line does; None if it is no folder.

    With :mod:`os.path`, which gives what ``Path(...).expanduser().resolve()`` gives:
    pathlib is not imported by a command that only looks.
    """
    folder = os.path.realpath(os.path.expanduser(given if given is not None else "."))  # noqa: PTH111
    return folder if os.path.isdir(folder) else None  # noqa: PTH112


def command(parsed: Parsed, project: str) -> Callable[[], int] | None:
    """Return the command to run, or None when click must say what is wrong."""
    options = parsed.options
    numbers = {"--long-running": float, "--lines": int, "--timeout": float}
    try:
        values = {key: numbers[key](options[key]) for key in numbers.keys() & options}
    except ValueError:
        return None
    if len(parsed.positional) != (0 if parsed.command == "list" else 1):
        return None
    name = "".join(parsed.positional)
    if parsed.command == "status":
        from looprunner.cli import looking

        return lambda: looking.show_status(project, parsed.json, name)
    if parsed.command == "tail":
        from looprunner.cli import following

        follow = "--follow" in options
        return lambda: following.show_tail(
            project, parsed.json, name, follow, values.get("--lines")
        )
    if parsed.command == "wait":
        from looprunner.cli import following

        quiet = "--quiet" in options
        return lambda: following.show_wait(
            project, parsed.json, name, values.get("--timeout"), quiet
        )
    sort = options.get("--sort")
    if sort is not None and sort not in SORTS:
        return None
    from looprunner.cli import looking

    return lambda: looking.show_list(
        project,
        parsed.json,
        long_running=values.get("--long-running"),
        health_filter=options.get("--health"),
        stage=options.get("--stage"),
        since=options.get("--since"),
        sort=sort,
    )


def run(argv: list[str]) -> bool:
    """Run ``argv`` here if it is a command served here (then exit); False if not."""
    if argv == ["--version"]:
        from looprunner._version import __version__

        print(f"looprunner, version {__version__}", flush=True)
        sys.exit(0)
    if COMPLETING in os.environ:  # click's shell completion reads the words itself
        return False
    parsed = parse(argv)
    project = project_folder(parsed.project) if parsed is not None else None
    chosen = command(parsed, project) if parsed is not None and project is not None else None
    if chosen is None:
        return False
    from looprunner.cli.output import show_warnings

    show_warnings()
    try:
        code = chosen()
    except BrokenPipeError:
        from looprunner.cli.output import reader_gone

        reader_gone()
    except (Exception, KeyboardInterrupt) as exc:
        from looprunner.cli.app import global_options_first, refused

        refused(exc, global_options_first(argv))
    sys.exit(code)
