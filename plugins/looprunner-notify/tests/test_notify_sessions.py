"""Real sessions with the plugin installed by pip: completion log, webhook, notifications.

Sessions run inline in a real ``looprunner start --foreground`` process (one in tmux).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ERROR_STATUS = {"decision": "error", "reason": "tests are red", "summary": "gave up"}


def run_ok_and_bad(lr_stage, lr_cli, env=None):
    """One session that completes after 2 iterations, one that fails in its first."""
    lr_stage("ok", termination={"type": "fixed", "iterations": 2})
    lr_stage("bad", termination={"type": "fixed", "iterations": 2}, statuses={1: ERROR_STATUS})
    good = lr_cli("start", "good", "--stage", "ok", "--foreground", env=env)
    assert good.returncode == 0, good.stdout + good.stderr
    bad = lr_cli("start", "bad", "--stage", "bad", "--foreground", env=env)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    return good, bad


def hook_errors(project: Path, name: str, json_lines) -> list:
    events = json_lines(project / ".claude" / "pipeline-runs" / name / "events.jsonl")
    return [e for e in events if e["type"] == "hook_error"]


def test_completed_and_failed_sessions_are_appended_to_the_completion_log(
    with_notify, lr_stage, lr_cli, lr_project, completions, json_lines
):
    run_ok_and_bad(lr_stage, lr_cli)
    good, bad = json.loads(completions.read_text(encoding="utf-8"))
    assert good == {
        "session": "good",
        "type": "ok",
        "status": "complete",
        "completed_at": good["completed_at"],
        "reason": "iterations_complete",
        "error": None,
        "iterations": 2,
        "project": str(lr_project),
    }
    assert good["completed_at"].endswith("Z") and good["completed_at"][:2] == "20"
    assert bad["session"] == "bad" and bad["type"] == "bad"
    assert bad["status"] == "failed"
    assert bad["reason"] is None
    assert bad["error"]["type"] == "agent_error"
    assert "tests are red" in bad["error"]["message"]
    assert bad["project"] == str(lr_project)
    state = json.loads((lr_project / ".claude/pipeline-runs/bad/state.json").read_text())
    assert bad["completed_at"] == state["finished_at"]
    assert hook_errors(lr_project, "good", json_lines) == []
    assert hook_errors(lr_project, "bad", json_lines) == []
    assert completions.stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600


def test_no_warning_or_error_is_printed_when_all_goes_well(with_notify, lr_stage, lr_cli):
    good, bad = run_ok_and_bad(lr_stage, lr_cli)
    for result in (good, bad):
        assert "warning" not in result.stderr.lower(), result.stderr
        assert "looprunner-notify" not in result.stderr, result.stderr


def test_the_webhook_receives_the_same_entry_as_json(
    with_notify, lr_stage, lr_cli, completions, webhook_receiver, monkeypatch
):
    secret = "s3cr3t-value-that-must-not-leak"
    monkeypatch.setenv("DEPLOY_API_TOKEN", secret)
    monkeypatch.setenv(
        "LOOPRUNNER_NOTIFY_WEBHOOK", f"{webhook_receiver.url}/hooks/looprunner?channel=ci"
    )
    run_ok_and_bad(lr_stage, lr_cli)
    logged = json.loads(completions.read_text(encoding="utf-8"))
    assert len(webhook_receiver.requests) == 2
    for request, entry in zip(webhook_receiver.requests, logged, strict=True):
        assert request["path"] == "/hooks/looprunner?channel=ci"
        assert request["content_type"] == "application/json"
        assert request["user_agent"].startswith("looprunner-notify/")
        assert json.loads(request["body"]) == entry
        assert secret not in request["body"]
    assert [json.loads(r["body"])["status"] for r in webhook_receiver.requests] == [
        "complete",
        "failed",
    ]


def _refused_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens (the port was free a moment ago)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook/private-token-123"


@pytest.mark.parametrize("kind", ["refused", "file", "junk"])
def test_a_webhook_that_cannot_be_reached_does_not_fail_the_session(
    kind, with_notify, lr_stage, lr_cli, lr_project, completions, json_lines
):
    url = {"refused": _refused_url(), "file": "file:///etc/passwd", "junk": "not a url"}[kind]
    good, bad = run_ok_and_bad(lr_stage, lr_cli, env={"LOOPRUNNER_NOTIFY_WEBHOOK": url})
    assert [e["status"] for e in json.loads(completions.read_text())] == ["complete", "failed"]
    assert hook_errors(lr_project, "good", json_lines) == []
    # logged (into engine.log, which --foreground also prints), not raised
    log = (lr_project / ".claude" / "pipeline-runs" / "good" / "engine.log").read_text()
    assert "looprunner-notify" in log
    seen = good.stdout + good.stderr + bad.stdout + bad.stderr + log
    assert "private-token-123" not in seen  # the path may hold a token


def test_a_desktop_notification_is_sent_with_notify_send(
    with_notify, fake_notify_send, lr_stage, lr_cli, json_lines
):
    run_ok_and_bad(lr_stage, lr_cli)
    sent = json_lines(fake_notify_send)
    assert sent[0] == ["--", "looprunner", "ok good: complete (iterations_complete)"]
    assert sent[1][:2] == ["--", "looprunner"]
    assert sent[1][2].startswith("bad bad: failed (agent_error): ")
    assert len(sent) == 2


def test_without_a_notifier_nothing_is_shown_and_the_log_is_still_written(
    with_notify, lr_stage, lr_cli, completions, tmp_path, monkeypatch
):
    monkeypatch.setenv("LOOPRUNNER_NOTIFY_DESKTOP", "1")
    bare = tmp_path / "bare-bin"
    bare.mkdir()
    (bare / "python3").symlink_to(sys.executable)
    run_ok_and_bad(lr_stage, lr_cli, env={"PATH": str(bare)})
    assert len(json.loads(completions.read_text())) == 2


@pytest.mark.parametrize("where", ["relative", "absolute"])
def test_the_log_follows_looprunner_state_dir(
    where, with_notify, lr_stage, lr_cli, lr_project, tmp_path, monkeypatch
):
    state_dir = "run-state" if where == "relative" else str(tmp_path / "elsewhere")
    monkeypatch.setenv("LOOPRUNNER_STATE_DIR", state_dir)
    lr_stage("ok", termination={"type": "fixed", "iterations": 1})
    assert lr_cli("start", "moved", "--stage", "ok", "--foreground").returncode == 0
    root = lr_project / state_dir if where == "relative" else Path(state_dir)
    [entry] = json.loads((root / "loop-completions.json").read_text())
    assert entry["session"] == "moved"
    assert not (lr_project / ".claude" / "loop-completions.json").exists()


def test_a_damaged_log_is_reported_as_a_hook_error_and_the_rest_still_happens(
    with_notify, lr_stage, lr_cli, lr_project, completions, webhook_receiver, json_lines
):
    completions.parent.mkdir(parents=True)
    completions.write_text("{not json", encoding="utf-8")
    lr_stage("ok", termination={"type": "fixed", "iterations": 1})
    env = {"LOOPRUNNER_NOTIFY_WEBHOOK": webhook_receiver.url}
    done = lr_cli("start", "good", "--stage", "ok", "--foreground", env=env)
    assert done.returncode == 0, done.stderr  # the session's outcome never changes
    assert completions.read_text(encoding="utf-8") == "{not json"  # not overwritten
    [error] = hook_errors(lr_project, "good", json_lines)
    assert error["data"]["plugin"] == "notify" and error["data"]["hook"] == "on_complete"
    assert "loop-completions.json: not JSON" in error["data"]["error"]
    assert len(webhook_receiver.requests) == 1


@pytest.mark.tmux
@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_a_session_in_tmux_is_logged_when_it_ends(with_notify, lr_stage, lr_cli, completions):
    lr_stage("ok", termination={"type": "fixed", "iterations": 2})
    assert lr_cli("start", "intmux", "--stage", "ok").returncode == 0
    assert lr_cli("wait", "intmux", "--timeout", "60").returncode == 0
    [entry] = json.loads(completions.read_text(encoding="utf-8"))
    assert (entry["session"], entry["status"], entry["iterations"]) == ("intmux", "complete", 2)


def test_the_plugins_command_lists_the_hooks(with_notify, lr_cli):
    rows = {row["name"]: row for row in json.loads(lr_cli("--json", "plugins").stdout)}
    assert rows["notify"]["distribution"] == "looprunner-notify"
    assert rows["notify"]["hooks"] == ["on_complete", "on_error"]
    assert rows["notify"]["registers"] == {}


APPENDER = """
import sys
from pathlib import Path
from looprunner_notify.completions import append_completion

path, writer = Path(sys.argv[1]), sys.argv[2]
for n in range(int(sys.argv[3])):
    append_completion(path, {"session": f"{writer}-{n}", "status": "complete"})
"""


def test_concurrent_appends_lose_no_entry(with_notify, tmp_path):
    log = tmp_path / ".claude" / "loop-completions.json"
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", APPENDER, str(log), f"w{w}", "25"],
            env=os.environ.copy(),
        )
        for w in range(8)
    ]
    assert [p.wait(timeout=120) for p in writers] == [0] * 8
    sessions = [e["session"] for e in json.loads(log.read_text(encoding="utf-8"))]
    assert len(sessions) == 200
    assert set(sessions) == {f"w{w}-{n}" for w in range(8) for n in range(25)}
    assert sorted(p.name for p in log.parent.iterdir()) == [
        "loop-completions.json",
        "loop-completions.json.lock",
    ]  # no temporary file left behind
