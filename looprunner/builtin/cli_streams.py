"""Reading the event streams of ``claude --output-format stream-json`` and ``codex exec --json``.

Each program prints one JSON object a line while it works. Two things are made of them:
a readable line for engine.log (so ``monitor`` shows the agent's words and commands, not
JSON), and, at the end, an :class:`~looprunner.models.AgentReport`: the final answer,
tokens, cost, turns, the CLI's own session id and version. What a stream does not say
stays None: unknown, never zero.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from looprunner.models import AgentReport, TokenUsage

#: longest command or tool output shown in engine.log (the transcript keeps all of it)
SHOWN = 2000


def _clip(text: str, limit: int = SHOWN) -> str:
    text = text.rstrip()
    return text if len(text) <= limit else text[:limit] + f" … [{len(text) - limit} more]"


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _dict(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


# -- Claude Code ---------------------------------------------------------------------------


def claude_render(event: Mapping[str, Any]) -> str:
    """Return what engine.log shows of one Claude Code event ('' for nothing)."""
    kind = event.get("type")
    if kind == "system" and event.get("subtype") == "init":
        return (
            f"[claude {event.get('claude_code_version', '?')}, model "
            f"{event.get('model', '?')}, session {event.get('session_id', '?')}]\n"
        )
    if kind == "assistant":
        lines = []
        for part in _dict(event.get("message")).get("content") or ():
            part = _dict(part)
            if part.get("type") == "text" and part.get("text"):
                lines.append(str(part["text"]).rstrip())
            elif part.get("type") == "tool_use":
                tool_input = _dict(part.get("input"))
                shown = tool_input.get("command") or json.dumps(tool_input, ensure_ascii=False)
                lines.append(f"> {part.get('name', 'tool')}: {_clip(str(shown))}")
        return "".join(line + "\n" for line in lines)
    if kind == "user":
        lines = []
        for part in _dict(event.get("message")).get("content") or ():
            part = _dict(part)
            if part.get("type") == "tool_result":
                content = part.get("content")
                if isinstance(content, list):
                    content = " ".join(str(_dict(c).get("text", "")) for c in content)
                if content:
                    lines.append(_clip(str(content)))
        return "".join(line + "\n" for line in lines)
    if kind == "result":
        cost = event.get("total_cost_usd")
        shown_cost = f", ${cost:.4f}" if isinstance(cost, int | float) else ""
        return (
            f"[{event.get('subtype', 'result')}: {event.get('num_turns', '?')} turns{shown_cost}]\n"
        )
    return ""


def claude_report(events: Sequence[Mapping[str, Any]]) -> AgentReport:
    """Return what Claude Code's ``result`` event (and its ``init``) said of the run."""
    version = session = final = None
    last_text: str | None = None
    for event in events:
        kind = event.get("type")
        if kind == "system" and event.get("subtype") == "init":
            version = _str(event.get("claude_code_version"))
            session = _str(event.get("session_id")) or session
        elif kind == "assistant":
            texts = [
                str(_dict(p).get("text"))
                for p in _dict(event.get("message")).get("content") or ()
                if _dict(p).get("type") == "text" and _dict(p).get("text")
            ]
            if texts:
                last_text = "\n".join(texts)
    result = next((e for e in reversed(events) if e.get("type") == "result"), None)
    if result is None:
        return AgentReport(final_text=last_text, agent_session_id=session, agent_version=version)
    usage = _dict(result.get("usage"))
    cost = result.get("total_cost_usd")
    turns = result.get("num_turns")
    final = result.get("result")
    return AgentReport(
        final_text=final if isinstance(final, str) else last_text,
        usage=TokenUsage(
            input_tokens=_int(usage.get("input_tokens")),
            output_tokens=_int(usage.get("output_tokens")),
            cache_read_input_tokens=_int(usage.get("cache_read_input_tokens")),
            cache_creation_input_tokens=_int(usage.get("cache_creation_input_tokens")),
        )
        if usage
        else None,
        cost_usd=float(cost) if isinstance(cost, int | float) else None,
        num_turns=turns if isinstance(turns, int) else None,
        agent_session_id=_str(result.get("session_id")) or session,
        agent_version=version,
    )


# -- Codex ------------------------------------------------------------------------------------


def codex_render(event: Mapping[str, Any]) -> str:
    """Return what engine.log shows of one ``codex exec --json`` event ('' for nothing)."""
    kind = event.get("type")
    item = _dict(event.get("item"))
    if kind == "thread.started":
        return f"[codex session {event.get('thread_id', '?')}]\n"
    if kind == "item.started" and item.get("type") == "command_execution":
        return f"> {_clip(str(item.get('command', '')))}\n"
    if kind == "item.completed":
        item_type = item.get("type")
        if item_type == "command_execution":
            output = _clip(str(item.get("aggregated_output") or ""))
            return (output + "\n" if output else "") + f"[exit {item.get('exit_code')}]\n"
        if item_type == "agent_message":
            return str(item.get("text", "")).rstrip() + "\n"
        if item_type == "error":
            return f"[codex: {item.get('message', '')}]\n"
        if item_type == "file_change":
            return f"[files changed: {json.dumps(item.get('changes', []))[:SHOWN]}]\n"
    if kind == "turn.completed":
        usage = _dict(event.get("usage"))
        tokens_in, tokens_out = _int(usage.get("input_tokens")), _int(usage.get("output_tokens"))
        return f"[turn done: {tokens_in} in, {tokens_out} out]\n"
    if kind in ("turn.failed", "error"):
        error = _dict(event.get("error"))
        return f"[codex error: {error.get('message') or event.get('message') or ''}]\n"
    return ""


def codex_report(events: Sequence[Mapping[str, Any]], version: str | None) -> AgentReport:
    """Return what ``codex exec --json`` said of the run (it reports no cost: None)."""
    session = final = None
    usage: TokenUsage | None = None
    for event in events:
        kind = event.get("type")
        if kind == "thread.started":
            session = _str(event.get("thread_id")) or session
        elif kind == "item.completed":
            item = _dict(event.get("item"))
            if item.get("type") == "agent_message" and isinstance(item.get("text"), str):
                final = item["text"]
        elif kind == "turn.completed":
            raw = _dict(event.get("usage"))
            turn = TokenUsage(
                input_tokens=_int(raw.get("input_tokens")),
                output_tokens=_int(raw.get("output_tokens")),
                cache_read_input_tokens=_int(raw.get("cached_input_tokens")),
                cache_creation_input_tokens=_int(raw.get("cache_write_input_tokens")),
            )
            usage = turn if usage is None else usage + turn
    return AgentReport(
        final_text=final, usage=usage, agent_session_id=session, agent_version=version
    )
