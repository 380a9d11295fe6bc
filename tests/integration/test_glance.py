"""The quick look answers ``status`` and ``list`` exactly as the models do, or not at all.

``looprunner.glance`` builds a session's answer from its files as plain data, for the
ordinary sessions, and declines anything else. Here sessions of every kind are made —
finished each way, crashed, rebooted under, running in tmux, orphaned in tmux, an
engine alive without its lock; and the unusual: a state file behind its log, unreadable
or written by hand, a stale lock file, a lock file alone, an earlier run kept aside, a
parallel block's folder, backend options, an unknown backend — and every command's
output, text and ``--json``, is compared with the quick look on and off
(``LOOPRUNNER_QUICK_LOOK=0``). Which kinds the quick look answered is checked too, so
the comparison is not between the models and themselves.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from looprunner import procinfo
from looprunner.glance.look import list_answers, status_answer
from looprunner.testing.kit import tmux_socket_path, wait_until, write_stage

pytestmark = pytest.mark.tmux

#: ages and durations move on between two runs a moment apart; column widths with them
AGE = re.compile(r"\b\d+[smhdw](\d+[smhd])?\b")
PADDING = re.compile(r" {2,}")
#: the kinds the quick look answers itself
ANSWERED = {
    "done",
    "flow",
    "failed",
    "crashed",
    "cleaned",
    "killed",
    "costly",
    "reboot",
    "live",
    "orphan",
    "lockless",
    "legacy",
    "copied",
}
#: the kinds it leaves to the models
DECLINED = {
    "behind",
    "unread",
    "typed",
    "stale",
    "ghost",
    "block",
    "options",
    "nosuch",
    "nope",
}


#: what each ordinary kind's state.json is changed to after its run
EDITS: dict[str, dict[str, Any]] = {
    "failed": {
        "status": "failed",
        "completion_reason": "error",
        "error": {"type": "provider_exit", "message": "agent exited 3", "iteration": 2},
    },
    "crashed": {"status": "running", "finished_at": None, "pid": 999999},
    "cleaned": {
        "status": "failed",
        "error": {"type": "crashed", "message": "the engine died", "iteration": None},
    },
    "killed": {"status": "killed", "completion_reason": "killed"},
    "costly": {
        "cost_usd": 0.0123,
        "usage": {
            "input_tokens": 1200,
            "output_tokens": 300,
            "cache_read_input_tokens": 5,
            "cache_creation_input_tokens": 7,
        },
        "spent": {"cost_usd": 0.0123, "tokens": 1512, "runtime": 3.5, "errors_in_row": 1},
    },
    "reboot": {
        "status": "running",
        "finished_at": None,
        "boot_id": "00000000-0000-0000-0000-000000000000",
    },
    "legacy": {"seq": None},  # written before the log was the record
    # with a tmux session of ours that no engine runs in
    "orphan": {"status": "running", "finished_at": None, "pid": 999999, "backend": "tmux"},
}


class Projects:
    """Two projects: one of ordinary sessions only, one with every unusual kind too."""

    def __init__(self, ordinary: Path, unusual: Path) -> None:
        self.ordinary = ordinary
        self.unusual = unusual
        #: each project's own tmux server: both have a session named ``orphan``
        self.sockets = {
            project: f"lrtest-glance-{os.getpid()}-{index}"
            for index, project in enumerate((ordinary, unusual))
        }

    def run(self, project: Path, *args: str, quick: bool) -> tuple[int, str, str]:
        """Run ``looprunner ARGS`` in ``project``; its exit code and steadied output."""
        done = subprocess.run(
            [sys.executable, "-m", "looprunner", "--project", str(project), *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
            env={
                **{k: v for k, v in os.environ.items() if k != "LOOPRUNNER_STATE_DIR"},
                "LOOPRUNNER_TMUX_SOCKET": self.sockets[project],
                "LOOPRUNNER_QUICK_LOOK": "1" if quick else "0",
            },
        )

        def steady(text: str) -> str:
            return PADDING.sub("  ", AGE.sub("AGE", text))

        return done.returncode, steady(done.stdout), steady(done.stderr)


def _edit(project: Path, name: str, **changes: Any) -> None:
    state = project / ".claude" / "pipeline-runs" / name / "state.json"
    data = json.loads(state.read_text())
    data.update(changes)
    state.write_text(json.dumps(data, indent=2))


def _tmux(socket: str, *args: str) -> None:
    subprocess.run(["tmux", "-L", socket, *args], check=True, capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Projects]:
    ordinary = tmp_path_factory.mktemp("ordinary")
    unusual = tmp_path_factory.mktemp("unusual")
    made = Projects(ordinary, unusual)

    def cli(project: Path, *args: str) -> None:
        code, _, err = made.run(project, *args, quick=False)
        assert code == 0, (args, err)

    try:
        for project, socket in made.sockets.items():
            write_stage(project, "work", termination={"type": "fixed", "iterations": 2})
            write_stage(
                project,
                "slow",
                termination={"type": "fixed", "iterations": 2},
                extra="mock_delay: 600\n",
            )
            flows = project / ".looprunner" / "pipelines"
            flows.mkdir(parents=True)
            (flows / "flow.yaml").write_text(
                "nodes:\n  - id: a\n    stage: work\n  - id: b\n    stage: work\n"
            )
            names = ("done", "failed", "crashed", "cleaned", "killed", "costly", "reboot")
            for name in (*names, "lockless", "orphan", "legacy"):
                cli(project, "start", name, "--stage", "work", "--foreground")
            cli(project, "start", "flow", "--pipeline", "flow", "--foreground")
            for name, changes in EDITS.items():
                _edit(project, name, **changes)
            # an engine alive (this test's process) whose lock file was deleted
            me = os.getpid()
            _edit(project, "lockless", status="running", finished_at=None, pid=me,
                  pid_start_time=procinfo.start_time(me), boot_id=procinfo.boot_id())  # fmt: skip
            # a tmux session of ours with no engine in it
            _tmux(socket, "new-session", "-d", "-s", "pipeline-orphan", "sleep", "600")
            _tmux(socket, "set-option", "-t", "=pipeline-orphan:", "@looprunner", str(project))
            cli(project, "start", "live", "--stage", "slow")
            # a run folder copied by hand: its state still calls it "done"
            runs = project / ".claude" / "pipeline-runs"
            shutil.copytree(runs / "done", runs / "copied")
        runs = unusual / ".claude" / "pipeline-runs"
        for name in ("behind", "unread", "typed", "stale", "block", "options", "nosuch"):
            shutil.copytree(runs / "done", runs / name)
            _edit(unusual, name, session=name)
        _edit(unusual, "behind", seq=3)
        (runs / "unread" / "state.json").write_text("{not json")
        _edit(unusual, "typed", iteration="2")
        (unusual / ".claude" / "locks" / "stale.lock").write_text('{"session": "stale"}')
        (unusual / ".claude" / "locks" / "ghost.lock").write_text("{}")
        (runs / "block" / "parallel-00-work").mkdir()
        (runs / "options" / "backend-options.json").write_text('{"socket": "x"}\n')
        _edit(unusual, "nosuch", backend="nosuch")
        cli(unusual, "start", "done", "--stage", "work", "--foreground", "--force")  # keeps one

        def running(project: Path) -> bool:
            done = made.run(project, "--json", "status", "live", quick=False)
            shown = json.loads(done[1]) if done[0] == 0 else {}
            return shown.get("health") == "running" and shown.get("iteration") == 1

        for project in (ordinary, unusual):
            wait_until(lambda p=project: running(p), timeout=60, what="live's first iteration")
        yield made
    finally:
        for socket in made.sockets.values():
            if tmux_socket_path(socket).exists():
                subprocess.run(
                    ["tmux", "-L", socket, "kill-server"], capture_output=True, check=False
                )


def _names(project: Path) -> list[str]:
    runs = sorted(p.name for p in (project / ".claude" / "pipeline-runs").iterdir())
    return [*runs, "ghost", "nope"]


def test_the_quick_look_answers_the_ordinary_kinds_and_declines_the_rest(projects, monkeypatch):
    monkeypatch.setenv("LOOPRUNNER_TMUX_SOCKET", projects.sockets[projects.unusual])
    monkeypatch.delenv("LOOPRUNNER_STATE_DIR", raising=False)
    answered = {
        name for name in _names(projects.unusual) if status_answer(str(projects.unusual), name)
    }
    assert answered == ANSWERED
    assert any(name.startswith("done.") for name in _names(projects.unusual))  # kept, declined
    assert set(_names(projects.unusual)) >= DECLINED
    assert list_answers(str(projects.unusual)) is None  # one unusual session: all the models'
    monkeypatch.setenv("LOOPRUNNER_TMUX_SOCKET", projects.sockets[projects.ordinary])
    listed = list_answers(str(projects.ordinary))
    assert listed is not None and {name for name, _ in listed} == ANSWERED


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_status_says_the_same_with_and_without_the_quick_look(projects, as_json):
    flag = ("--json",) if as_json else ()
    differ = {}
    for project in (projects.ordinary, projects.unusual):
        for name in _names(project):
            quick = projects.run(project, *flag, "status", name, quick=True)
            models = projects.run(project, *flag, "status", name, quick=False)
            if quick != models:
                differ[name] = (quick, models)
    assert differ == {}


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_list_says_the_same_with_and_without_the_quick_look(projects, as_json):
    flag = ("--json",) if as_json else ()
    for project in (projects.ordinary, projects.unusual):
        quick = projects.run(project, *flag, "list", quick=True)
        assert quick == projects.run(project, *flag, "list", quick=False)
        assert quick[0] == 0


def test_healths_seen_by_the_quick_look(projects, monkeypatch):
    monkeypatch.setenv("LOOPRUNNER_TMUX_SOCKET", projects.sockets[projects.ordinary])
    monkeypatch.delenv("LOOPRUNNER_STATE_DIR", raising=False)
    seen = {
        name: (answer or {}).get("health")
        for name in sorted(ANSWERED)
        for answer in [status_answer(str(projects.ordinary), name)]
    }
    assert seen == {
        "cleaned": "crashed",
        "copied": "complete",
        "costly": "complete",
        "crashed": "crashed",
        "done": "complete",
        "failed": "failed",
        "flow": "complete",
        "killed": "killed",
        "legacy": "complete",
        "live": "running",
        "lockless": "running",
        "orphan": "orphaned",
        "reboot": "crashed",
    }


def test_a_session_is_shown_by_the_name_it_was_asked_by(projects):
    """A copied run folder's state still names the original: the folder's name is shown."""
    for quick in (True, False):
        code, out, _ = projects.run(projects.ordinary, "status", "copied", quick=quick)
        assert (code, out.splitlines()[0]) == (0, "copied: complete")
        code, out, _ = projects.run(projects.ordinary, "list", quick=quick)
        assert any(line.startswith("copied  ") for line in out.splitlines()), out
