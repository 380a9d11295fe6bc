"""Fixtures of the fault-injection suite (the shared ones come from tests/conftest.py)."""

from __future__ import annotations

import subprocess

import pytest


@pytest.fixture
def tmux_keeper(tmux_socket: str) -> str:
    """Keep this test's tmux server alive between sessions with a session not of ours.

    A tmux server exits when its last session closes, and a client that connects in
    that instant gets "server exited unexpectedly" (which looprunner takes for "no
    server", see ``test_fault_tmux_server.py``). Tests that are not about that instant keep a
    session of their own (no ``@looprunner`` mark: looprunner never touches it) so the
    server never exits under them. The kit kills the server at teardown.
    """
    subprocess.run(
        ["tmux", "-L", tmux_socket, "new-session", "-d", "-s", "keeper", "--", "sleep", "3600"],
        check=True,
        capture_output=True,
    )
    return tmux_socket
