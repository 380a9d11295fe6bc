"""The ``looprunner`` command line: a thin client of the Session API."""

from looprunner.cli.app import main

__all__ = ["main"]
