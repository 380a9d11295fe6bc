"""Reading claude's and codex's event streams: what engine.log shows, what is recorded.

The events are shaped as the pinned CLIs print them (captured from real runs against the
fake model server); the end-to-end runs are in ``tests/integration/test_real_clis.py``.
"""

from __future__ import annotations

from looprunner.builtin.cli_streams import claude_render, claude_report, codex_render, codex_report
from looprunner.engine.agent_stream import EventStream
from looprunner.models import AgentReport, TokenUsage
from looprunner.views.display import cost_text

CLAUDE = [
    {
        "type": "system",
        "subtype": "init",
        "session_id": "s-1",
        "model": "claude-x",
        "claude_code_version": "2.1.332",
    },
    {
        "type": "assistant",
        "message": {
            "content": [{"type": "tool_use", "name": "Bash", "input": {"command": "make test"}}]
        },
    },
    {
        "type": "user",
        "message": {"content": [{"type": "tool_result", "content": "3 passed"}]},
    },
    {"type": "assistant", "message": {"content": [{"type": "text", "text": "All green."}]}},
    {
        "type": "result",
        "subtype": "success",
        "session_id": "s-1",
        "num_turns": 2,
        "total_cost_usd": 0.0125,
        "result": "All green.",
        "usage": {
            "input_tokens": 200,
            "output_tokens": 40,
            "cache_read_input_tokens": 20,
            "cache_creation_input_tokens": 10,
        },
    },
]

CODEX = [
    {"type": "thread.started", "thread_id": "t-1"},
    {"type": "turn.started"},
    {"type": "item.started", "item": {"type": "command_execution", "command": "make test"}},
    {
        "type": "item.completed",
        "item": {"type": "command_execution", "aggregated_output": "3 passed", "exit_code": 0},
    },
    {"type": "item.completed", "item": {"type": "agent_message", "text": "All green."}},
    {
        "type": "turn.completed",
        "usage": {"input_tokens": 200, "cached_input_tokens": 20, "output_tokens": 40},
    },
]


def test_claude_report_takes_answer_cost_usage_turns_session_and_version():
    assert claude_report(CLAUDE) == AgentReport(
        final_text="All green.",
        usage=TokenUsage(200, 40, 20, 10),
        cost_usd=0.0125,
        num_turns=2,
        agent_session_id="s-1",
        agent_version="2.1.332",
    )


def test_claude_stream_cut_before_its_result_leaves_cost_unknown():
    report = claude_report(CLAUDE[:4])
    assert (report.final_text, report.cost_usd, report.usage) == ("All green.", None, None)
    assert report.agent_session_id == "s-1"


def test_codex_report_has_tokens_and_no_cost():
    assert codex_report(CODEX, "0.171.0") == AgentReport(
        final_text="All green.",
        usage=TokenUsage(200, 40, 20, 0),
        agent_session_id="t-1",
        agent_version="0.171.0",
    )


def test_engine_log_shows_words_and_commands_not_json():
    claude = "".join(claude_render(e) for e in CLAUDE)
    assert "> Bash: make test\n3 passed\nAll green.\n" in claude
    assert "[success: 2 turns, $0.0125]" in claude
    codex = "".join(codex_render(e) for e in CODEX)
    assert "> make test\n3 passed\n[exit 0]\nAll green.\n" in codex
    assert "{" not in claude + codex


class _Claude:
    def render_event(self, event):
        return claude_render(event)

    def report(self, events):
        return claude_report(events)


def test_event_stream_joins_lines_split_across_chunks_and_shows_other_lines():
    shown: list[str] = []
    stream = EventStream(_Claude(), shown.append)
    line = '{"type": "assistant", "message": {"content": [{"type": "text", "text": "Hi"}]}}\n'
    stream.feed("a warning the CLI printed\n" + line[:20])
    stream.feed(line[20:] + '{"type": "result", "result": "Hi"}')  # no final newline
    stream.finish()
    assert shown[:2] == ["a warning the CLI printed\n", "Hi\n"]
    assert [e["type"] for e in stream.events] == ["assistant", "result"]


def test_cost_is_shown_as_dollars_else_tokens_else_unknown_never_zero():
    usage = TokenUsage(1000, 200, 300, 0)
    assert cost_text(0.0125, usage) == "$0.0125"
    assert cost_text(None, usage) == "? (1.5k tok)"
    assert cost_text(None, None) == "-"
    assert cost_text(None, usage, long=True) == (
        "cost unknown (1000 in, 200 out, 300 cache read, 0 cache write tokens)"
    )
