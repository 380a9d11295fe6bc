"""Fixtures of the looprunner-notify tests, on top of looprunner's test kit.

The plugin is installed for real (``pip install --target``) once per test process and
put on ``PYTHONPATH`` for the looprunner processes a test starts. Desktop notifications
are off unless a test turns them on with a fake ``notify-send`` (a real program that
records its argv); webhooks go to an ``http.server`` on 127.0.0.1 run by the test.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from looprunner.testing import install_plugin, plugin_path_env

HERE = Path(__file__).resolve().parent
PLUGIN = HERE.parent
FAKE_NOTIFY_SEND = HERE / "fake_notify_send.py"


@pytest.fixture(autouse=True)
def notify_test_env(lr_tmux: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test: a private tmux server, no notifications, no webhook, no proxy."""
    monkeypatch.setenv("LOOPRUNNER_KILL_GRACE", "3")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("LOOPRUNNER_NOTIFY_DESKTOP", "0")
    for name in (
        "LOOPRUNNER_STATE_DIR",
        "LOOPRUNNER_MOCK_FIXTURES",
        "LOOPRUNNER_MOCK_DELAY",
        "LOOPRUNNER_DISABLED_PLUGINS",
        "LOOPRUNNER_DISABLE_PLUGIN_AUTOLOAD",
        "LOOPRUNNER_NOTIFY_WEBHOOK",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def notify_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """looprunner-notify installed with pip into a folder of its own (once per process)."""
    site = tmp_path_factory.mktemp("notify-site")
    return install_plugin(PLUGIN, site)


@pytest.fixture
def with_notify(notify_site: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Make the installed plugin visible to every looprunner process a test starts."""
    monkeypatch.setenv(
        "PYTHONPATH",
        plugin_path_env(notify_site),
    )
    return notify_site


@pytest.fixture
def completions(lr_project: Path) -> Path:
    """Where the completion log of the test's project is (state folder ``.claude``)."""
    return lr_project / ".claude" / "loop-completions.json"


@pytest.fixture
def fake_notify_send(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake ``notify-send`` first on PATH, notifications on; return its argv log."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    program = bin_dir / "notify-send"
    program.write_text(f"#!{sys.executable}\n" + FAKE_NOTIFY_SEND.read_text(encoding="utf-8"))
    program.chmod(0o755)
    log = tmp_path / "notify-send.jsonl"
    monkeypatch.setenv("PATH", os.pathsep.join([str(bin_dir), os.environ.get("PATH", "")]))
    monkeypatch.setenv("FAKE_NOTIFY_SEND_LOG", str(log))
    monkeypatch.setenv("LOOPRUNNER_NOTIFY_DESKTOP", "1")
    return log


class Received:
    """What the test's webhook receiver got: one dict per request."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.url = ""

    def add(self, request: dict[str, Any]) -> None:
        with self.lock:
            self.requests.append(request)


@pytest.fixture
def webhook_receiver() -> Iterator[Received]:
    """An HTTP server on 127.0.0.1 (a free port) that records every POST and answers 204."""
    received = Received()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received.add(
                {
                    "path": self.path,
                    "content_type": self.headers.get("Content-Type"),
                    "user_agent": self.headers.get("User-Agent"),
                    "body": body.decode("utf-8"),
                }
            )
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep the test output clean

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    received.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield received
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def read_json_lines(path: Path) -> list[Any]:
    """Parse a JSON-lines file (empty list if it does not exist)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


@pytest.fixture
def json_lines() -> Any:
    """``json_lines(path)``: the objects of a JSON-lines file."""
    return read_json_lines
