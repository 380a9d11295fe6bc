"""loop-agents' override variables, read where they map onto an option of ``start``.

loop-agents' ``run.sh`` turned ``--provider=``, ``--model=``, ``--context=`` and
``--input`` into ``PIPELINE_CLI_*`` variables, and read ``CLAUDE_PIPELINE_PROVIDER``,
``CLAUDE_PIPELINE_MODEL`` and ``CLAUDE_PIPELINE_CONTEXT`` from the user's environment.
A script that still sets them gets the same overrides from ``start`` and ``dry-run``:
each variable fills its option when the option is not given (the option wins), with a
warning naming the option to pass instead. Like the options, they fill only what a
stage or node leaves unset.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import attrs
import click

from looprunner.errors import UsageError

#: option -> the variables that give it, the first set one winning (as in loop-agents)
VARIABLES = {
    "provider": ("PIPELINE_CLI_PROVIDER", "CLAUDE_PIPELINE_PROVIDER"),
    "model": ("PIPELINE_CLI_MODEL", "CLAUDE_PIPELINE_MODEL"),
    "context": ("PIPELINE_CLI_CONTEXT", "CLAUDE_PIPELINE_CONTEXT"),
}
INPUTS_VARIABLE = "PIPELINE_CLI_INPUTS"


@attrs.frozen
class Overrides:
    """What ``start`` was asked to override, options and variables combined."""

    provider: str | None
    model: str | None
    context: str | None
    inputs: tuple[Path, ...]


def apply(overrides: Overrides, environ: Mapping[str, str] | None = None) -> Overrides:
    """Fill the options left unset from loop-agents' variables, warning about each used."""
    env = os.environ if environ is None else environ
    values = attrs.asdict(overrides, recurse=False)
    for option, names in VARIABLES.items():
        if values[option] is not None:
            continue
        for name in names:
            if env.get(name):
                values[option] = env[name]
                _warn(f"{name} is read as --{option}; pass --{option} instead")
                break
    raw = env.get(INPUTS_VARIABLE)
    if not values["inputs"] and raw:
        try:
            files = json.loads(raw)
        except ValueError:
            files = None
        if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
            raise UsageError(
                f"{INPUTS_VARIABLE} must be a JSON list of file paths (as loop-agents wrote "
                "it); pass each file with --input instead"
            )
        values["inputs"] = tuple(Path(f) for f in files)
        _warn(f"{INPUTS_VARIABLE} is read as --input; pass --input FILE instead")
    return Overrides(**values)


def _warn(message: str) -> None:
    click.echo(f"looprunner: warning: {message}", err=True)
