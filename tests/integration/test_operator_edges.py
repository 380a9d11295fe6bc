"""Edges an operator meets in the everyday verbs: ``-y``, killing what already finished,
the interactive menu's questions, and the name forms ``wait``, ``kill`` and ``resume`` take."""

from __future__ import annotations

import json
import os
import select
import time
from pathlib import Path

import pytest

from looprunner import Session
from looprunner.models import Health
from tests.conftest import tree, wait_until
from tests.integration.test_operations import Terminal, looprunner_argv, running_session


class Menu(Terminal):
    """A terminal that can wait for the n-th appearance of a text (a question asked again)."""

    def expect_times(self, text: str, times: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.seen.count(text) < times:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"did not see {text!r} {times} times; screen so far:\n{self.seen[-2000:]}"
                )
            if select.select([self.fd], [], [], remaining)[0]:
                self.seen += os.read(self.fd, 65536).decode("utf-8", "replace")


@pytest.mark.tmux
def test_kill_and_cleanup_take_y_for_yes(project: Path, make_stage, cli) -> None:
    session = running_session(project, make_stage, cli, name="short")
    killed = cli("kill", "short", "-y")
    assert killed.returncode == 0, killed.stderr
    assert session.status().health is Health.KILLED
    cleaned = cli("cleanup", "--fix", "-y")
    assert cleaned.returncode == 0, cleaned.stderr
    assert "Nothing to clean up" in cleaned.stdout


def test_kill_of_a_finished_session_says_so_instead_of_asking(
    project: Path, make_stage, cli
) -> None:
    make_stage("work", termination={"type": "fixed", "iterations": 1})
    assert cli("start", "done", "--stage", "work", "--foreground").returncode == 0
    before = tree(project / ".claude")
    said = "session 'done' is not running (it is complete)"
    for yes in ((), ("--yes",), ("-y",)):
        answer = cli("--json", "kill", "done", *yes)
        assert answer.returncode == 1, (yes, answer.stdout, answer.stderr)
        assert json.loads(answer.stdout) == {"error": {"type": "session", "message": said}}
        text = cli("kill", "done", *yes)
        assert text.returncode == 1, (yes, text.stderr)
        assert text.stderr.strip() == f"looprunner: error: {said}"
    assert tree(project / ".claude") == before
    assert Session("done", project).status().health is Health.COMPLETE


@pytest.mark.tmux
def test_menu_asks_again_for_a_bad_name_or_cap_and_keeps_the_other_answers(
    project: Path, make_stage, cli
) -> None:
    make_stage("other", termination={"type": "fixed", "iterations": 1})
    make_stage("work", termination={"type": "fixed", "iterations": 5})
    assert cli("start", "taken", "--stage", "other", "--foreground").returncode == 0
    menu = Menu(looprunner_argv(project), dict(os.environ))
    menu.expect("What would you like to do?")
    menu.send("1\n")  # start
    menu.expect("Stage number")
    menu.send("2\n")  # work (the stages are listed by name: other, work)
    menu.expect_times("Session name", 1)
    menu.send("Bad.Name\n")
    menu.expect("invalid session name 'Bad.Name'")
    menu.expect_times("Session name", 2)
    menu.send("taken\n")
    menu.expect("session 'taken' already exists (complete)")
    menu.expect_times("Session name", 3)
    menu.send("fresh\n")
    menu.expect_times("Iteration cap", 1)
    menu.send("zero\n")
    menu.expect("iteration cap 'zero' is not a positive whole number")
    menu.expect_times("Iteration cap", 2)
    menu.send("2\n")
    menu.expect("Started fresh")
    menu.expect_times("What would you like to do?", 2)
    menu.send("\n")  # quit
    assert menu.wait() == 0
    fresh = Session("fresh", project)
    done = wait_until(lambda: (s := fresh.status()).finished and s, what="fresh to finish")
    assert done.health is Health.COMPLETE
    assert done.state is not None
    assert [(s.stage, s.max_iterations) for s in done.state.stages] == [("work", 2)]
    assert "looprunner: error" not in menu.seen


def test_wait_kill_resume_and_the_viewers_answer_a_name_alike(
    project: Path, make_stage, cli
) -> None:
    make_stage("work", termination={"type": "fixed", "iterations": 1})
    assert cli("start", "auth", "--stage", "work", "--foreground").returncode == 0
    commands = ("wait", "kill", "resume", "status")  # status: what the viewers share
    forms = {"Bad.Name": 2, "nope": 4, "pipeline-auth": 4}  # the last: what `tmux ls` shows
    for name, code in forms.items():
        answers = {command: cli(command, name) for command in commands}
        lines = {answer.stderr for answer in answers.values()}
        assert len(lines) == 1, (name, lines)  # every command says the same
        line = lines.pop()
        assert line.count("\n") == 1 and line.startswith("looprunner: error: "), line
        assert repr(name) in line, line
        assert {a.returncode for a in answers.values()} == {code}, name
    told = cli("kill", "pipeline-auth", "-y").stderr
    assert "tmux session of session 'auth'" in told, told
