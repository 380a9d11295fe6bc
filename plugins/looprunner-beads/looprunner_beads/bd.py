"""Running ``bd``, the beads command line: an argv list, never a shell, in the project folder.

A session's beads are the issues labelled ``pipeline/SESSION`` (the convention
loop-agents used). Only ``--json`` output is parsed: ``bd ready --json`` and
``bd list --json`` print a JSON array of issue objects (``[]`` when there are none), each
with at least ``id``, ``title`` and ``status``. Both default to a limit of a few issues,
so ``--limit 0`` (no limit) is always passed.

Anything unexpected — bd missing, exiting non-zero, timing out, or printing something
that is not such an array — raises :class:`BeadsError` with bd's own message: an
unreadable queue is never taken to be an empty one.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from looprunner.plugin import LooprunnerError

#: the beads command line, looked up on PATH
BD = "bd"
#: seconds one bd call may take
TIMEOUT = 120.0
#: where beads lives
BEADS_URL = "https://github.com/steveyegge/beads"

Issue = dict[str, Any]


class BeadsError(LooprunnerError):
    """bd could not be run, failed, or printed something bd does not print."""

    type = "beads"


def label(session: str) -> str:
    """Return the label that marks the beads of ``session``."""
    return f"pipeline/{session}"


def _bd_message(result: subprocess.CompletedProcess[str]) -> str:
    """Return the line of bd's output that says what went wrong."""
    lines = [line.strip() for line in (result.stderr or result.stdout).splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        return "no output"
    errors = [line for line in lines if line.lower().startswith("error")]
    return errors[0] if errors else lines[-1]


def run(args: Sequence[str], project: Path) -> str:
    """Run ``bd ARGS...`` in ``project`` and return what it printed on stdout.

    Raises
    ------
    BeadsError
        bd is not installed, did not finish in time, or exited non-zero (the message
        carries bd's own error line).
    """
    argv = [BD, *args]
    what = f"'bd {args[0]}'" if args else "'bd'"
    try:
        result = subprocess.run(
            argv,
            cwd=project,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError as exc:
        raise BeadsError(f"bd is not installed (not on PATH); see {BEADS_URL}") from exc
    except subprocess.TimeoutExpired as exc:
        raise BeadsError(f"{what} did not finish within {TIMEOUT:g}s") from exc
    except OSError as exc:
        raise BeadsError(f"{what} could not be run: {exc}") from exc
    if result.returncode != 0:
        raise BeadsError(f"{what} exited with status {result.returncode}: {_bd_message(result)}")
    return result.stdout


def issues(args: Sequence[str], project: Path) -> list[Issue]:
    """Run ``bd ARGS... --json`` and return the issues it printed."""
    out = run([*args, "--json"], project)
    what = f"'bd {args[0]} --json'"
    try:
        data = json.loads(out)
    except ValueError as exc:
        first = out.strip().splitlines()[:1] or ["nothing"]
        raise BeadsError(f"{what} printed no JSON: {first[0][:200]}") from exc
    if data is None:  # a Go nil slice, from bd versions that do not normalise it
        return []
    if not isinstance(data, list) or not all(
        isinstance(item, dict) and isinstance(item.get("id"), str) for item in data
    ):
        raise BeadsError(f"{what} printed JSON that is not a list of issues")
    return data


def ready(session: str, project: Path) -> list[Issue]:
    """Return the session's ready beads: ``bd ready --label pipeline/SESSION``."""
    return issues(["ready", "--label", label(session), "--limit", "0"], project)


def in_progress(session: str, project: Path) -> list[Issue]:
    """Return the session's claimed beads: ``bd list --status in_progress``."""
    return issues(
        ["list", "--status", "in_progress", "--label", label(session), "--limit", "0"], project
    )


def reopen(issue_id: str, project: Path) -> None:
    """Put a bead back in the queue: ``bd update ID --status open``."""
    run(["update", issue_id, "--status", "open"], project)
