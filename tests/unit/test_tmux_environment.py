"""The tmux client that starts a session (and maybe the server) gets a minimal environment."""

from __future__ import annotations

from looprunner.backends.tmux import launch_environment


def test_only_what_tmux_and_the_engine_need_before_the_handoff_is_kept() -> None:
    kept = launch_environment(
        {
            "PATH": "/usr/bin",
            "HOME": "/home/u",
            "LC_ALL": "C.UTF-8",
            "PYTHONPATH": "/plugins",
            "LOOPRUNNER_TMUX_SOCKET": "private",
            "LOOPRUNNER_KILL_GRACE": "3",
            "OPENAI_API_KEY": "sk-secret-value",
            "LOOPRUNNER_AUTH_TOKEN": "also-secret",
            "AWS_SECRET_ACCESS_KEY": "x" * 20,
            "SOME_SETTING": "plain",
        }
    )
    assert kept == {
        "PATH": "/usr/bin",
        "HOME": "/home/u",
        "LC_ALL": "C.UTF-8",
        "PYTHONPATH": "/plugins",
        "LOOPRUNNER_TMUX_SOCKET": "private",
        "LOOPRUNNER_KILL_GRACE": "3",
    }
