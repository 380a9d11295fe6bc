"""``looprunner mcp``: the session actions as MCP tools, served on stdin and stdout.

Built on the official ``mcp`` SDK, imported only here and only when the command runs
(``pip install 'looprunner[mcp]'``): the core never needs it. The tools themselves are
in :mod:`looprunner.cli.mcp_tools`.

stdout belongs to the protocol. Before serving, the descriptors 0 and 1 are taken for
the wire and replaced by ``/dev/null`` and stderr, so a stray ``print``, a warning, a
library's log line, or a child process (tmux, an engine started in the foreground)
can never write into the protocol stream or read from it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import click

from looprunner.cli.context import Context, pass_ctx
from looprunner.cli.mcp_tools import BY_NAME, TOOLS, check_arguments, start_argv
from looprunner.errors import LooprunnerError
from looprunner.views import hints

INSTRUCTIONS = (
    "Manage looprunner sessions (background coding-agent loops) of one project. Check a "
    "stage with `stages` before `start`; ask the user before `kill` or `cleanup` with "
    "fix. Answers carry `next`: the useful actions from here, as looprunner argv."
)


def call(project: Path, name: str, args: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Run one tool; return its answer and whether it is an error (never raises)."""
    spec = BY_NAME.get(name)
    if spec is None:
        known = ", ".join(BY_NAME)
        error = {"type": "usage", "message": f"no tool named {name!r}; tools: {known}"}
        return {"error": error}, True
    try:
        check_arguments(spec, args)
        return spec.handler(project, args), False
    except LooprunnerError as exc:
        argv = start_argv(args) if name == "start" else [name]
        session = getattr(exc, "session", None)
        answer: dict[str, Any] = {"error": {"type": exc.type, "message": exc.message}}
        steps = hints.for_error(exc.type, command=name, argv=argv, session=session)
        if steps:
            answer["next"] = steps
        return answer, True
    except Exception as exc:  # a tool's failure is an answer, never the server's end
        message = f"internal error: {type(exc).__name__}: {exc}"
        return {"error": {"type": "internal", "message": message}}, True


@contextlib.contextmanager
def wire() -> Iterator[tuple[BinaryIO, BinaryIO]]:
    """Take descriptors 0 and 1 for the protocol; give the rest /dev/null and stderr."""
    sys.stdout.flush()
    wire_in, wire_out = os.dup(0), os.dup(1)  # not inherited by child processes
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    read = os.fdopen(wire_in, "rb", closefd=False)
    write = os.fdopen(wire_out, "wb", closefd=False)
    try:
        yield read, write
    finally:
        with contextlib.suppress(OSError, ValueError):
            write.flush()
        os.dup2(wire_in, 0)  # give the process its own stdin and stdout back
        os.dup2(wire_out, 1)
        os.close(wire_in)
        os.close(wire_out)


def serve(project: Path, read: BinaryIO, write: BinaryIO) -> None:
    """Serve the tools for ``project`` over the given streams until the client leaves."""
    import anyio
    from mcp import types
    from mcp.server.lowlevel import Server
    from mcp.server.stdio import stdio_server

    from looprunner._version import __version__

    tools = [
        types.Tool(
            name=spec.name,
            description=spec.description,
            input_schema=spec.input_schema,
            output_schema=spec.output,
            annotations=types.ToolAnnotations(
                read_only_hint=spec.read_only,
                destructive_hint=spec.destructive,
                idempotent_hint=spec.read_only,
                open_world_hint=False,
            ),
        )
        for spec in TOOLS
    ]
    one_at_a_time = threading.Lock()  # tool calls share one plugin manager and project

    def run(name: str, args: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        with one_at_a_time:
            return call(project, name, args)

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools)

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        answer, failed = await anyio.to_thread.run_sync(run, params.name, params.arguments or {})
        text = json.dumps(answer, indent=2, default=str)
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=text)],
            structured_content=json.loads(text),
            is_error=failed,
        )

    server: Server[Any] = Server(
        "looprunner",
        version=__version__,
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )

    async def main() -> None:
        stdin = anyio.wrap_file(io.TextIOWrapper(read, encoding="utf-8", errors="replace"))
        stdout = anyio.wrap_file(io.TextIOWrapper(write, encoding="utf-8"))
        async with stdio_server(stdin=stdin, stdout=stdout) as (reader, writer):
            await server.run(reader, writer, server.create_initialization_options())

    anyio.run(main)


@click.command()
@pass_ctx
def mcp(ctx: Context) -> int:
    """Serve the session actions as MCP tools on stdio (needs looprunner[mcp])."""
    try:
        import mcp.server  # noqa: F401 - imported here only to say clearly when it is missing
    except ImportError as exc:
        raise LooprunnerError(
            "looprunner mcp needs the MCP SDK: pip install 'looprunner[mcp]'"
        ) from exc
    click.echo(f"looprunner mcp: serving {ctx.project} on stdio", err=True)
    with wire() as (read, write):
        serve(ctx.project, read, write)
    return 0
