"""A secret the agent prints in pieces is still redacted, and tmux never holds the launcher's env.

Redaction used to work chunk by chunk: a secret split across two writes of the agent, or
across the engine's 64 KiB read boundary, reached ``engine.log``, the tmux scrollback and
``monitor`` verbatim. And the tmux server that ``start`` creates kept every variable of the
launcher (API keys included) in its global environment.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from looprunner.names import ProjectPaths
from looprunner.testing import wait_until
from tests.faults.faultkit import no_traceback

pytestmark = pytest.mark.tmux

#: prints the secret split over two writes (the pause makes them two reads), then over
#: the 64 KiB read boundary, then blocks until the test has looked at the live pane
SPLITTING_AGENT = r"""
import json, os, sys, time
from pathlib import Path

sys.stdin.read()
secret = os.environ["FAULT_API_KEY"]
out = sys.stdout.buffer
half = len(secret) // 2
out.write(b"split: " + secret[:half].encode()); out.flush()
time.sleep(0.5)  # the fault: the second half comes in a later chunk
out.write(secret[half:].encode() + b" end\n" + b"=" * 100 + b"\n"); out.flush()
# 64 KiB of padding lines, ending 10 bytes short of the boundary, then the secret
padding = 65536 - 10
block = (b"x" * 99 + b"\n") * (padding // 100) + b"x" * (padding % 100)
out.write(block + secret.encode() + b" boundary\n" + b"=" * 100 + b"\n"); out.flush()
gate = Path(sys.argv[1])
(gate / "printed").write_text("yes")
deadline = time.monotonic() + 120
while not (gate / "go").exists() and time.monotonic() < deadline:
    time.sleep(0.02)
Path(os.environ["LOOPRUNNER_STATUS"]).write_text(json.dumps({"decision": "stop", "reason": "done"}))
"""


def write_stage(project: Path, gate: Path) -> None:
    script = gate / "splitting_agent.py"
    script.write_text(SPLITTING_AGENT)
    stage = project / ".looprunner" / "stages" / "work"
    stage.mkdir(parents=True)
    (stage / "stage.yaml").write_text(
        "name: work\nprovider: command\n"
        f"command: {json.dumps([sys.executable, str(script), str(gate)])}\n"
        "termination:\n  type: fixed\n  iterations: 1\n"
    )
    (stage / "prompt.md").write_text("Write ${STATUS}.\n")


def test_a_secret_split_across_writes_and_reads_is_redacted_everywhere(
    project, tmux_keeper, tmp_path, cli, monkeypatch
):
    secret = f"sk-split-{uuid.uuid4().hex}"
    monkeypatch.setenv("FAULT_API_KEY", secret)
    gate = tmp_path / "gate"
    gate.mkdir()
    write_stage(project, gate)
    log = ProjectPaths.of(project).session("split").engine_log
    started = cli("start", "split", "--stage", "work")
    assert started.returncode == 0, started.stderr

    def both_redacted() -> bool:
        text = log.read_text() if log.exists() else ""
        return text.count("[redacted:FAULT_API_KEY]") >= 2

    try:
        wait_until(lambda: (gate / "printed").exists(), timeout=60, what="the agent to print")
        wait_until(both_redacted, timeout=30, what="both secrets redacted in engine.log")
        live = cli("monitor", "split", "-n", "2000")  # the tmux pane, while it runs
        no_traceback(live)
        assert secret not in live.stdout, "the live tmux scrollback shows the secret"
        assert "[redacted:FAULT_API_KEY] end" in live.stdout
        assert "[redacted:FAULT_API_KEY] boundary" in live.stdout
    finally:
        (gate / "go").write_text("go")
    waited = cli("wait", "split", "--timeout", "60")
    no_traceback(waited)
    assert waited.returncode == 0, waited.stdout + waited.stderr
    text = log.read_text()
    assert secret not in text, "engine.log holds the secret"
    assert "split: [redacted:FAULT_API_KEY] end" in text
    assert "[redacted:FAULT_API_KEY] boundary" in text
    after = cli("monitor", "split", "-n", "2000")  # engine.log, once it has ended
    assert secret not in after.stdout
    assert secret[: len(secret) // 2] not in after.stdout, "half the secret is shown"


def test_the_tmux_server_start_creates_holds_none_of_the_launchers_variables(
    project, tmux_socket, tmp_path, cli, monkeypatch
):
    # no keeper: the server is the one `start` creates, as for a user without tmux running
    secret = f"sk-env-{uuid.uuid4().hex}"
    monkeypatch.setenv("FAULT_API_KEY", secret)
    monkeypatch.setenv("FAULT_PLAIN_SETTING", "plain-value-123")
    gate = tmp_path / "gate"
    gate.mkdir()
    write_stage(project, gate)
    started = cli("start", "envy", "--stage", "work")
    assert started.returncode == 0, started.stderr
    try:
        wait_until(lambda: (gate / "printed").exists(), timeout=60, what="the agent to print")
        shown = []
        for scope in (["-g"], ["-t", "=pipeline-envy"]):
            result = subprocess.run(
                ["tmux", "-L", tmux_socket, "show-environment", *scope],
                capture_output=True,
                text=True,
                check=False,
            )
            assert result.returncode == 0, result.stderr
            shown.append(result.stdout)
        everything = "\n".join(shown)
        assert secret not in everything, "the tmux server keeps the launcher's API key"
        assert "FAULT_PLAIN_SETTING" not in everything, "the launcher's variables leak to tmux"
        assert "LOOPRUNNER_TMUX_SOCKET=" in shown[0]
    finally:
        (gate / "go").write_text("go")
    waited = cli("wait", "envy", "--timeout", "60")
    no_traceback(waited)
    assert waited.returncode == 0, waited.stdout + waited.stderr
    # the engine (so the agent) still got the launcher's environment, through the handoff
    log = ProjectPaths.of(project).session("envy").engine_log.read_text()
    assert "[redacted:FAULT_API_KEY]" in log, "the agent saw the key"
