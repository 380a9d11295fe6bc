"""Reading a structured agent's output: JSON events in, readable text out, events kept.

A provider that is :class:`~looprunner.protocols.Reporting` prints one JSON object a
line. :class:`EventStream` sits between the captured output and engine.log: it cuts the
output into lines, shows each event as the provider renders it (so ``monitor`` stays
readable and live), shows other lines as printed, and keeps the events for the
provider's report. The raw stream itself is kept by the caller as ``transcript.jsonl``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from looprunner.protocols import Reporting

#: the longest line parsed as an event (a longer one is shown, not parsed)
MAX_EVENT_CHARS = 8 * 1024 * 1024


class EventStream:
    """Turns a provider's JSON-lines output into rendered text and a list of events."""

    def __init__(self, provider: Reporting, echo: Callable[[str], None]) -> None:
        self.provider = provider
        self._echo = echo
        self._pending = ""
        self.events: list[Mapping[str, Any]] = []
        #: everything shown, as text: the output kept when the stream gives no answer
        self.shown: list[str] = []

    def feed(self, text: str) -> None:
        """Take one decoded chunk of output; complete lines are handled at once."""
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            self._line(line)

    def finish(self) -> None:
        """Handle a last line the program did not end."""
        if self._pending:
            line, self._pending = self._pending, ""
            self._line(line)

    def _line(self, line: str) -> None:
        event = _parse(line)
        if event is None:
            if line.strip():
                self._show(line + "\n")
            return
        self.events.append(event)
        try:
            text = self.provider.render_event(event)
        except Exception:  # a renderer's bug must not lose the agent's output
            text = line + "\n"
        if text:
            self._show(text)

    def _show(self, text: str) -> None:
        self.shown.append(text)
        self._echo(text)

    def text(self) -> str:
        """Everything shown so far."""
        return "".join(self.shown)


def _parse(line: str) -> Mapping[str, Any] | None:
    stripped = line.strip()
    if not stripped.startswith("{") or len(stripped) > MAX_EVENT_CHARS:
        return None
    try:
        value = json.loads(stripped)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
