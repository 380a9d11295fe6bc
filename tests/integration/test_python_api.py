"""Driving looprunner from Python and notebooks: stages in code, background runs, display."""

from __future__ import annotations

import asyncio
import io
import sys
import threading

import pytest

from looprunner import ConfigError, Pipeline, Session, Stage
from looprunner.models import Health
from tests.conftest import wait_until


def python_stage(fixtures, iterations: int = 3, **extra) -> Stage:
    return Stage(
        name="inline-work",
        prompt="Do iteration ${ITERATION}; write ${STATUS}.",
        provider="mock",
        termination={"type": "fixed", "iterations": iterations},
        fixtures=fixtures,
        **extra,
    )


def test_a_stage_defined_in_python_runs_without_any_file(project, tmp_path):
    stage = python_stage(None, iterations=2)
    session = Session.start("code", stage, project, backend="inline")
    status = session.status()
    assert status.health is Health.COMPLETE
    assert status.state.iteration_completed == 2
    assert not (project / ".looprunner").exists()


def test_background_inline_session_can_be_watched_and_waited_on(project):
    stage = python_stage(None, iterations=3, mock_delay=0.2)
    session = Session.start("bg", stage.loop(), project, backend="inline", background=True)
    assert session.status().health is Health.RUNNING  # returned while it runs
    out = io.StringIO()
    final = session.watch(interval=0.05, out=out)
    assert final.health is Health.COMPLETE
    text = out.getvalue()
    assert "bg: running" in text and "bg: complete" in text
    assert "[########################] 3/3 complete" in text
    assert session.wait(timeout=30).health is Health.COMPLETE


def test_a_background_session_in_this_process_can_be_killed(project):
    stage = python_stage(None, iterations=50, mock_delay=5)
    session = Session.start("bgk", stage, project, backend="inline", background=True)
    wait_until(lambda: (s := session.status().state) and s.agent_pid, what="agent")
    assert session.kill().health is Health.KILLED
    engine_threads = [t for t in threading.enumerate() if t.name == "looprunner-bgk"]
    assert not any(t.is_alive() for t in engine_threads), "the engine's thread has ended"


def test_async_events_follow_a_running_session(project):
    stage = python_stage(None, iterations=2, mock_delay=0.2)
    session = Session.start("aev", stage, project, backend="inline", background=True)

    async def collect() -> list[str]:
        return [event.type async for event in session.aevents(follow=True, interval=0.05)]

    types = asyncio.run(collect())
    assert types[0] == "session_start" and types[-1] == "session_complete"
    assert types.count("iteration_complete") == 2


def test_status_and_lists_render_as_tables_in_jupyter_and_text(project):
    Session.start("one", python_stage(None, iterations=1), project, backend="inline")
    Session.start("two", python_stage(None, iterations=1), project, backend="inline")
    listed = Session.list(project)
    html = listed._repr_html_()
    assert html.count("<tr>") == 3 and "<td>one</td>" in html and "complete" in html
    text = str(listed).splitlines()
    assert text[0].split()[:2] == ["NAME", "TYPE"] and text[2].startswith("two")  # as `list`
    assert "<td>one</td>" in Session("one", project)._repr_html_()
    assert "one: complete" in str(Session("one", project))


def test_pipeline_built_in_code_runs_its_stages_in_order(project):
    first = python_stage(None, iterations=1)
    second = Stage(
        name="second",
        prompt="again ${ITERATION}",
        provider="mock",
        termination={"type": "fixed", "iterations": 2},
    )
    from looprunner.models import Node

    pipeline = Pipeline(name="coded", nodes=(Node(id="a", stage=first), Node(id="b", stage=second)))
    session = Session.start("coded", pipeline, project, backend="inline")
    assert [(s.id, s.iterations_completed) for s in session.status().state.stages] == [
        ("a", 1),
        ("b", 2),
    ]


@pytest.mark.parametrize("bad", [{"type": "fixed", "iterations": "x"}, {"typo": 1}])
def test_a_python_stage_with_a_bad_termination_is_refused(bad):
    with pytest.raises(ConfigError, match="termination"):
        Stage(name="w", termination=bad)


def test_a_failed_iterations_output_keeps_what_the_agent_printed(project):
    stage = Stage(
        name="loud",
        prompt="x",
        provider="command",
        command=(sys.executable, "-c", "print('disk is full, giving up'); raise SystemExit(3)"),
        termination={"type": "fixed", "iterations": 2},
    )
    session = Session.start("loud", stage, project, backend="inline")
    state = session.status().state
    assert state.status.value == "failed" and state.error.type == "provider_exit"
    output = session.paths.iteration_dir(0, "loud", 1) / "output.md"
    assert "disk is full, giving up" in output.read_text()
