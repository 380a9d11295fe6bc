"""The MCP server, driven by the official SDK's own client over stdio, on real sessions."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("mcp")

import anyio
from mcp import ClientSession, StdioServerParameters, stdio_client

pytestmark = pytest.mark.tmux

#: runs the server and copies everything it writes on stdout to a file as well, so the
#: test sees the raw stream the client parsed
RELAY = """
import subprocess, sys
log = open(sys.argv[1], "wb")
child = subprocess.Popen(sys.argv[2:], stdout=subprocess.PIPE)
for line in child.stdout:
    log.write(line)
    log.flush()
    sys.stdout.buffer.write(line)
    sys.stdout.buffer.flush()
sys.exit(child.wait())
"""

TOOLS = {
    "start",
    "list",
    "status",
    "tail",
    "monitor",
    "kill",
    "resume",
    "cleanup",
    "lint",
    "stages",
    "pipelines",
}


def server(project, log, *args):
    return StdioServerParameters(
        command=sys.executable,
        args=["-c", RELAY, str(log), sys.executable, "-m", "looprunner", "mcp", *args],
        env=dict(os.environ),  # carries this test's private LOOPRUNNER_TMUX_SOCKET
        cwd=str(project),
    )


async def call(client, tool, **arguments):
    result = await client.call_tool(tool, arguments)
    return result.is_error, result.structured_content


def test_an_mcp_client_starts_watches_and_kills_sessions(project, make_stage, tmp_path):
    make_stage("work", termination={"type": "fixed", "iterations": 2})
    make_stage("slow", termination={"type": "fixed", "iterations": 50}, extra="mock_delay: 5\n")
    log = tmp_path / "stdout.log"
    seen = {}

    async def scenario():
        async with (
            stdio_client(server(project, log)) as (read, write),
            ClientSession(read, write) as client,
        ):
            await client.initialize()
            tools = {tool.name: tool for tool in (await client.list_tools()).tools}
            seen["tools"] = tools

            failed, stages = await call(client, "stages")
            assert not failed
            assert {s["name"] for s in stages["stages"]} >= {"work", "slow"}

            failed, started = await call(client, "start", name="one", stage="work")
            assert not failed, started
            assert started["health"] in ("running", "complete")
            assert ["looprunner", "--json", "wait", "one"] in [
                h["command"] for h in started["next"]
            ]

            with anyio.fail_after(60):
                while True:
                    failed, status = await call(client, "status", name="one")
                    assert not failed, status
                    if status["health"] != "running":
                        break
                    await anyio.sleep(0.1)
            assert (status["health"], status["iteration_completed"]) == ("complete", 2)

            failed, tail = await call(client, "tail", name="one", lines=100)
            assert not failed
            kinds = [event["type"] for event in tail["events"]]
            assert kinds[0] == "session_start"
            assert kinds[-1] == "session_complete"
            assert kinds.count("iteration_complete") == 2
            failed, later = await call(client, "tail", name="one", since=tail["last_seq"] - 1)
            assert [e["seq"] for e in later["events"]] == [tail["last_seq"]]

            failed, second = await call(client, "start", name="two", stage="slow")
            assert not failed, second
            failed, killed = await call(client, "kill", name="two")
            assert not failed, killed
            assert killed["health"] == "killed"

            failed, listed = await call(client, "list")
            assert {(s["session"], s["health"]) for s in listed["sessions"]} == {
                ("one", "complete"),
                ("two", "killed"),
            }

            seen["bad"] = await call(client, "status", name="Not.A.Name")
            seen["missing"] = await call(client, "monitor", name="nope")
            seen["elsewhere"] = await call(client, "status", name="one", project="/tmp")
            seen["conflict"] = await call(client, "start", name="one", stage="work")
            seen["outside"] = await call(client, "lint", path="../..")
            seen["dry"] = await call(client, "cleanup")

    anyio.run(scenario)

    tools = seen["tools"]
    assert set(tools) == TOOLS
    assert tools["kill"].annotations.destructive_hint is True
    assert tools["cleanup"].annotations.destructive_hint is True
    assert tools["status"].annotations.read_only_hint is True
    assert tools["start"].input_schema["required"] == ["name"]
    assert tools["tail"].input_schema["properties"]["since"]["type"] == "integer"
    assert all(tool.output_schema["type"] == "object" for tool in tools.values())

    failed, bad = seen["bad"]
    assert failed
    assert bad["error"]["type"] == "invalid_session_name"
    assert "Not.A.Name" in bad["error"]["message"]
    failed, missing = seen["missing"]
    assert failed
    assert missing["error"]["type"] == "not_found"
    assert missing["next"] == [
        {"command": ["looprunner", "--json", "list"], "why": missing["next"][0]["why"]}
    ]
    failed, elsewhere = seen["elsewhere"]
    assert failed
    assert "unknown argument 'project'" in elsewhere["error"]["message"]
    failed, conflict = seen["conflict"]
    assert failed
    assert conflict["error"]["type"] == "conflict"
    commands = [h["command"] for h in conflict["next"]]
    assert ["looprunner", "--json", "start", "one", "--stage", "work", "--force"] in commands
    failed, outside = seen["outside"]
    assert failed
    assert "outside the project" in outside["error"]["message"]
    failed, dry = seen["dry"]
    assert not failed
    assert dry["fix"] is False

    # nothing but JSON-RPC messages went out on stdout
    lines = log.read_bytes().splitlines()
    assert len(lines) > 10
    for line in lines:
        assert json.loads(line)["jsonrpc"] == "2.0", line


def test_without_the_sdk_mcp_says_how_to_install_it(project):
    hide = "import sys; sys.modules['mcp'] = None; from looprunner.cli import main; main()"
    result = subprocess.run(
        [sys.executable, "-c", hide, "--project", str(project), "mcp"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "pip install 'looprunner[mcp]'" in result.stderr
    assert result.stdout == ""
