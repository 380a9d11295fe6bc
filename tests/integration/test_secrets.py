"""Secrets in the caller's environment reach the agent and nothing looprunner writes.

A ``command``-provider agent prints its whole environment, puts a secret in its status
summary, and leaves a marker outside ``.claude/`` (hashes of the values it saw) to prove
it really got them. Afterwards no file under ``.claude/`` may hold a secret's value, and
while the session runs no process may carry one on its command line (world-readable in
``/proc``).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from looprunner.names import ProjectPaths
from tests.conftest import wait_until

pytestmark = pytest.mark.tmux

AGENT = r"""
import hashlib, json, os, sys, time
from pathlib import Path

sys.stdin.read()
names = json.loads(os.environ["SECRET_NAMES"])
for key, value in sorted(os.environ.items()):
    print(f"{key}={value}")
sys.stdout.flush()
project = Path.cwd()
marker = project / f"agent-saw-{os.environ['LOOPRUNNER_ITERATION']}.json"
marker.write_text(json.dumps(
    {n: hashlib.sha256(os.environ[n].encode()).hexdigest() for n in names if n in os.environ}
))
hold = os.environ.get("AGENT_HOLD_UNTIL")
if hold:
    deadline = time.monotonic() + 60
    while not Path(hold).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
if os.environ.get("AGENT_WRITES_OUTPUT"):
    Path(os.environ["LOOPRUNNER_OUTPUT"]).write_text(
        "findings: the key is " + os.environ["ANTHROPIC_API_KEY"] + "\n"
    )
key = os.environ.get("ANTHROPIC_API_KEY", "")
token = os.environ.get("GITHUB_TOKEN", "")
Path(os.environ["LOOPRUNNER_STATUS"]).write_text(json.dumps({
    "decision": "continue",
    "reason": f"used {token}",
    "summary": f"called the API with {key}",
    "work": {"items_completed": [key], "files_touched": []},
    "errors": [],
}))
"""


def plant_secrets(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Put fake secrets, unique to this test, in the environment ``looprunner`` runs with."""
    unique = uuid.uuid4().hex[:10]
    secrets = {
        "ANTHROPIC_API_KEY": f"sk-ant-fake-123456789-{unique}",
        "GITHUB_TOKEN": f"ghp_fake{unique}0123456789abcdefABCDEF",
        "OPENAI_API_KEY": f"sk-proj-fake-{unique}-abcdef",
        "AWS_SECRET_ACCESS_KEY": f"fakeAWS/{unique}+secretKEY",
        "DB_PASSWORD": f"hunter2-{unique}",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SECRET_NAMES", json.dumps(sorted(secrets)))
    return secrets


def write_env_agent_stage(project: Path, tmp_path: Path, *, iterations: int = 2) -> None:
    agent = tmp_path / "agents" / "env_agent.py"
    agent.parent.mkdir(parents=True, exist_ok=True)
    agent.write_text(AGENT)
    folder = project / ".looprunner" / "stages" / "work"
    folder.mkdir(parents=True)
    (folder / "stage.yaml").write_text(
        "name: work\nprovider: command\n"
        f"command: {json.dumps([sys.executable, str(agent)])}\n"
        f"termination:\n  type: fixed\n  iterations: {iterations}\n"
    )
    (folder / "prompt.md").write_text("Iteration ${ITERATION}: write ${STATUS}.\n")


def assert_agent_saw(project: Path, secrets: dict[str, str], iteration: int) -> None:
    marker = json.loads((project / f"agent-saw-{iteration}.json").read_text())
    assert marker == {n: hashlib.sha256(v.encode()).hexdigest() for n, v in secrets.items()}


def leaks(folder: Path, secrets: dict[str, str], *, skip: set[Path]) -> list[tuple[str, str]]:
    """Every (file, secret name) where a secret's value is stored under ``folder``."""
    found = []
    skip = {p.resolve() for p in skip}
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.resolve() not in skip):
        data = path.read_bytes()
        name = str(path.relative_to(folder))
        found += [(name, n) for n, v in secrets.items() if v.encode() in data]
    return found


def test_secrets_reach_the_agent_but_no_file_under_claude(project, cli, tmp_path, monkeypatch):
    secrets = plant_secrets(monkeypatch)
    write_env_agent_stage(project, tmp_path, iterations=2)
    assert cli("start", "keys", "--stage", "work").returncode == 0
    waited = cli("wait", "keys", "--timeout", "60")
    assert waited.returncode == 0, waited.stdout + waited.stderr
    for n in (1, 2):
        assert_agent_saw(project, secrets, n)

    run = ProjectPaths.of(project).session("keys")
    iterations = [run.iteration_dir(0, "work", n) for n in (1, 2)]
    written_by_engine = [
        run.state_file,
        run.events_file,
        run.pipeline_file,
        run.engine_log,
        run.progress_file,
        run.stage_dir(0, "work") / "output.md",
        *(folder / name for folder in iterations for name in ("context.json", "output.md")),
    ]
    assert all(path.is_file() for path in written_by_engine), "the scan would be vacuous"
    # status.json is the agent's own file: it wrote the secret there itself
    agent_files = {folder / "status.json" for folder in iterations}
    assert leaks(project / ".claude", secrets, skip=agent_files) == []

    # the secrets were there to leak: the agent printed them, and they were replaced
    log = run.engine_log.read_text()
    assert all(f"{n}=[redacted:{n}]" in log for n in secrets), log
    completed = [
        json.loads(line)
        for line in run.events_file.read_text().splitlines()
        if '"iteration_complete"' in line
    ]
    assert [e["data"]["summary"] for e in completed] == [
        "called the API with [redacted:ANTHROPIC_API_KEY]"
    ] * 2
    previous = json.loads((iterations[1] / "context.json").read_text())["previous"]
    assert previous["summary"] == "called the API with [redacted:ANTHROPIC_API_KEY]"

    answers = [cli("--json", "status", "keys"), cli("status", "keys"), cli("list")]
    assert not [n for a in answers for n, v in secrets.items() if v in a.stdout + a.stderr]


def test_secret_in_the_agents_output_file_is_not_copied_unredacted(
    project, cli, tmp_path, monkeypatch
):
    secrets = plant_secrets(monkeypatch)
    monkeypatch.setenv("AGENT_WRITES_OUTPUT", "1")
    write_env_agent_stage(project, tmp_path, iterations=1)
    assert cli("start", "outkey", "--stage", "work").returncode == 0
    assert cli("wait", "outkey", "--timeout", "60").returncode == 0
    assert_agent_saw(project, secrets, 1)
    run = ProjectPaths.of(project).session("outkey")
    folder = run.iteration_dir(0, "work", 1)
    assert secrets["ANTHROPIC_API_KEY"] in (folder / "output.md").read_text(), "agent wrote it"
    agent_files = {folder / "status.json", folder / "output.md"}
    assert leaks(project / ".claude", secrets, skip=agent_files) == []


def cmdline(pid: int) -> list[str]:
    raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    return [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]


def all_cmdlines() -> dict[int, list[str]]:
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                found[int(entry.name)] = cmdline(int(entry.name))
            except OSError:
                continue  # the process ended while we looked
    return found


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs Linux /proc")
def test_secrets_are_on_no_command_line_while_the_session_runs(
    project, cli, tmp_path, monkeypatch, tmux_socket
):
    secrets = plant_secrets(monkeypatch)
    release = tmp_path / "release-agent"
    monkeypatch.setenv("AGENT_HOLD_UNTIL", str(release))
    write_env_agent_stage(project, tmp_path, iterations=1)
    assert cli("start", "argv", "--stage", "work").returncode == 0
    run = ProjectPaths.of(project).session("argv")

    def running_state() -> dict[str, Any] | None:
        if not (project / "agent-saw-1.json").exists():
            return None
        state: dict[str, Any] = json.loads(run.state_file.read_text())
        return state if state.get("agent_pid") else None

    try:
        state = wait_until(running_state, what="the agent to be running")
        engine = cmdline(state["pid"])
        assert "engine" in engine and "--session" in engine, engine
        server = subprocess.run(
            ["tmux", "-L", tmux_socket, "display-message", "-p", "#{pid}"],
            capture_output=True,
            text=True,
            check=True,
        )
        watched = {
            "engine": engine,
            "agent": cmdline(state["agent_pid"]),
            "tmux server": cmdline(int(server.stdout.strip())),
        }
        for what, argv in watched.items():
            assert not [n for n, v in secrets.items() if any(v in a for a in argv)], (what, argv)
        everywhere = all_cmdlines()
        assert not [
            (pid, n)
            for pid, argv in everywhere.items()
            for n, v in secrets.items()
            if any(v in a for a in argv)
        ]
        assert_agent_saw(project, secrets, 1)
    finally:
        release.write_text("go")
    assert cli("wait", "argv", "--timeout", "60").returncode == 0
