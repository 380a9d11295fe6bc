"""The MCP server's tools: each one's schema, hints, and the library call behind it.

Nothing here imports the MCP SDK, so the tools can be read, listed and tested without
it; :mod:`looprunner.cli.mcp_server` puts them on the wire. Each tool answers with the
object ``looprunner --json`` gives for the same command (built by
:mod:`looprunner.cli.answers`), wrapped in an object where the command answers with an
array. Every tool works on the one project the server was started for: no argument
names a project, and a path argument must lie inside it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from looprunner.cli.answers import (
    cleanup_answer,
    lint_answer,
    pipeline_entries,
    session_answer,
    stage_entries,
)
from looprunner.errors import UsageError
from looprunner.models import Health, SessionStatus
from looprunner.session import Session, not_found
from looprunner.views import hints

Args = Mapping[str, Any]
Handler = Callable[[Path, Args], dict[str, Any]]

_NAME = {"type": "string", "description": "The session name (lower-case letters, digits, -)."}
_SESSION_OUT = {"type": "object", "required": ["session", "health", "next"]}


@attrs.frozen
class ToolSpec:
    """One tool: its name, what it does, its argument schema, and how it behaves."""

    name: str
    description: str
    properties: dict[str, Any]
    required: tuple[str, ...]
    output: dict[str, Any]
    handler: Handler
    read_only: bool = False
    destructive: bool = False
    idempotent: bool = False

    @property
    def input_schema(self) -> dict[str, Any]:
        """Return the JSON schema of the tool's arguments."""
        return {
            "type": "object",
            "properties": self.properties,
            "required": list(self.required),
            "additionalProperties": False,
        }


_TYPES: dict[str, type | tuple[type, ...]] = {"string": str, "integer": int, "boolean": bool}


def check_arguments(spec: ToolSpec, args: Args) -> None:
    """Refuse arguments the schema does not allow, with a message naming the argument."""
    for key, value in args.items():
        schema = spec.properties.get(key)
        if schema is None:
            known = ", ".join(spec.properties) or "none"
            raise UsageError(f"{spec.name}: unknown argument {key!r} (arguments: {known})")
        kind = schema["type"]
        if kind == "array":
            ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        else:
            ok = isinstance(value, _TYPES[kind]) and not (
                kind == "integer" and isinstance(value, bool)
            )
        if not ok:
            raise UsageError(f"{spec.name}: argument {key!r} must be of type {kind}, got {value!r}")
        if kind == "integer" and value < schema.get("minimum", value):
            raise UsageError(f"{spec.name}: argument {key!r} must be at least {schema['minimum']}")
    missing = [key for key in spec.required if key not in args]
    if missing:
        raise UsageError(f"{spec.name}: missing argument {', '.join(map(repr, missing))}")


def _existing(project: Path, args: Args) -> tuple[Session, SessionStatus]:
    session = Session(args["name"], project)
    status = session.status()
    if status.health is Health.NOT_FOUND:
        raise not_found(args["name"], project)
    return session, status


def _inside(project: Path, given: str, what: str) -> Path:
    path = (project / given).resolve()
    if path != project and project not in path.parents:
        raise UsageError(f"{what} {given!r} is outside the project {project}")
    return path


def start(project: Path, args: Args) -> dict[str, Any]:
    """Resolve the stage or pipeline, start the session, answer its status."""
    from looprunner.builtin.defaults import BACKEND
    from looprunner.definitions.build import build_pipeline
    from looprunner.names import validate_session_name

    name = args["name"]
    validate_session_name(name)
    pipeline = build_pipeline(
        project,
        stage=args.get("stage"),
        pipeline=args.get("pipeline"),
        iterations=args.get("iterations"),
        provider=args.get("provider"),
        model=args.get("model"),
        inputs=tuple((project / p).resolve() for p in args.get("inputs", [])),
        context=args.get("context"),
    )
    session = Session.start(
        name, pipeline, project, backend=BACKEND, force=args.get("force", False)
    )
    return session_answer(session.status(), hints.after_start(name))


def start_argv(args: Args) -> list[str]:
    """Return the ``looprunner start`` argv the same as a start tool call (for hints)."""
    argv = ["start", str(args.get("name", ""))]
    for key, option in (("stage", "--stage"), ("pipeline", "--pipeline"), ("iterations", "-n")):
        if key in args:
            argv += [option, str(args[key])]
    return argv + (["--force"] if args.get("force") else [])


def list_sessions(project: Path, args: Args) -> dict[str, Any]:
    """Answer every session's status object, under ``sessions``."""
    return {"sessions": [session_answer(s) for s in Session.list(project)]}


def status(project: Path, args: Args) -> dict[str, Any]:
    """Answer one session's status object, as ``status --json``."""
    session, result = _existing(project, args)
    queue = session.queue_remaining() if result.state is not None else None
    return {**session_answer(result), "queue_remaining": queue}


def tail(project: Path, args: Args) -> dict[str, Any]:
    """Answer the last events, or those after sequence number ``since``."""
    from looprunner import convert

    session, _ = _existing(project, args)
    lines = args.get("lines")
    if "since" in args:
        events = [e for e in session.events() if e.seq > args["since"]]
        events = events[-lines:] if lines else events
    else:
        events = list(session.events(last=lines or 20))
    last = max((e.seq for e in session.events(last=1)), default=0)
    return {
        "session": args["name"],
        "events": [convert.unstructure(e) for e in events],
        "last_seq": last,
    }


def monitor(project: Path, args: Args) -> dict[str, Any]:
    """Answer the status object plus the last lines the session printed."""
    session, result = _existing(project, args)
    source, text = session.output(args.get("lines", 50))
    return {**session_answer(result), "source": source, "lines": text}


def kill(project: Path, args: Args) -> dict[str, Any]:
    """Stop the session; answer its status afterwards."""
    session, _ = _existing(project, args)
    return session_answer(session.kill())


def resume(project: Path, args: Args) -> dict[str, Any]:
    """Resume a crashed, failed or killed session; answer its status afterwards."""
    session, _ = _existing(project, args)
    session.resume()
    after = session.status()
    running = after.health is Health.RUNNING
    return session_answer(after, hints.after_start(args["name"]) if running else None)


def cleanup(project: Path, args: Args) -> dict[str, Any]:
    """Report (and only with ``fix``, repair) what is out of step."""
    from looprunner.session.maintenance import cleanup as run_cleanup

    return cleanup_answer(run_cleanup(project, fix=args.get("fix", False)))


def lint(project: Path, args: Args) -> dict[str, Any]:
    """Validate the project's definitions, or the one at ``path``."""
    from looprunner.definitions.lint import lint as run_lint
    from looprunner.plugins.manager import registries

    target = _inside(project, args["path"], "path") if "path" in args else project
    return lint_answer(run_lint(target, project=project, registries=registries()))


def stages(project: Path, args: Args) -> dict[str, Any]:
    """Answer the stages found, as ``stages --json``, under ``stages``."""
    return {"stages": stage_entries(project)}


def pipelines(project: Path, args: Args) -> dict[str, Any]:
    """Answer the pipeline files found, as ``pipelines --json``, under ``pipelines``."""
    return {"pipelines": pipeline_entries(project)}


def _array(key: str) -> dict[str, Any]:
    return {"type": "object", "required": [key], "properties": {key: {"type": "array"}}}


TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "start",
        "Start a session running a loop of a stage (or a pipeline) in the background; "
        "returns once its engine runs. Check the stage exists with `stages` first.",
        {
            "name": _NAME,
            "stage": {"type": "string", "description": "A stage to loop (see `stages`)."},
            "pipeline": {"type": "string", "description": "A pipeline (see `pipelines`)."},
            "iterations": {"type": "integer", "minimum": 1, "description": "Iteration cap."},
            "provider": {"type": "string", "description": "For stages that set none."},
            "model": {"type": "string", "description": "For stages that set none."},
            "context": {"type": "string", "description": "Text added to ${CONTEXT}."},
            "inputs": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Files given to the agent (relative to the project).",
            },
            "force": {
                "type": "boolean",
                "description": "Move a finished run of this name aside and start afresh.",
            },
        },
        ("name",),
        _SESSION_OUT,
        start,
    ),
    ToolSpec(
        "list",
        "Every session of the project, with its health.",
        {},
        (),
        _array("sessions"),
        list_sessions,
        read_only=True,
    ),
    ToolSpec(
        "status",
        "One session: health, resources, progress, next actions.",
        {"name": _NAME},
        ("name",),
        _SESSION_OUT,
        status,
        read_only=True,
    ),
    ToolSpec(
        "tail",
        "A session's events: the last `lines` (default 20), or every one after "
        "sequence number `since` (poll with the answer's `last_seq`).",
        {
            "name": _NAME,
            "lines": {"type": "integer", "minimum": 1, "description": "At most this many."},
            "since": {"type": "integer", "minimum": 0, "description": "Only events after it."},
        },
        ("name",),
        _array("events"),
        tail,
        read_only=True,
    ),
    ToolSpec(
        "monitor",
        "What a session printed lately (its tmux pane, or engine.log once it ended).",
        {"name": _NAME, "lines": {"type": "integer", "minimum": 1, "description": "Default 50."}},
        ("name",),
        {**_SESSION_OUT, "required": ["session", "health", "lines", "source"]},
        monitor,
        read_only=True,
    ),
    ToolSpec(
        "kill",
        "Stop a session: its engine and agent end, history kept. Ask the user first.",
        {"name": _NAME},
        ("name",),
        _SESSION_OUT,
        kill,
        destructive=True,
    ),
    ToolSpec(
        "resume",
        "Continue a crashed, failed or killed session from its last completed iteration.",
        {"name": _NAME},
        ("name",),
        _SESSION_OUT,
        resume,
    ),
    ToolSpec(
        "cleanup",
        "Find stale locks, orphaned tmux sessions and zombie states. Changes nothing "
        "unless `fix` is true (ask the user first).",
        {"fix": {"type": "boolean", "description": "Repair what is found."}},
        (),
        _array("problems"),
        cleanup,
        destructive=True,
    ),
    ToolSpec(
        "lint",
        "Validate the project's stage and pipeline definitions, or the one at `path`.",
        {"path": {"type": "string", "description": "A stage folder or pipeline file."}},
        (),
        _array("findings"),
        lint,
        read_only=True,
    ),
    ToolSpec(
        "stages",
        "The stages available in the project and where each comes from.",
        {},
        (),
        _array("stages"),
        stages,
        read_only=True,
    ),
    ToolSpec(
        "pipelines",
        "The pipeline files available in the project.",
        {},
        (),
        _array("pipelines"),
        pipelines,
        read_only=True,
    ),
)

BY_NAME = {tool.name: tool for tool in TOOLS}
