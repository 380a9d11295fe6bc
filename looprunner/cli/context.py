"""What every command receives: the project folder and whether to answer in JSON."""

from __future__ import annotations

from pathlib import Path

import attrs
import click


@attrs.define
class Context:
    """What every command gets: the project folder and whether to answer in JSON."""

    project: Path
    json: bool


pass_ctx = click.make_pass_decorator(Context)
