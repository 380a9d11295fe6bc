"""Secrets planted in the environment stay out of every file looprunner writes.

``tests/integration/test_secrets.py`` covers secrets the agent prints on stdout, puts in
its status and its output file, and command lines. This adds the paths it leaves out:

* the secret is also in ``--context`` text (so in the prompt, ``context.json`` and the
  resolved ``pipeline.yaml``);
* the agent prints it on **stderr**;
* the agent's status.json is invalid and holds the secret, so it reaches the error
  message that ends up in ``state.json``, the events and ``engine.log``.

Afterwards no file under the run directory may hold the value, apart from the
``status.json`` files the agent wrote itself.
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

import pytest

from looprunner import Session
from looprunner.models import Health
from looprunner.names import ProjectPaths
from tests.faults.faultkit import no_traceback

pytestmark = pytest.mark.tmux

AGENT = r"""
import json, os, sys
from pathlib import Path

prompt = sys.stdin.read()
secret = os.environ["FAULT_API_KEY"]
print(f"agent stderr: the key is {secret}; the prompt was: {prompt}", file=sys.stderr, flush=True)
status = Path(os.environ["LOOPRUNNER_STATUS"])
if os.environ["LOOPRUNNER_ITERATION"] == "1":
    status.write_text(json.dumps({"decision": "continue", "summary": "ok"}))
else:  # invalid: the decision is not one of continue/stop/error, and holds the key
    status.write_text(json.dumps({"decision": f"maybe {secret}", "summary": secret}))
"""


def run_leaky_session(project: Path, tmp_path: Path, cli, monkeypatch, name: str) -> str:
    secret = f"sk-fault-{uuid.uuid4().hex}"
    monkeypatch.setenv("FAULT_API_KEY", secret)
    script = tmp_path / "leaky_agent.py"
    script.write_text(AGENT)
    stage = project / ".looprunner" / "stages" / "work"
    stage.mkdir(parents=True)
    (stage / "stage.yaml").write_text(
        "name: work\nprovider: command\n"
        f"command: {json.dumps([sys.executable, str(script)])}\n"
        "termination:\n  type: fixed\n  iterations: 2\n"
    )
    (stage / "prompt.md").write_text("Context: ${CONTEXT}. Write ${STATUS}.\n")
    started = cli("start", name, "--stage", "work", "--context", f"use the key {secret} here")
    assert started.returncode == 0, started.stderr
    waited = cli("wait", name, "--timeout", "60")
    no_traceback(waited)
    assert waited.returncode == 1, "iteration 2's status is invalid: the session fails"
    state = Session(name, project).status()
    assert state.health is Health.FAILED and state.state.error.type == "status_invalid"
    return secret


def test_a_secret_on_stderr_in_context_and_in_an_invalid_status_is_never_written(
    project, tmux_keeper, tmp_path, cli, monkeypatch
):
    secret = run_leaky_session(project, tmp_path, cli, monkeypatch, "leak")
    paths = ProjectPaths.of(project).session("leak")
    log = paths.engine_log.read_text()
    assert "the key is [redacted:FAULT_API_KEY]" in log, "the agent's stderr is in the log"
    agent_files = set(paths.run_dir.rglob("status.json"))
    assert any(secret in p.read_text() for p in agent_files), "the agent did write it"
    scanned = [
        p
        for p in paths.run_dir.rglob("*")
        if p.is_file() and p not in agent_files and p != paths.pipeline_file
    ]
    assert paths.state_file in scanned and paths.events_file in scanned
    assert [p.name for p in scanned if secret.encode() in p.read_bytes()] == []
    context = json.loads((paths.iteration_dir(0, "work", 1) / "context.json").read_text())
    assert "[redacted:FAULT_API_KEY]" in json.dumps(context), "the context was there, redacted"
    answers = [cli("--json", "status", "leak"), cli("tail", "leak"), cli("monitor", "leak")]
    assert not [a.args for a in answers if secret in a.stdout + a.stderr]


def test_a_secret_in_context_text_is_not_stored_in_pipeline_yaml(
    project, tmux_keeper, tmp_path, cli, monkeypatch
):
    secret = run_leaky_session(project, tmp_path, cli, monkeypatch, "leak-yaml")
    paths = ProjectPaths.of(project).session("leak-yaml")
    assert secret not in paths.pipeline_file.read_text()
