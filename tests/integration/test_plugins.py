"""A separately installed plugin package: registration, stages, lifecycle hooks, autoload."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from looprunner import Session
from looprunner.plugin import PluginError, hookimpl
from looprunner.plugins.manager import make_plugin_manager
from looprunner.plugins.registry import Registries
from looprunner.testing import install_plugin, plugin_path_env
from tests.conftest import REPO

SAMPLE = REPO / "tests" / "fixtures" / "plugins" / "looprunner-sample"


@pytest.fixture(scope="session")
def sample_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample plugin installed with pip into a folder of its own."""
    site = tmp_path_factory.mktemp("sample-site")
    return install_plugin(SAMPLE, site)


@pytest.fixture
def with_plugin(sample_site: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Make the installed plugin visible to every looprunner process; return its hook log."""
    log = tmp_path / "hooks.log"
    monkeypatch.setenv(
        "PYTHONPATH",
        plugin_path_env(sample_site),
    )
    monkeypatch.setenv("SAMPLE_PLUGIN_LOG", str(log))
    return log


@pytest.mark.tmux
def test_installed_plugin_provider_termination_stage_and_hooks_run_a_session(
    project, cli, with_plugin
):
    stages = {s["name"]: s for s in json.loads(cli("--json", "stages").stdout)}
    assert stages["sample-stage"]["origin"] == "plugin sample"
    started = cli("start", "plug", "--stage", "sample-stage")
    assert started.returncode == 0, started.stderr
    assert cli("wait", "plug", "--timeout", "60").returncode == 0
    state = Session("plug", project).status().state
    assert state.completion_reason == "twice"
    assert state.iteration_completed == 2
    assert with_plugin.read_text().splitlines() == [
        "iteration 1 continue 0",
        "iteration 2 continue 0",
        "complete plug complete",
    ]
    errors = [e for e in Session("plug", project).events() if e.type == "hook_error"]
    assert len(errors) == 1
    assert errors[0].data["plugin"] == "sample" and errors[0].data["hook"] == "on_stage_complete"
    assert "breaks on purpose" in errors[0].data["error"]


def test_plugins_command_shows_the_plugin_and_what_it_adds(cli, with_plugin):
    rows = {row["name"]: row for row in json.loads(cli("--json", "plugins").stdout)}
    sample = rows["sample"]
    assert (sample["distribution"], sample["version"]) == ("looprunner-sample", "1.2.3")
    assert sample["registers"] == {
        "stages": ["sample-stage"],
        "providers": ["sample-agent"],
        "terminations": ["sample-twice"],
    }
    assert sample["hooks"] == ["on_complete", "on_iteration", "on_stage_complete"]
    assert "looprunner-sample 1.2.3" in cli("plugins").stdout


def test_disabling_autoload_or_the_plugin_leaves_it_out(cli, with_plugin):
    def listed(env: dict[str, str]) -> list[str]:
        return [row["name"] for row in json.loads(cli("--json", "plugins", env=env).stdout)]

    everything = listed({})
    assert "sample" in everything
    # other installed distributions (the Ray plugin in CI) stay; only the named one goes
    expected = {
        "LOOPRUNNER_DISABLE_PLUGIN_AUTOLOAD": ["looprunner.builtin"],
        "LOOPRUNNER_DISABLED_PLUGINS": [name for name in everything if name != "sample"],
    }
    for variable, value in (
        ("LOOPRUNNER_DISABLE_PLUGIN_AUTOLOAD", "1"),
        ("LOOPRUNNER_DISABLED_PLUGINS", "sample"),
    ):
        env = {variable: value}
        assert listed(env) == expected[variable], env
        missing = cli("start", "x", "--stage", "sample-stage", env=env)
        assert missing.returncode == 2
        assert "unknown stage 'sample-stage'" in missing.stderr


def test_two_plugins_claiming_one_name_is_an_error_naming_both():
    class Impostor:
        name = "mock"

    class Plugin:
        @hookimpl
        def register_providers(self, registry):
            registry.add(Impostor)

    pm = make_plugin_manager(autoload=False)
    pm.register(Plugin(), name="impostor")
    expected = r"registered twice: by looprunner\.builtin and by impostor"
    registries = Registries(pm)  # each registry is filled when first used
    with pytest.raises(PluginError, match=expected):
        registries.providers.names()


def test_a_hook_implementation_may_take_any_subset_of_arguments(project, make_stage):
    make_stage("work", termination={"type": "fixed", "iterations": 2})
    seen: list[tuple] = []

    class Plugin:
        @hookimpl
        def on_iteration_start(self, iteration, context):
            seen.append(("start", iteration, context["iteration"]))

        @hookimpl
        def on_iteration(self, result):
            seen.append(("done", result.decision.value))

        @hookimpl
        def on_error(self, error):  # never called: the session completes
            seen.append(("error", error.type))

    pm = make_plugin_manager(autoload=False)
    pm.register(Plugin(), name="subset")
    from looprunner import Stage

    session = Session.start(
        "subset", Stage.load("work", project=project), project, backend="inline", plugin_manager=pm
    )
    assert session.status().state.status == "complete"
    assert seen == [("start", 1, 1), ("done", "continue"), ("start", 2, 2), ("done", "continue")]
