"""A third-party plugin built on ``looprunner.plugin`` alone, used as a user would use it.

``tests/fixtures/plugins/looprunner-thirdparty`` is installed with pip (as
``test_plugins.py`` installs the sample plugin) and put on ``PYTHONPATH``, so the real
command line, and every engine it starts, loads it through its entry point. It adds the
stage types ``countdown`` (no agent) and ``two-agents`` (agents composed through
``ctx.run_agent``), the backend ``detached`` (no tmux: a detached process), and a
shipped stage folder. The backend writes each call it gets to ``calls.log``, which is
how these tests prove that ``status``, ``list``, ``monitor``, ``kill`` and ``cleanup``
asked *it*, not tmux.

None of these tests needs tmux: sessions run in the foreground (inline) or in the
``detached`` backend. Waits are polls with a deadline (``wait_until``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from looprunner.testing import install_plugin, plugin_path_env, wait_until
from tests.conftest import REPO, tree

PLUGINS = REPO / "tests" / "fixtures" / "plugins"
THIRDPARTY = PLUGINS / "looprunner-thirdparty"
WRAPPER = PLUGINS / "looprunner-wrapper"
#: where the detached backend keeps its records, logs and calls.log, in a project
DETACHED = ".looprunner-detached"


@pytest.fixture(scope="session")
def thirdparty_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """looprunner-thirdparty installed with pip into a folder of its own."""
    return install_plugin(THIRDPARTY, tmp_path_factory.mktemp("thirdparty-site"))


@pytest.fixture(scope="session")
def wrapper_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """looprunner-wrapper (the plugin that must be refused) installed the same way."""
    return install_plugin(WRAPPER, tmp_path_factory.mktemp("wrapper-site"))


@pytest.fixture
def with_thirdparty(thirdparty_site: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Make looprunner-thirdparty visible to every looprunner process the test starts."""
    monkeypatch.setenv("PYTHONPATH", plugin_path_env(thirdparty_site))
    monkeypatch.delenv("LOOPRUNNER_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.delenv("LOOPRUNNER_DISABLED_PLUGINS", raising=False)
    return thirdparty_site


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, start time) of ``pid`` from /proc, or None if there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[19])


def engine_alive(record: dict[str, Any]) -> bool:
    """Whether the engine a detached record names still runs (a zombie does not)."""
    stat = _stat(record["pid"])
    return stat is not None and stat[1] == record["start_time"] and stat[0] not in ("Z", "X")


@pytest.fixture
def detached_engines(project: Path) -> Iterator[Path]:
    """The project's detached-backend folder; engines a failed test left are killed after."""
    folder = project / DETACHED
    yield folder
    for path in folder.glob("*.json"):
        with contextlib.suppress(OSError, ValueError, KeyError):
            record = json.loads(path.read_text(encoding="utf-8"))
            if engine_alive(record):  # only the very process this test's backend started
                os.killpg(record["pid"], signal.SIGKILL)


def write_typed_stage(
    project: Path, name: str, stage_type: str, options: dict[str, Any] | None = None
) -> Path:
    """Write ``.looprunner/stages/NAME`` whose ``type:`` is ``stage_type``."""
    folder = project / ".looprunner" / "stages" / name
    folder.mkdir(parents=True)
    lines = [f"name: {name}", f"type: {stage_type}"]
    if options is not None:
        lines.append(f"options: {json.dumps(options)}")  # JSON is YAML's flow style
    (folder / "stage.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "prompt.md").write_text("Iteration ${ITERATION}. Write ${STATUS}.\n")
    return folder


def run_dir(project: Path, session: str) -> Path:
    return project / ".claude" / "pipeline-runs" / session


def iteration_dir(project: Path, session: str, stage_id: str, iteration: int) -> Path:
    return run_dir(project, session) / f"stage-00-{stage_id}" / "iterations" / f"{iteration:03d}"


def status_of(cli, name: str) -> dict[str, Any]:
    result = cli("--json", "status", name)
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def events_of(cli, name: str) -> list[dict[str, Any]]:
    result = cli("--json", "tail", name)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def calls(project: Path) -> list[str]:
    """The detached backend's calls so far, one ``CALL [SESSION]`` string each."""
    log = project / DETACHED / "calls.log"
    return log.read_text(encoding="utf-8").splitlines() if log.exists() else []


# --------------------------------------------------------------------------- discovery


def test_plugins_lists_the_stage_types_and_backend_and_stages_the_shipped_folder(
    cli, with_thirdparty
):
    rows = {row["name"]: row for row in json.loads(cli("--json", "plugins").stdout)}
    plugin = rows["thirdparty"]
    assert (plugin["distribution"], plugin["version"]) == ("looprunner-thirdparty", "0.3.0")
    assert plugin["registers"]["stage_types"] == ["countdown", "two-agents"]
    assert plugin["registers"]["backends"] == ["detached"]
    text = cli("plugins").stdout
    assert "looprunner-thirdparty 0.3.0" in text
    assert "countdown" in text and "detached" in text

    stages = {row["name"]: row for row in json.loads(cli("--json", "stages").stdout)}
    assert stages["countdown-demo"]["origin"] == "plugin thirdparty"
    assert not stages["countdown-demo"]["problem"]


def test_the_shipped_stage_folder_runs_with_the_plugins_own_type(cli, project, with_thirdparty):
    result = cli("start", "demo", "--stage", "countdown-demo", "--foreground")
    assert result.returncode == 0, result.stdout + result.stderr
    state = status_of(cli, "demo")
    assert (state["status"], state["iteration_completed"]) == ("complete", 2)
    last = iteration_dir(project, "demo", "countdown-demo", 2) / "output.md"
    assert last.read_text(encoding="utf-8").splitlines() == ["tock 2"]


# --------------------------------------------------------------------------- countdown


def test_a_countdown_stage_runs_inline_to_complete_after_start_iterations(
    cli, project, with_thirdparty
):
    write_typed_stage(project, "count", "countdown", {"start": 3})
    result = cli("start", "count", "--stage", "count", "--foreground")
    assert result.returncode == 0, result.stdout + result.stderr

    for n in (1, 2, 3):
        output = iteration_dir(project, "count", "count", n) / "output.md"
        assert output.read_text(encoding="utf-8").splitlines() == [f"tick {n}"]
    assert not iteration_dir(project, "count", "count", 4).exists()

    state = status_of(cli, "count")
    assert state["health"] == "complete"
    assert (state["status"], state["iteration_completed"]) == ("complete", 3)

    done = [e for e in events_of(cli, "count") if e["type"] == "iteration_complete"]
    assert [(e["iteration"], e["data"]["decision"]) for e in done] == [
        (1, "continue"),
        (2, "continue"),
        (3, "stop"),
    ]
    assert done[-1]["data"]["summary"] == "tick 3"
    assert done[-1]["data"]["reason"] == "counted to 3"


class BadOptions(NamedTuple):
    test_id: str
    options: dict[str, Any]
    named: tuple[str, ...]  # what the error message must name


BAD_OPTIONS = [
    BadOptions("start-not-a-number", {"start": "five"}, ("start", "'five'")),
    BadOptions("start-zero", {"start": 0}, ("start", "got 0")),
    BadOptions("start-a-boolean", {"start": True}, ("start", "True")),
    BadOptions("unknown-option", {"start": 3, "strat": 4}, ("strat",)),
    BadOptions("hold-negative", {"hold_seconds": -1}, ("hold_seconds", "-1")),
]


@pytest.mark.parametrize("case", BAD_OPTIONS, ids=[c.test_id for c in BAD_OPTIONS])
def test_bad_countdown_options_are_refused_by_lint_and_start_before_anything_is_written(
    case, cli, project, with_thirdparty
):
    write_typed_stage(project, "bad", "countdown", case.options)

    linted = cli("lint")
    assert linted.returncode == 2, linted.stdout + linted.stderr
    for word in case.named:
        assert word in linted.stdout + linted.stderr, (word, linted.stdout, linted.stderr)

    started = cli("start", "bad", "--stage", "bad")
    assert started.returncode == 2, started.stdout + started.stderr
    for word in case.named:
        assert word in started.stderr, (word, started.stderr)
    assert not run_dir(project, "bad").exists()
    assert not (project / ".claude" / "locks" / "bad.lock").exists()
    assert tree(project / ".claude") == {}


def test_an_unknown_stage_type_is_refused_listing_the_types_there_are(
    cli, project, with_thirdparty
):
    write_typed_stage(project, "odd", "nosuch")
    started = cli("start", "odd", "--stage", "odd")
    assert started.returncode == 2, started.stdout + started.stderr
    message = started.stderr
    assert "nosuch" in message
    for available in ("agent", "countdown", "two-agents"):  # "agent" as a word of its own
        assert re.search(rf"(?<![\w-]){available}(?![\w-])", message), (available, message)
    assert tree(project / ".claude") == {}

    linted = cli("lint")
    assert linted.returncode == 2
    assert "nosuch" in linted.stdout + linted.stderr


# --------------------------------------------------------------------------- two-agents


def test_two_agents_runs_two_agents_per_iteration_through_run_agent(
    cli, project, make_stage, with_thirdparty
):
    make_stage(
        "pair",
        termination={"type": "fixed", "iterations": 2},
        outputs={"default": "mock agent says hi\n"},
        extra="type: two-agents\n",
    )
    result = cli("start", "pair", "--stage", "pair", "--foreground")
    assert result.returncode == 0, result.stdout + result.stderr

    for n in (1, 2):
        folder = iteration_dir(project, "pair", "pair", n)
        first = json.loads((folder / "status.json").read_text(encoding="utf-8"))
        second = json.loads((folder / "second" / "status.json").read_text(encoding="utf-8"))
        assert first["decision"] == second["decision"] == "continue"
        assert "mock agent says hi" in (folder / "second" / "output.md").read_text()
    state = status_of(cli, "pair")
    assert (state["status"], state["iteration_completed"]) == ("complete", 2)
    done = [e for e in events_of(cli, "pair") if e["type"] == "iteration_complete"]
    assert [e["data"]["summary"] for e in done] == ["did one", "did one"]


# --------------------------------------------------------------------------- detached backend


@pytest.mark.slow
def test_the_detached_backend_is_asked_by_status_list_monitor_and_kill(
    cli, project, with_thirdparty, detached_engines
):
    write_typed_stage(project, "hold", "countdown", {"start": 50, "hold_seconds": 2})
    started = cli("start", "det", "--stage", "hold", "--backend", "detached")
    assert started.returncode == 0, started.stdout + started.stderr
    assert "launch det" in calls(project)
    record = json.loads((detached_engines / "det.json").read_text(encoding="utf-8"))
    assert engine_alive(record)

    before = calls(project).count("sessions")
    state = status_of(cli, "det")
    assert (state["health"], state["backend"]) == ("running", "detached")
    assert state["pid"] == record["pid"]  # the backend ran the engine itself, no shell
    assert calls(project).count("sessions") > before

    before = calls(project).count("sessions")
    listed = {row["session"]: row for row in json.loads(cli("--json", "list").stdout)}
    assert (listed["det"]["health"], listed["det"]["backend"]) == ("running", "detached")
    assert calls(project).count("sessions") > before

    watched = cli("--json", "monitor", "det")
    assert watched.returncode == 0, watched.stderr
    assert "capture det" in calls(project)

    killed = cli("kill", "det", "--yes")
    assert killed.returncode == 0, killed.stdout + killed.stderr
    state = status_of(cli, "det")
    assert (state["status"], state["health"]) == ("killed", "killed")
    assert "stop det" in calls(project)
    wait_until(lambda: not engine_alive(record), timeout=15, what="the engine to be gone")
    assert not (detached_engines / "det.json").exists()


@pytest.mark.slow
def test_cleanup_asks_the_detached_backend_and_marks_a_sigkilled_engines_state(
    cli, project, with_thirdparty, detached_engines
):
    write_typed_stage(project, "hold", "countdown", {"start": 50, "hold_seconds": 2})
    started = cli("start", "crash", "--stage", "hold", "--backend", "detached")
    assert started.returncode == 0, started.stdout + started.stderr
    record = json.loads((detached_engines / "crash.json").read_text(encoding="utf-8"))
    os.kill(record["pid"], signal.SIGKILL)
    wait_until(lambda: not engine_alive(record), timeout=15, what="the engine to die")

    before = calls(project).count("sessions")
    found = cli("--json", "cleanup")
    assert found.returncode == 0, found.stderr
    problems = {(p["kind"], p["session"]): p for p in json.loads(found.stdout)["problems"]}
    assert ("zombie_state", "crash") in problems
    assert problems[("zombie_state", "crash")]["fixed"] is False
    assert calls(project).count("sessions") > before
    assert status_of(cli, "crash")["status"] == "running"  # only reported, nothing changed

    fixed = cli("--json", "cleanup", "--fix", "--yes")
    assert fixed.returncode == 0, fixed.stderr
    problems = {(p["kind"], p["session"]): p for p in json.loads(fixed.stdout)["problems"]}
    assert problems[("zombie_state", "crash")]["fixed"] is True
    state = status_of(cli, "crash")
    assert (state["status"], state["health"]) == ("failed", "crashed")


# --------------------------------------------------------------------------- refused plugins


def test_a_wrapper_hook_implementation_is_refused_naming_the_plugin_and_the_hook(
    cli, project, make_stage, wrapper_site, monkeypatch
):
    monkeypatch.setenv("PYTHONPATH", plugin_path_env(wrapper_site))
    make_stage("work")
    for args in (("plugins",), ("start", "w", "--stage", "work", "--foreground")):
        result = cli(*args)
        assert result.returncode != 0, (args, result.stdout)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("looprunner: error:"), lines[0]
        assert "wrapping" in lines[0] and "on_iteration" in lines[0], lines[0]
    assert not run_dir(project, "w").exists()
