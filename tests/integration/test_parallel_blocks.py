"""Parallel blocks, run for real: providers at once, a failure, kill, SIGKILL and resume.

Every agent is ``tests/fakes/block_agent.py`` under the ``command`` provider; a block's
providers are named ``a``, ``b``, ... (``provider: command`` each), so which provider ran
what is read from the agents' own records. Concurrency is proven by the agents meeting
each other (each waits until all have started), never by timing.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from looprunner import Session
from looprunner.models import Health
from looprunner.procinfo import is_alive
from tests.conftest import wait_until

AGENT = Path(__file__).resolve().parent.parent / "fakes" / "block_agent.py"


class Blocks:
    """One test's project, agent script and agent log."""

    def __init__(self, project: Path, tmp: Path) -> None:
        self.project = project
        self.log = tmp / "agent-log"
        self.log.mkdir()
        self.script_file = tmp / "agent-script.json"
        self.script({})
        os.environ["BLOCK_AGENT_LOG"] = str(self.log)
        os.environ["BLOCK_AGENT_SCRIPT"] = str(self.script_file)

    def script(self, actions: dict[str, Any]) -> None:
        self.script_file.write_text(json.dumps(actions))

    def stage(self, name: str, iterations: int = 1) -> None:
        folder = self.project / ".looprunner" / "stages" / name
        folder.mkdir(parents=True, exist_ok=True)
        command = json.dumps([sys.executable, str(AGENT)])
        (folder / "stage.yaml").write_text(
            f"name: {name}\nprovider: command\ncommand: {command}\n"
            f"termination:\n  type: fixed\n  iterations: {iterations}\n"
        )
        (folder / "prompt.md").write_text("Do ${STAGE}. Write ${STATUS}.\n")

    def pipeline(self, name: str, text: str) -> None:
        folder = self.project / ".looprunner" / "pipelines"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.yaml").write_text(text)

    def runs(self) -> list[dict[str, Any]]:
        """Every agent run recorded so far."""
        return [json.loads(p.read_text()) for p in sorted(self.log.glob("*.json"))]

    def started(self, branch: str, stage: str, iteration: int = 1) -> list[dict[str, Any]]:
        return [
            r
            for r in self.runs()
            if (r["branch"], r["stage"], r["iteration"]) == (branch, stage, iteration)
        ]


@pytest.fixture
def blocks(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Blocks:
    monkeypatch.setenv("BLOCK_AGENT_LOG", "")
    monkeypatch.setenv("BLOCK_AGENT_SCRIPT", "")
    return Blocks(project, tmp_path)


def providers(*names: str) -> str:
    return "[" + ", ".join(f"{{name: {n}, provider: command}}" for n in names) + "]"


def block_pipeline(names: tuple[str, ...], stages: tuple[str, ...] = ("s",)) -> str:
    lines = ["name: blk", "nodes:", "  - id: blk", "    parallel:"]
    lines.append(f"      providers: {providers(*names)}")
    lines.append("      stages:")
    lines += [f"        - {{id: {s}, stage: {s}}}" for s in stages]
    return "\n".join(lines) + "\n"


def branch_state(session: Session, index: int, block: str, name: str) -> dict[str, Any]:
    path = session.paths.block_dir(index, block) / name / "state.json"
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def completed_iterations(session: Session) -> Counter[tuple[Any, ...]]:
    """Count ``iteration_complete`` events by (provider, stage, iteration)."""
    return Counter(
        (e.data.get("provider"), e.stage, e.iteration)
        for e in session.events()
        if e.type == "iteration_complete"
    )


def test_providers_of_a_block_run_at_the_same_time(blocks: Blocks, cli: Any) -> None:
    """Three providers whose agents each wait for the other two: all must be running at once."""
    blocks.stage("s")
    blocks.stage("t")
    blocks.pipeline("blk", block_pipeline(("a", "b", "c"), ("s", "t")))
    blocks.script({"default": {"meet": 3}})
    result = cli("start", "p1", "--pipeline", "blk", "--foreground")
    assert result.returncode == 0, result.stdout + result.stderr
    session = Session("p1", blocks.project)
    assert session.status().health is Health.COMPLETE
    block = session.paths.block_dir(0, "blk")
    manifest = json.loads((block / "manifest.json").read_text())
    assert sorted(manifest["providers"]) == ["a", "b", "c"]
    for name in ("a", "b", "c"):
        entry = manifest["providers"][name]
        assert entry["status"] == "complete"
        for stage, position in (("s", 0), ("t", 1)):
            output = Path(entry["stages"][stage]["output"])
            assert output == block / name / f"stage-{position:02d}-{stage}" / "output.md"
            assert output.read_text() == f"{name} {stage} 1\n"
        assert (block / name / "progress.md").parent.is_dir()
    # sequential within a provider: t's agent of a provider started after its s ended
    assert {(r["branch"], r["stage"]) for r in blocks.runs()} == {
        (n, s) for n in "abc" for s in "st"
    }
    assert set(completed_iterations(session)) >= {(n, s, 1) for n in "abc" for s in "st"}


def test_a_failing_provider_fails_the_block_and_stops_the_others(
    blocks: Blocks, cli: Any, tmp_path: Path
) -> None:
    """b exits 3 while a waits for a file that never comes: the session fails, a is ended."""
    blocks.stage("s")
    blocks.pipeline("blk", block_pipeline(("a", "b")))
    never = tmp_path / "never"
    blocks.script({"a": {"meet": 2, "wait_file": str(never)}, "b": {"meet": 2, "exit": 3}})
    result = cli("start", "p2", "--pipeline", "blk", "--foreground")
    assert result.returncode != 0 or "failed" in result.stdout
    status = Session("p2", blocks.project).status()
    assert status.health is Health.FAILED
    assert status.state is not None and status.state.error is not None
    assert status.state.error.type == "provider_exit"
    assert "provider b failed" in status.state.error.message
    [a_run] = blocks.started("a", "s")
    assert not is_alive(a_run["pid"], None, None), "a's agent was left running"
    session = Session("p2", blocks.project)
    assert branch_state(session, 0, "blk", "a")["status"] == "killed"
    assert branch_state(session, 0, "blk", "b")["status"] == "failed"
    assert {b.name: b.status for b in status.branches} == {"a": "killed", "b": "failed"}


@pytest.mark.tmux
def test_kill_stops_every_providers_agent(blocks: Blocks, cli: Any, tmp_path: Path) -> None:
    blocks.stage("s")
    blocks.pipeline("blk", block_pipeline(("a", "b")))
    blocks.script({"default": {"wait_file": str(tmp_path / "never")}})
    assert cli("start", "p3", "--pipeline", "blk").returncode == 0
    runs = wait_until(
        lambda: (blocks.started("a", "s") and blocks.started("b", "s")) and blocks.runs(),
        what="both providers' agents started",
    )
    result = cli("kill", "p3", "--yes")
    assert result.returncode == 0, result.stderr
    for run in runs:
        assert not is_alive(run["pid"], None, None), f"{run['branch']}'s agent survived kill"
    status = Session("p3", blocks.project).status()
    assert status.health is Health.KILLED
    assert {b.name: b.status for b in status.branches} == {"a": "killed", "b": "killed"}


@pytest.mark.tmux
def test_one_providers_agent_ending_leaves_a_later_started_sibling_running(
    blocks: Blocks, cli: Any, tmp_path: Path
) -> None:
    """b's second agent starts while a's runs and outlives it: a's sweep must spare it."""
    blocks.stage("s1")
    blocks.stage("s2")
    blocks.pipeline("blk", block_pipeline(("a", "b"), ("s1", "s2")))
    a_started, b_started, go = tmp_path / "a-started", tmp_path / "b-started", tmp_path / "go"
    blocks.script(
        {
            "a/s1": {"touch": str(a_started), "wait_file": str(b_started)},
            "b/s1": {"after": str(a_started)},
            "b/s2": {"touch": str(b_started), "wait_file": str(go)},
        }
    )
    assert cli("start", "p7", "--pipeline", "blk").returncode == 0
    session = Session("p7", blocks.project)
    wait_until(
        lambda: (
            (session.paths.block_dir(0, "blk") / "a" / "state.json").is_file()
            and branch_state(session, 0, "blk", "a")["status"] == "complete"
        ),
        what="a complete",
    )
    [b_run] = blocks.started("b", "s2")
    assert is_alive(b_run["pid"], None, None), "a's sweep ended b's agent"
    go.touch()
    wait_until(lambda: session.status().finished, timeout=60, what="session finished")
    assert session.status().health is Health.COMPLETE
    assert len(blocks.started("b", "s2")) == 1


@pytest.mark.tmux
def test_sigkill_mid_block_then_resume_reruns_only_the_unfinished_provider(
    blocks: Blocks, cli: Any, tmp_path: Path
) -> None:
    """a finishes its two iterations; the engine dies while b runs; resume finishes only b."""
    blocks.stage("s", iterations=2)
    blocks.stage("after")
    blocks.pipeline(
        "blk",
        block_pipeline(("a", "b"))
        + "  - id: after\n    stage: after\n    inputs:\n      from_parallel: s\n",
    )
    go = tmp_path / "go"
    blocks.script({"b": {"wait_file": str(go)}})
    assert cli("start", "p4", "--pipeline", "blk").returncode == 0
    session = Session("p4", blocks.project)
    wait_until(
        lambda: (
            blocks.started("b", "s")
            and (session.paths.block_dir(0, "blk") / "a" / "state.json").is_file()
            and branch_state(session, 0, "blk", "a")["status"] == "complete"
        ),
        what="a complete while b's agent runs",
    )
    state = session.status().state
    assert state is not None and state.pid is not None
    os.kill(state.pid, signal.SIGKILL)
    wait_until(lambda: session.status().health is Health.CRASHED, what="session crashed")
    assert {b.name: b.status for b in session.status().branches} == {
        "a": "complete",
        "b": "crashed",
    }
    go.touch()
    assert cli("resume", "p4").returncode == 0
    wait_until(lambda: session.status().finished, timeout=60, what="session finished")
    assert session.status().health is Health.COMPLETE
    assert len(blocks.started("a", "s", 1)) == 1 and len(blocks.started("a", "s", 2)) == 1
    assert len(blocks.started("b", "s", 1)) == 2  # cut short by the SIGKILL, then re-run
    done = completed_iterations(session)
    expected = {("a", "s", 1), ("a", "s", 2), ("b", "s", 1), ("b", "s", 2)}
    assert {k for k in done if k[0] in ("a", "b")} == expected
    assert all(done[k] == 1 for k in expected), done
    context = json.loads((session.paths.iteration_dir(1, "after", 1) / "context.json").read_text())
    assert sorted(context["inputs"]["from_parallel"]) == ["a", "b"]


def test_from_parallel_hands_over_the_right_files_in_all_three_forms(
    blocks: Blocks, cli: Any
) -> None:
    blocks.stage("s", iterations=2)
    blocks.stage("t")
    blocks.stage("read")
    blocks.pipeline(
        "fp",
        "name: fp\nnodes:\n"
        f"  - id: gen\n    parallel:\n      providers: {providers('a', 'b')}\n"
        "      stages: [{id: s, stage: s}]\n"
        "  - id: cross\n    parallel:\n      providers:\n"
        "        - {name: a, provider: command, inputs: {from_parallel: "
        "{stage: s, providers: [b]}}}\n"
        "        - {name: b, provider: command, inputs: {from_parallel: "
        "{stage: s, providers: [a]}}}\n"
        "      stages: [{id: t, stage: t}]\n"
        "  - id: short\n    stage: read\n    inputs: {from_parallel: s}\n"
        "  - id: full\n    stage: read\n"
        "    inputs: {from_parallel: {stage: s, block: gen, providers: [b], select: history}}\n"
        "  - id: listed\n    stage: read\n"
        "    inputs: {from_parallel: [{stage: s, providers: [a]}, {stage: t, providers: [b]}]}\n",
    )
    result = cli("start", "p5", "--pipeline", "fp", "--foreground")
    assert result.returncode == 0, result.stdout + result.stderr
    session = Session("p5", blocks.project)

    def handed(index: int, node: str, branch: str | None = None) -> dict[str, list[str]]:
        if branch is None:
            folder = session.paths.iteration_dir(index, node, 1)
        else:
            folder = session.paths.branch(index, "cross", branch).iteration_dir(0, node, 1)
        files = json.loads((folder / "context.json").read_text())["inputs"]["from_parallel"]
        return {k: [Path(f).read_text().strip() for f in v] for k, v in files.items()}

    assert handed(1, "t", "a") == {"b": ["b s 2"]}
    assert handed(1, "t", "b") == {"a": ["a s 2"]}
    assert handed(2, "short") == {"a": ["a s 2"], "b": ["b s 2"]}
    assert handed(3, "full") == {"b": ["b s 1", "b s 2"]}
    assert handed(4, "listed") == {"a": ["a s 2"], "b": ["b t 1"]}


def test_status_tail_and_dry_run_name_each_provider(blocks: Blocks, cli: Any) -> None:
    blocks.stage("s")
    blocks.pipeline("blk", block_pipeline(("a", "b")))
    plan = json.loads(cli("--json", "dry-run", "--pipeline", "blk").stdout)
    [block] = plan["nodes"]
    assert [(n["stage"], n["provider"]) for n in block["nested"]] == [
        ("s", "command"),
        ("s", "command"),
    ]
    assert cli("start", "p6", "--pipeline", "blk", "--foreground").returncode == 0
    status = json.loads(cli("--json", "status", "p6").stdout)
    assert [(b["name"], b["stage"], b["iteration"], b["decision"]) for b in status["branches"]] == [
        ("a", "s", 1, "continue"),
        ("b", "s", 1, "continue"),
    ]
    text = cli("status", "p6").stdout
    assert "providers:" in text and "a  stage s (1/1)  iteration 1/1  continue" in text
    tail = cli("tail", "p6").stdout
    assert "a/s" in tail and "b/s" in tail
