"""A fake model endpoint on loopback, so the real ``claude`` and ``codex`` run offline.

It speaks what those programs call: the Anthropic Messages API (``POST /v1/messages``,
streamed as server-sent events) and the OpenAI Responses API (``POST /v1/responses``,
streamed), and answers anything else with an empty success (a models list, telemetry).
Replies are scripted from the conversation itself, so no call order has to be guessed:

* a request that offers the agent's shell tool (``Bash`` for Claude Code; ``shell``,
  ``shell_command`` or ``exec_command`` for Codex) and carries no tool result yet gets a
  tool call running ``command_for(n)``, where ``n`` counts such first turns from 1 (one
  per iteration); by default the command writes ``$LOOPRUNNER_STATUS`` with the next
  entry of ``decisions``;
* a request that carries the tool's result gets the final text, ``final_text``;
* any other request (a title, a quota probe) gets a short text.

Every reply reports ``usage``; :attr:`FakeModelServer.reported` sums what was reported,
per API, so a test can compare it with what looprunner recorded. Fault knobs:
:meth:`FakeModelServer.fail` answers with a status (429 rate limited, 529 overloaded,
500) for a number of requests or for ever, :meth:`hang` accepts requests and never
answers, :meth:`refuse` closes the listening socket so connections are refused.
"""

from __future__ import annotations

import itertools
import json
import shlex
import threading
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import attrs

from looprunner.testing.fake_model_apis import anthropic_reply, openai_reply


def status_command(decision: str, summary: str = "") -> str:
    """Return a shell command that writes ``$LOOPRUNNER_STATUS`` with ``decision``."""
    status = json.dumps({"decision": decision, "reason": "scripted", "summary": summary})
    return f'printf %s {shlex.quote(status)} > "$LOOPRUNNER_STATUS"'


@attrs.define
class Usage:
    """Tokens one reply reports (the same numbers for both APIs)."""

    input_tokens: int = 100
    output_tokens: int = 20
    cache_read_input_tokens: int = 10
    cache_creation_input_tokens: int = 5


@attrs.define
class Reported:
    """What the server reported so far, per API: replies and their summed usage."""

    replies: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0

    def add(self, usage: Usage) -> None:
        """Count one reply."""
        self.replies += 1
        self.input_tokens += usage.input_tokens
        self.output_tokens += usage.output_tokens
        self.cache_read_input_tokens += usage.cache_read_input_tokens
        self.cache_creation_input_tokens += usage.cache_creation_input_tokens


@attrs.define
class _Fault:
    status: int
    remaining: int | None  # None: for ever


class FakeModelServer:
    """A scripted model endpoint on ``127.0.0.1`` (a free port), served from a thread.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`. ``url`` is the
    base for ``ANTHROPIC_BASE_URL``; ``url + "/v1"`` for a Codex provider's ``base_url``.
    """

    def __init__(
        self,
        *,
        decisions: Sequence[str] = ("stop",),
        command_for: Callable[[int], str] | None = None,
        final_text: str = "Done: the scripted work is finished.",
        usage: Usage | None = None,
        model: str = "fake-model",
        tool_options: dict[str, Any] | None = None,
    ) -> None:
        self.decisions = tuple(decisions)
        self.command_for = command_for or self._decision_command
        self.final_text = final_text
        self.usage = usage or Usage()
        self.model = model
        #: more keys of Claude Code's ``Bash`` call, e.g. ``{"run_in_background": True}``
        self.tool_options = dict(tool_options or {})
        #: every request: (method, path, parsed JSON body or None)
        self.requests: list[tuple[str, str, Any]] = []
        #: usage reported, by API ("anthropic", "openai")
        self.reported: dict[str, Reported] = {"anthropic": Reported(), "openai": Reported()}
        self.first_turns = 0
        self._fault: _Fault | None = None
        self._hang = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeModelServer:
        """Serve in a daemon thread."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and let hung requests end."""
        self._stopping.set()
        self._hang.clear()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> FakeModelServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- fault knobs ------------------------------------------------------------------

    def fail(self, status: int, times: int | None = None) -> None:
        """Answer the next ``times`` model requests (all, when None) with ``status``."""
        with self._lock:
            self._fault = _Fault(status, times)

    def hang(self, on: bool = True) -> None:
        """Accept model requests and never answer them (until ``hang(False)`` or stop)."""
        if on:
            self._hang.set()
        else:
            self._hang.clear()

    def refuse(self) -> None:
        """Close the listening socket: from now on connections are refused."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self._server.server_close()

    def heal(self) -> None:
        """Clear :meth:`fail` and :meth:`hang`."""
        with self._lock:
            self._fault = None
        self._hang.clear()

    # -- scripting ----------------------------------------------------------------------

    def _decision_command(self, turn: int) -> str:
        decisions = self.decisions or ("stop",)
        decision = decisions[min(turn, len(decisions)) - 1]
        return status_command(decision, f"scripted turn {turn}")

    def _take_fault(self) -> int | None:
        with self._lock:
            fault = self._fault
            if fault is None:
                return None
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._fault = None
            return fault.status

    def _next_first_turn(self) -> int:
        with self._lock:
            self.first_turns += 1
            return self.first_turns

    def _record(self, api: str) -> Usage:
        usage = self.usage
        if api == "openai":  # the Responses API reports cache reads only
            usage = attrs.evolve(usage, cache_creation_input_tokens=0)
        with self._lock:
            self.reported[api].add(usage)
        return usage

    def next_id(self) -> int:
        """Return a fresh number for message, call and response ids."""
        return next(self._ids)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: FakeModelServer


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output quiet: the requests are recorded, not printed."""

    @property
    def owner(self) -> FakeModelServer:
        return self.server.owner

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return None

    def do_GET(self) -> None:
        self.owner.requests.append(("GET", self.path, None))
        if self.path.split("?")[0].rstrip("/").endswith("/models"):
            self._json(200, {"object": "list", "data": [], "models": []})
        else:
            self._json(200, {})

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:
        body = self._body()
        path = self.path.split("?")[0].rstrip("/")
        self.owner.requests.append(("POST", self.path, body))
        model_call = path.endswith("/messages") or path.endswith("/responses")
        if not model_call:
            self._json(200, {})
            return
        if self.owner._hang.is_set():
            self.owner._stopping.wait()
            self.close_connection = True
            return
        fault = self.owner._take_fault()
        if fault is not None:
            self._error(fault, openai=path.endswith("/responses"))
            return
        if path.endswith("/messages"):
            anthropic_reply(self, body if isinstance(body, dict) else {})
        else:
            openai_reply(self, body if isinstance(body, dict) else {})

    # -- plumbing -------------------------------------------------------------------------

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, *, openai: bool) -> None:
        kind = {429: "rate_limit_error", 529: "overloaded_error"}.get(status, "api_error")
        message = {429: "Rate limited (fake)", 529: "Overloaded (fake)"}.get(status, "fake error")
        if openai:
            code = "rate_limit_exceeded" if status == 429 else "server_error"
            payload: Any = {"error": {"type": kind, "code": code, "message": message}}
        else:
            payload = {"type": "error", "error": {"type": kind, "message": message}}
        self._json(status, payload, {"retry-after": "0", "x-should-retry": "true"})

    def start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    def send_events(self, events: Iterator[tuple[str, dict[str, Any]]]) -> None:
        for event, data in events:
            self.wfile.write(_sse(event, data))
        self.wfile.flush()
