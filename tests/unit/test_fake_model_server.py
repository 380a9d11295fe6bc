"""The test kit's fake model server: scripted replies and fault knobs, over real HTTP."""

from __future__ import annotations

import json
import socket
import threading
import urllib.error
import urllib.request
from typing import Any

import pytest

from looprunner.testing.fake_model_server import FakeModelServer

BASH = {"name": "Bash", "input_schema": {"type": "object"}}
EXEC = {"type": "function", "name": "exec_command", "parameters": {}}


def post(server: FakeModelServer, path: str, body: dict[str, Any], timeout: float = 10) -> Any:
    request = urllib.request.Request(
        server.url + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    return urllib.request.urlopen(request, timeout=timeout)


def sse(response: Any) -> list[dict[str, Any]]:
    text = response.read().decode()
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]


def test_anthropic_stream_calls_bash_then_answers_and_reports_usage(lr_fake_model_server):
    server = lr_fake_model_server
    server.decisions = ("continue",)
    first = sse(post(server, "/v1/messages", {"stream": True, "tools": [BASH], "messages": []}))
    assert [e["type"] for e in first] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert first[1]["content_block"]["name"] == "Bash"
    command = json.loads(first[2]["delta"]["partial_json"])["command"]
    assert '"decision": "continue"' in command and "$LOOPRUNNER_STATUS" in command
    result = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "x"}]}
    second = sse(
        post(server, "/v1/messages", {"stream": True, "tools": [BASH], "messages": [result]})
    )
    assert second[2]["delta"] == {"type": "text_delta", "text": server.final_text}
    assert server.reported["anthropic"].replies == 2
    assert server.reported["anthropic"].input_tokens == 2 * server.usage.input_tokens


def test_openai_stream_calls_exec_command_then_answers(lr_fake_model_server):
    server = lr_fake_model_server
    first = sse(post(server, "/v1/responses", {"stream": True, "tools": [EXEC], "input": []}))
    kinds = [e["type"] for e in first]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    call = first[-1]["response"]["output"][0]
    assert (call["type"], call["name"]) == ("function_call", "exec_command")
    assert "$LOOPRUNNER_STATUS" in json.loads(call["arguments"])["cmd"]
    output = {"type": "function_call_output", "call_id": call["call_id"], "output": "ok"}
    second = sse(
        post(server, "/v1/responses", {"stream": True, "tools": [EXEC], "input": [output]})
    )
    assert "response.output_text.delta" in [e["type"] for e in second]
    assert second[-1]["response"]["usage"]["output_tokens"] == server.usage.output_tokens
    assert server.reported["openai"].cache_creation_input_tokens == 0  # not in this API


@pytest.mark.parametrize(("status", "kind"), [(429, "rate_limit_error"), (529, "overloaded_error")])
def test_fail_answers_with_the_status_then_heals(lr_fake_model_server, status, kind):
    server = lr_fake_model_server
    server.fail(status, times=1)
    with pytest.raises(urllib.error.HTTPError) as raised:
        post(server, "/v1/messages", {"messages": []})
    assert raised.value.code == status
    assert json.loads(raised.value.read())["error"]["type"] == kind
    raised.value.close()
    with post(server, "/v1/messages", {"messages": []}) as ok:  # the next one succeeds
        assert ok.status == 200


def test_hang_accepts_and_never_answers_until_healed(lr_fake_model_server):
    server = lr_fake_model_server
    server.hang()
    with pytest.raises(TimeoutError):
        post(server, "/v1/messages", {"messages": []}, timeout=0.5)
    server.heal()
    with post(server, "/v1/messages", {"messages": []}) as ok:
        assert ok.status == 200


def test_refuse_closes_the_port():
    server = FakeModelServer().start()
    port = server.port
    server.refuse()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5)
    server.stop()


def test_listens_on_loopback_only():
    with FakeModelServer() as server:
        assert server._server.server_address[0] == "127.0.0.1"
        assert threading.active_count() >= 2
