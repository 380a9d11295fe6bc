"""The two model APIs the fake model server speaks: Anthropic Messages and OpenAI Responses.

Each reply is chosen from the request alone (see
:mod:`looprunner.testing.fake_model_server`): a first turn that offers the CLI's shell
tool gets a tool call, a request carrying that tool's result gets the final text, and
anything else a short text. Replies stream as the real APIs' server-sent events.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from looprunner.testing.fake_model_server import _Handler

#: the tools through which each CLI runs a shell command
ANTHROPIC_SHELL_TOOLS = ("Bash",)
OPENAI_SHELL_TOOLS = ("shell", "shell_command", "exec_command", "local_shell")


# -- Anthropic Messages ------------------------------------------------------------------


def _tool_names(body: dict[str, Any]) -> set[str]:
    names = set()
    for tool in body.get("tools") or ():
        if isinstance(tool, dict):
            name = tool.get("name") or (tool.get("function") or {}).get("name") or tool.get("type")
            if isinstance(name, str):
                names.add(name)
    return names


def _anthropic_has_tool_result(body: dict[str, Any]) -> bool:
    messages = body.get("messages") or []
    if not messages or not isinstance(messages[-1], dict):
        return False
    content = messages[-1].get("content")
    return isinstance(content, list) and any(
        isinstance(part, dict) and part.get("type") == "tool_result" for part in content
    )


def anthropic_reply(handler: _Handler, body: dict[str, Any]) -> None:
    """Answer one ``POST /v1/messages``, streamed unless the request asked otherwise."""
    owner = handler.owner
    shell = next((n for n in ANTHROPIC_SHELL_TOOLS if n in _tool_names(body)), None)
    block: dict[str, Any]
    if shell and not _anthropic_has_tool_result(body):
        command = owner.command_for(owner._next_first_turn())
        block = {"type": "tool_use", "id": f"toolu_{owner.next_id():06d}", "name": shell}
        tool_input = {"command": command, **owner.tool_options}
        delta = {"type": "input_json_delta", "partial_json": json.dumps(tool_input)}
        stop_reason = "tool_use"
    else:
        text = owner.final_text if shell else "Fake reply."
        block = {"type": "text", "text": ""}
        delta = {"type": "text_delta", "text": text}
        stop_reason = "end_turn"
    usage = owner._record("anthropic")
    message_id = f"msg_{owner.next_id():06d}"
    start_usage = {
        "input_tokens": usage.input_tokens,
        "output_tokens": 1,
        "cache_creation_input_tokens": usage.cache_creation_input_tokens,
        "cache_read_input_tokens": usage.cache_read_input_tokens,
    }
    message: dict[str, Any] = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": body.get("model") or owner.model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": start_usage,
    }
    if not body.get("stream"):
        whole = dict(block)
        if whole["type"] == "tool_use":
            whole["input"] = json.loads(delta["partial_json"])
        else:
            whole["text"] = delta["text"]
        final_usage = {**start_usage, "output_tokens": usage.output_tokens}
        handler._json(
            200, {**message, "content": [whole], "stop_reason": stop_reason, "usage": final_usage}
        )
        return
    if block["type"] == "tool_use":
        block = {**block, "input": {}}
    handler.start_stream()
    handler.send_events(
        iter(
            [
                ("message_start", {"type": "message_start", "message": message}),
                (
                    "content_block_start",
                    {"type": "content_block_start", "index": 0, "content_block": block},
                ),
                (
                    "content_block_delta",
                    {"type": "content_block_delta", "index": 0, "delta": delta},
                ),
                ("content_block_stop", {"type": "content_block_stop", "index": 0}),
                (
                    "message_delta",
                    {
                        "type": "message_delta",
                        "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                        "usage": {"output_tokens": usage.output_tokens},
                    },
                ),
                ("message_stop", {"type": "message_stop"}),
            ]
        )
    )


# -- OpenAI Responses -----------------------------------------------------------------------


def _openai_has_tool_result(body: dict[str, Any]) -> bool:
    items = body.get("input")
    if not isinstance(items, list):
        return False
    for item in reversed(items):
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind in ("function_call_output", "custom_tool_call_output", "local_shell_call_output"):
            return True
        if kind == "message" and item.get("role") == "user":
            return False
    return False


def _openai_call(name: str, call_id: str, item_id: str, command: str) -> dict[str, Any]:
    if name == "exec_command":
        arguments: dict[str, Any] = {"cmd": command}
    elif name == "shell_command":
        arguments = {"command": command}
    else:
        arguments = {"command": ["bash", "-lc", command]}
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call_id,
        "name": name,
        "arguments": json.dumps(arguments),
        "status": "completed",
    }


def openai_reply(handler: _Handler, body: dict[str, Any]) -> None:
    """Answer one ``POST /v1/responses`` as a stream of Responses events."""
    owner = handler.owner
    names = _tool_names(body)
    shell = next((n for n in OPENAI_SHELL_TOOLS if n in names), None)
    response_id = f"resp_{owner.next_id():06d}"
    item_id = f"item_{owner.next_id():06d}"
    text = ""
    if shell and not _openai_has_tool_result(body):
        command = owner.command_for(owner._next_first_turn())
        item = _openai_call(shell, f"call_{owner.next_id():06d}", item_id, command)
    else:
        text = owner.final_text if shell else "Fake reply."
        item = {
            "type": "message",
            "id": item_id,
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": []}],
        }
    usage = owner._record("openai")
    base = {"id": response_id, "object": "response", "model": body.get("model") or owner.model}
    completed_usage = {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": usage.cache_read_input_tokens},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }
    events: list[tuple[str, dict[str, Any]]] = [
        (
            "response.created",
            {"type": "response.created", "response": {**base, "status": "in_progress"}},
        ),
    ]
    added = dict(item, status="in_progress")
    if item["type"] == "message":
        added["content"] = []
    else:
        added["arguments"] = ""
    events.append(
        (
            "response.output_item.added",
            {"type": "response.output_item.added", "output_index": 0, "item": added},
        )
    )
    if text:
        events.append(
            (
                "response.output_text.delta",
                {
                    "type": "response.output_text.delta",
                    "item_id": item_id,
                    "output_index": 0,
                    "content_index": 0,
                    "delta": text,
                },
            )
        )
    events.append(
        (
            "response.output_item.done",
            {"type": "response.output_item.done", "output_index": 0, "item": item},
        )
    )
    events.append(
        (
            "response.completed",
            {
                "type": "response.completed",
                "response": {
                    **base,
                    "status": "completed",
                    "output": [item],
                    "usage": completed_usage,
                },
            },
        )
    )
    handler.start_stream()
    handler.send_events(iter(events))
