"""The real ``claude`` and ``codex`` programs, pinned, run loops against the fake model server.

Nothing leaves the machine: both CLIs are pointed at a loopback
:class:`~looprunner.testing.fake_model_server.FakeModelServer` whose scripted replies
make the agent run a shell command that writes ``status.json``, then answer. The tests
skip, saying why, where ``npm`` cannot install the CLIs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from looprunner.names import ProjectPaths
from looprunner.testing.fake_model_server import FakeModelServer
from looprunner.testing.real_clis import RealCLIs, fake_model_env
from tests.conftest import wait_until
from tests.integration.conftest import write_stage

pytestmark = [pytest.mark.tmux, pytest.mark.slow]

FINAL = "All three scripted changes are in."


def run_loop(cli: Any, env: dict[str, str], name: str, stage: str) -> dict[str, Any]:
    """Start a loop in tmux, wait for its end, and return ``status --json``."""
    started = cli("start", name, "--stage", stage, env=env)
    assert started.returncode == 0, started.stderr
    waited = cli("wait", name, "--timeout", "300", env=env, timeout=330)
    status: dict[str, Any] = json.loads(cli("--json", "status", name, env=env).stdout)
    assert waited.returncode == 0, (waited.stdout, waited.stderr, status.get("error"))
    return status


def completed(project: Path, name: str) -> list[dict[str, Any]]:
    run = ProjectPaths.of(project).session(name)
    events = [json.loads(line) for line in run.events_file.read_text().splitlines()]
    return [e for e in events if e["type"] == "iteration_complete"]


def reported_usage(server: FakeModelServer, api: str) -> dict[str, int]:
    sent = server.reported[api]
    return {
        "input_tokens": sent.input_tokens,
        "output_tokens": sent.output_tokens,
        "cache_read_input_tokens": sent.cache_read_input_tokens,
        "cache_creation_input_tokens": sent.cache_creation_input_tokens,
    }


@pytest.fixture
def model_env(
    lr_real_clis: RealCLIs, lr_fake_model_server: FakeModelServer, tmp_path: Path
) -> dict[str, str]:
    """The environment that points both real CLIs at this test's fake server."""
    lr_fake_model_server.decisions = ("continue", "continue", "stop")
    lr_fake_model_server.final_text = FINAL
    return fake_model_env(lr_fake_model_server, lr_real_clis, tmp_path / "agent-home")


def test_real_claude_loop_records_decisions_cost_and_usage(
    cli, lr_project, lr_fake_model_server, model_env
):
    # as root too: the provider sets IS_SANDBOX=1 there, or claude would refuse to run
    write_stage(lr_project, "work", provider="claude", iterations=5)
    status = run_loop(cli, model_env, "c1", "work")
    state = status
    assert (status["health"], state["completion_reason"]) == ("complete", "agent_stop")
    done = completed(lr_project, "c1")
    assert [e["data"]["decision"] for e in done] == ["continue", "continue", "stop"]

    # usage is what the server reported; cost is what claude said, summed, and not zero
    assert state["usage"] == reported_usage(lr_fake_model_server, "anthropic")
    assert state["stages"][0]["usage"] == state["usage"]
    costs = [e["data"]["cost_usd"] for e in done]
    assert state["cost_usd"] == pytest.approx(sum(costs))
    assert state["cost_usd"] > 0
    first = done[0]["data"]
    assert first["num_turns"] == 2
    assert first["agent_version"] == "2.1.332"
    assert first["agent_session_id"]

    # output.md is the agent's answer; the whole stream is kept beside it
    run = ProjectPaths.of(lr_project).session("c1")
    folder = run.iteration_dir(0, "work", 1)
    assert (folder / "output.md").read_text() == FINAL
    transcript = [
        json.loads(line) for line in (folder / "transcript.jsonl").read_text().splitlines()
    ]
    assert transcript[-1]["type"] == "result"

    # list shows the cost; engine.log shows the agent's words and commands, not JSON
    listed = cli("list", env=model_env).stdout
    assert "COST" in listed
    assert f"${state['cost_usd']:.4f}" in listed
    log = run.engine_log.read_text()
    assert FINAL in log
    assert "> Bash: printf %s" in log
    assert '"type":"assistant"' not in log


def test_real_codex_loop_records_usage_without_a_cost(
    cli, lr_project, lr_fake_model_server, model_env
):
    write_stage(lr_project, "work", provider="codex", model="gpt-fake", iterations=5)
    status = run_loop(cli, model_env, "x1", "work")
    state = status
    assert (status["health"], state["completion_reason"]) == ("complete", "agent_stop")
    done = completed(lr_project, "x1")
    assert [e["data"]["decision"] for e in done] == ["continue", "continue", "stop"]

    assert state["usage"] == reported_usage(lr_fake_model_server, "openai")
    assert state["cost_usd"] is None  # codex reports no cost: unknown, never zero
    assert all("cost_usd" not in e["data"] for e in done)
    assert done[0]["data"]["agent_version"] == "0.171.0"
    assert done[0]["data"]["agent_session_id"]

    run = ProjectPaths.of(lr_project).session("x1")
    assert (run.iteration_dir(0, "work", 1) / "output.md").read_text() == FINAL
    listed = cli("list", env=model_env).stdout
    assert "? (" in listed and "tok)" in listed


@pytest.mark.skipif(os.geteuid() != 0, reason="what root implies is tested as root")
def test_claude_as_root_runs_with_is_sandbox(cli, lr_project, lr_fake_model_server, model_env):
    # the iteration would fail at once with "cannot be used with root/sudo privileges"
    lr_fake_model_server.decisions = ("stop",)
    write_stage(lr_project, "work", provider="claude", iterations=1)
    status = run_loop(cli, model_env, "root1", "work")
    assert status.get("error") is None
    assert lr_fake_model_server.reported["anthropic"].replies == 2


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie no one has reaped yet is gone for every purpose
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.parametrize("provider", ["claude", "codex"])
def test_kill_with_no_grace_leaves_nothing_the_cli_tool_started(
    cli, lr_project, lr_fake_model_server, model_env, tmp_path, provider
):
    # the CLIs run tool commands in a session of their own; this one also starts a
    # program in yet another session, then blocks: kill must end all of it at once
    pids = tmp_path / "pids"
    pids.mkdir()
    lr_fake_model_server.command_for = lambda turn: (
        f"setsid sh -c 'echo $$ > {pids}/escaped.pid; exec sleep 301' & "
        f"echo $$ > {pids}/tool.pid; sleep 302"
    )
    write_stage(
        lr_project, "work", provider=provider, model="gpt-fake" if provider == "codex" else None
    )
    env = {**model_env, "LOOPRUNNER_KILL_GRACE": "0"}
    assert cli("start", "k1", "--stage", "work", env=env).returncode == 0
    started = wait_until(
        lambda: all(
            (pids / f).is_file() and (pids / f).read_text().strip()
            for f in ("tool.pid", "escaped.pid")
        ),
        timeout=120,
        what="the tool command to start",
    )
    assert started
    tool = int((pids / "tool.pid").read_text())
    escaped = int((pids / "escaped.pid").read_text())
    assert pid_alive(tool) and pid_alive(escaped)
    killed = cli("kill", "k1", "--yes", env=env)
    assert killed.returncode == 0, killed.stderr
    status = json.loads(cli("--json", "status", "k1", env=env).stdout)
    assert status["health"] == "killed"
    wait_until(
        lambda: not pid_alive(tool) and not pid_alive(escaped),
        timeout=10,
        what="the tool's processes to be gone",
    )


def model_requests(server: FakeModelServer) -> list[dict[str, Any]]:
    return [
        body
        for method, path, body in server.requests
        if method == "POST" and path.split("?")[0].endswith(("/messages", "/responses"))
    ]


@pytest.mark.parametrize("provider", ["claude", "codex"])
def test_session_mode_continue_resumes_the_agents_conversation(
    cli, lr_project, lr_fake_model_server, model_env, provider
):
    lr_fake_model_server.decisions = ("continue", "stop")
    write_stage(
        lr_project,
        "work",
        provider=provider,
        model="gpt-fake" if provider == "codex" else None,
        iterations=3,
        prompt="Iteration ${ITERATION}: write ${STATUS}.\n",
        extra="session_mode: continue\n",
    )
    status = run_loop(cli, model_env, "r1", "work")
    assert status["completion_reason"] == "agent_stop"
    done = completed(lr_project, "r1")
    assert len(done) == 2
    first, second = (e["data"]["agent_session_id"] for e in done)
    assert first == second
    assert status["stages"][0]["agent_session_id"] == first
    # the model saw iteration 1's conversation again when iteration 2 began
    bodies = model_requests(lr_fake_model_server)
    opening = next(b for b in bodies if "Iteration 2: write" in json.dumps(b))
    assert "Iteration 1: write" in json.dumps(opening)
    assert FINAL in json.dumps(opening)


def test_what_a_failed_iteration_cost_still_counts(
    cli, lr_project, lr_fake_model_server, model_env
):
    # the agent runs a command that writes no status: the iteration fails, but the
    # tokens it spent were spent
    lr_fake_model_server.command_for = lambda turn: "true"
    write_stage(lr_project, "work", provider="claude", iterations=3)
    assert cli("start", "f1", "--stage", "work", env=model_env).returncode == 0
    cli("wait", "f1", "--timeout", "300", env=model_env, timeout=330)
    status = json.loads(cli("--json", "status", "f1", env=model_env).stdout)
    assert (status["health"], status["error"]["type"]) == ("failed", "status_missing")
    assert status["usage"] == reported_usage(lr_fake_model_server, "anthropic")
    assert status["cost_usd"] > 0
    run = ProjectPaths.of(lr_project).session("f1")
    events = [json.loads(line) for line in run.events_file.read_text().splitlines()]
    failed = next(e for e in events if e["type"] == "iteration_failed")
    assert failed["data"]["cost_usd"] == status["cost_usd"]


def test_a_judge_agents_cost_counts_with_the_workers(
    cli, lr_project, lr_fake_model_server, model_env
):
    # turn 1 is the worker (continue), turn 2 its judge (stop): one iteration, two agents
    lr_fake_model_server.decisions = ("continue", "stop")
    stage = write_stage(lr_project, "work", provider="claude")
    (stage / "stage.yaml").write_text(
        "name: work\nprovider: claude\ntermination:\n  type: judgment\n  consensus: 1\n"
        "  max: 3\n  judge: {provider: claude}\n"
    )
    status = run_loop(cli, model_env, "j1", "work")
    assert status["completion_reason"] == "consensus"
    assert lr_fake_model_server.reported["anthropic"].replies == 4
    assert status["usage"] == reported_usage(lr_fake_model_server, "anthropic")
    run = ProjectPaths.of(lr_project).session("j1")
    events = [json.loads(line) for line in run.events_file.read_text().splitlines()]
    worker = next(e for e in events if e["type"] == "iteration_complete")["data"]
    judge = next(e for e in events if e["type"] == "judge_complete")["data"]
    assert status["cost_usd"] == pytest.approx(worker["cost_usd"] + judge["cost_usd"])


def test_what_claude_agents_of_a_parallel_block_cost_is_in_the_sessions_totals(
    cli, lr_project, lr_fake_model_server, model_env
):
    lr_fake_model_server.decisions = ("stop",)
    write_stage(lr_project, "work", provider="claude", iterations=1)
    pipelines = lr_project / ".looprunner" / "pipelines"
    pipelines.mkdir(parents=True)
    (pipelines / "blk.yaml").write_text(
        "nodes:\n  - id: blk\n    parallel:\n"
        "      providers: [{name: a, provider: claude}, {name: b, provider: claude}]\n"
        "      stages: [{id: work, stage: work}]\n"
    )
    assert cli("start", "pb", "--pipeline", "blk", env=model_env).returncode == 0
    cli("wait", "pb", "--timeout", "300", env=model_env, timeout=330)
    status = json.loads(cli("--json", "status", "pb", env=model_env).stdout)
    assert status["health"] == "complete", status.get("error")
    block = ProjectPaths.of(lr_project).session("pb").block_dir(0, "blk")
    branches = [json.loads((block / n / "state.json").read_text()) for n in ("a", "b")]
    # every token the server reported, all of it spent inside the block
    assert status["usage"] == reported_usage(lr_fake_model_server, "anthropic")
    assert status["stages"][0]["usage"] == status["usage"]
    assert status["cost_usd"] == pytest.approx(sum(b["cost_usd"] for b in branches))
    assert status["cost_usd"] > 0
    assert status["spent"]["cost_usd"] == pytest.approx(status["cost_usd"])
    assert f"${status['cost_usd']:.4f}" in cli("list", env=model_env).stdout
