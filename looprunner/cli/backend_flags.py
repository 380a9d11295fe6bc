"""The backends' own options on ``start``, ``resume`` and ``restart``.

``--backend-option NAME=VALUE`` (repeatable) always exists; besides it, each installed
backend's declared options get their own flag (``--ray-address``), added when the
command is built, so ``looprunner start --help`` lists them. The flags only collect
values: which backend they belong to is checked here, which names a backend has and
where the other values come from is the library's (:mod:`looprunner.session.backend_options`).
"""

from __future__ import annotations

from typing import Any

import click

from looprunner.errors import LooprunnerError, UsageError

#: where the flags' values wait for the command: (backend, option) -> (flag, value)
_META = "looprunner.backend_flags"
#: the commands that launch an engine, and so take backend options
LAUNCHING = ("start", "resume", "restart")


def _remember(backend: str, option: str, flag: str) -> Any:
    def store(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
        if value is not None:
            ctx.meta.setdefault(_META, {})[(backend, option)] = (flag, value)

    return store


def extend(command: click.Command) -> click.Command:
    """Add each installed backend's option flags to ``command`` (once)."""
    if getattr(command, "_looprunner_backend_flags", False):
        return command
    command._looprunner_backend_flags = True  # type: ignore[attr-defined]
    from looprunner.backend_settings import options_of
    from looprunner.plugins.manager import make_plugin_manager
    from looprunner.plugins.registry import Registries

    try:
        backends = Registries(make_plugin_manager()).backends
    except LooprunnerError:  # a broken plugin is reported when a command uses it
        return command
    taken = {opt for param in command.params for opt in getattr(param, "opts", ())}
    for name in backends:
        for option in options_of(backends.get(name)):
            if option.flag in taken or not option.flag.startswith("--"):
                continue
            taken.add(option.flag)
            env = f" (default: ${option.env})" if option.env else ""
            command.params.append(
                click.Option(
                    [option.flag],
                    default=None,
                    expose_value=False,
                    callback=_remember(name, option.name, option.flag),
                    help=f"{option.help or option.name} [backend {name}]{env}",
                )
            )
    return command


def backend_option_flag(command: Any) -> Any:
    """Decorate a launching command with ``--backend-option NAME=VALUE`` (repeatable)."""
    return click.option(
        "--backend-option",
        "backend_option",
        multiple=True,
        metavar="NAME=VALUE",
        help="Set an option of the backend (repeatable); see 'looprunner plugins'.",
    )(command)


def given(backend: str | None, pairs: tuple[str, ...]) -> dict[str, str] | None:
    """Return the backend options the command line set (None if it set none).

    ``backend`` is the backend the command launches on (None: the session's own); a
    flag of another backend is refused (exit 2), as is a pair without ``=``.
    """
    values: dict[str, str] = {}
    flags = click.get_current_context().meta.get(_META, {})
    for (owner, option), (flag, value) in flags.items():
        if backend is not None and owner != backend:
            raise UsageError(f"{flag} is an option of backend {owner!r}, not of {backend!r}")
        values[option] = value
    for pair in pairs:
        option, sep, value = pair.partition("=")
        if not sep or not option.strip():
            raise UsageError(f"--backend-option {pair!r}: expected NAME=VALUE")
        values[option.strip()] = value
    return values or None
