"""The ``looprunner`` command line: a thin client of the Session API."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    """Run the command line: a command that only looks without click, the rest with it."""
    from looprunner.cli import quick

    args = list(argv if argv is not None else sys.argv[1:])
    if not quick.run(args):
        from looprunner.cli.app import main as full

        full(args)


__all__ = ["main"]
