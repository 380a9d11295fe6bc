"""The next useful actions, as data: the ``next`` key of ``--json`` answers.

A person reading ``looprunner status`` sees ``next: looprunner resume auth``; an agent
or a script reading ``--json`` should not have to know our command set to find the same
way on. Each hint is ``{"command": [argv...], "why": "..."}``, an argv ready to run in
the same project (it starts ``looprunner --json``), never a shell string. The MCP server
and the ``/sessions`` skill pass them on unchanged.

Pure data from a health or an error type: nothing here reads a file or asks tmux, so
every answer that carries hints costs nothing more to build; and nothing here builds a
model, so the quick look (:mod:`looprunner.glance`) gives the same hints.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing itself is not imported: a quick look needs nothing of it
if TYPE_CHECKING:
    from collections.abc import Sequence

    from looprunner.models import SessionStatus

#: one hint: ``{"command": [...], "why": "..."}``
Hint = dict[str, object]

#: every hint's argv starts with this: the same project, a JSON answer
PREFIX = ("looprunner", "--json")


def hint(why: str, *args: str) -> Hint:
    """Build one hint running ``looprunner --json ARGS...``."""
    return {"command": [*PREFIX, *args], "why": why}


def _watch(name: str) -> list[Hint]:
    return [
        hint("see what it printed lately", "monitor", name, "--lines", "50"),
        hint("read its latest events", "tail", name, "--lines", "20"),
    ]


def _restart(name: str) -> Hint:
    return hint(
        "run it again from the start, the old run kept aside (ask the user first)",
        "restart",
        name,
    )


def for_health(name: str, health: str) -> list[Hint]:
    """Return the actions worth taking on session ``name`` in this health.

    ``health`` is a :class:`~looprunner.models.Health` or its word (the quick look's):
    the two compare equal, and comparing words loads no enum.
    """
    if health == "running":
        return [
            *_watch(name),
            hint("block until it finishes", "wait", name),
            hint("stop it (ask the user first)", "kill", name, "--yes"),
        ]
    if health == "crashed":
        return [
            hint("continue from its last completed iteration", "resume", name),
            hint("see what its engine printed before it died", "monitor", name, "--lines", "50"),
            hint(
                "record it as crashed and free its stale lock (ask the user first)",
                "cleanup",
                "--fix",
                "--yes",
            ),
        ]
    if health == "failed":
        return [
            hint("read the events that led to the failure", "tail", name, "--lines", "20"),
            hint("run the failed iteration again, keeping the completed ones", "resume", name),
            _restart(name),
        ]
    if health == "killed":
        return [
            hint("continue from its last completed iteration", "resume", name),
            hint("read its latest events", "tail", name, "--lines", "20"),
            _restart(name),
        ]
    if health == "complete":
        return [*_watch(name), _restart(name)]
    if health == "orphaned":
        return [
            hint(
                "remove the tmux session no engine runs in (ask the user first)",
                "cleanup",
                "--fix",
                "--yes",
            ),
            hint("stop whatever runs in it (ask the user first)", "kill", name, "--yes"),
        ]
    if health == "unknown":
        return [
            hint("ask again once the backend can be reached", "status", name),
            hint("check that tmux works on this machine", "doctor"),
        ]
    return [hint("see which sessions exist", "list")]


def for_status(status: SessionStatus) -> list[Hint]:
    """Return the actions worth taking on a session, from its status."""
    if status.state is None and status.fault is not None:  # its run folder was deleted
        return [hint("repair what is left of it", "cleanup", "--fix", "--yes")]
    return for_health(status.session, status.health)


def after_start(name: str) -> list[Hint]:
    """Return what to do once ``start`` or ``resume`` handed a session to its engine."""
    return [
        hint("check its health and progress", "status", name),
        hint("see what it printed lately", "monitor", name, "--lines", "50"),
        hint("block until it finishes", "wait", name),
    ]


def for_error(
    error_type: str, *, command: str | None, argv: Sequence[str], session: str | None
) -> list[Hint]:
    """Return the way out of a refused command, from its error type and argv.

    ``command`` is the command's name (``start``), ``argv`` everything given after
    ``looprunner`` (global options included), so a conflict on ``start`` can offer the
    same start again with ``--force``.
    """
    if error_type == "not_found":
        return [hint("see which sessions exist", "list")]
    if session is None or error_type not in ("conflict", "foreign_lock"):
        return []
    hints = [hint("see what state it is in", "status", session)]
    if error_type == "foreign_lock":
        return hints
    hints.append(hint("if it is running: stop it (ask the user first)", "kill", session, "--yes"))
    if command == "start" and "--force" not in argv:
        again = [arg for arg in argv if arg != "--json"]
        hints.append(
            {
                "command": [*PREFIX, *again, "--force"],
                "why": "if it finished: move its old run aside and start afresh",
            }
        )
    return hints
