"""A backend's own options: given at launch, from the environment or the project, recorded.

The backend here is tmux with one option, ``socket`` (which tmux server it uses): a
session launched on a server other than the default one is only found, watched and
stopped there if every later command asks the backend set as the launch set it. Real
engines in real (private) tmux servers, the ``mock`` agent.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import pluggy
import pytest

from looprunner import Pipeline, Session, Stage
from looprunner.backends.tmux import TmuxBackend
from looprunner.errors import UsageError
from looprunner.plugin import BackendOption, hookimpl, make_plugin_manager
from looprunner.session import backend_options
from tests.conftest import tree

pytestmark = pytest.mark.tmux


class SocketTmux(TmuxBackend):
    """tmux on the server its option ``socket`` names."""

    name: ClassVar[str] = "tmux-socket"
    options: ClassVar[tuple[BackendOption, ...]] = (
        BackendOption("socket", "--tmux-socket", "EXAMPLE_TMUX_SOCKET", "A tmux -L socket."),
    )

    def __init__(self) -> None:
        super().__init__()
        self.configured: dict[str, str] = {}

    def configure(self, options: Mapping[str, str]) -> None:
        self.configured = dict(options)
        self.socket_name = options.get("socket") or self.socket_name


class Plugin:
    @hookimpl
    def register_backends(self, registry: Any) -> None:
        registry.add(SocketTmux)


@pytest.fixture
def pm() -> pluggy.PluginManager:
    manager = make_plugin_manager(autoload=False)
    manager.register(Plugin(), name="socket-tmux")
    return manager


@pytest.fixture
def other_server() -> Iterator[str]:
    """A second private tmux server (only it is killed afterwards)."""
    socket = f"lrtest-other-{uuid.uuid4().hex[:10]}"
    yield socket
    subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, check=False)


def tmux_sessions(socket: str) -> list[str]:
    done = subprocess.run(
        ["tmux", "-L", socket, "list-sessions", "-F", "#{session_name}"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.split()


def slow_stage(project: Path, make_stage: Any, monkeypatch: pytest.MonkeyPatch) -> Stage:
    make_stage("work", termination={"type": "fixed", "iterations": 200})
    monkeypatch.setenv("LOOPRUNNER_MOCK_DELAY", "1")
    return Stage.load("work", project=project)


def test_a_session_launched_with_an_option_is_watched_and_stopped_with_it(
    project, make_stage, monkeypatch, pm, other_server
):
    stage = slow_stage(project, make_stage, monkeypatch)
    Session.start(
        "far", stage, project, backend="tmux-socket", plugin_manager=pm,
        backend_options={"socket": other_server},
    )  # fmt: skip
    assert tmux_sessions(other_server) == ["pipeline-far"]
    later = Session("far", project, plugin_manager=pm)  # a later command: no option given
    status = later.status()
    assert (status.health.value, status.resources.tmux) == ("running", True)
    assert later.where() == "tmux session pipeline-far"
    listed = {s.session: s.resources.tmux for s in Session.list(project, plugin_manager=pm)}
    assert listed == {"far": True}
    later.kill()
    assert later.status().health.value == "killed"
    assert tmux_sessions(other_server) == []


def test_the_project_config_sets_an_option_and_the_environment_overrides_it(
    project, make_stage, monkeypatch, pm, other_server
):
    stage = slow_stage(project, make_stage, monkeypatch)
    (project / ".looprunner" / "config.yaml").write_text(
        f"backends:\n  tmux-socket:\n    socket: {other_server}\n"
    )
    session = Session.start("cfg", stage, project, backend="tmux-socket", plugin_manager=pm)
    try:
        assert tmux_sessions(other_server) == ["pipeline-cfg"]
        assert Session("cfg", project, plugin_manager=pm).status().resources.tmux is True
    finally:
        session.kill()
    assert tmux_sessions(other_server) == []

    backend = SocketTmux()
    config = {"socket": other_server}
    env = {"EXAMPLE_TMUX_SOCKET": "from-env"}
    assert backend_options.resolve(backend, project, None, {}) == config
    assert backend_options.resolve(backend, project, None, env) == {"socket": "from-env"}
    given = {"socket": "from-flag"}
    assert backend_options.resolve(backend, project, given, env) == given
    recorded = {"socket": "recorded"}
    assert backend_options.resolve(backend, project, None, env, recorded) == recorded
    with pytest.raises(UsageError, match="holds a password"):
        backend_options.resolve(backend, project, {"socket": "http://me:s3cret@head:8265"}, {})


def test_an_unknown_option_is_refused_naming_it_and_nothing_is_written(project, make_stage, cli):
    make_stage("work")
    before = tree(project)
    done = cli("start", "bad", "--stage", "work", "--backend-option", "nope=1")
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip().splitlines() == [
        "looprunner: error: --backend-option: backend 'tmux' has no option 'nope' "
        "(its options: none)"
    ]
    malformed = cli("start", "bad", "--stage", "work", "--backend-option", "nope")
    assert malformed.returncode == 2
    assert "expected NAME=VALUE" in malformed.stderr
    assert tree(project) == before
    assert not (project / ".claude").exists()


def test_a_wrong_project_config_is_refused_at_its_line(project, make_stage, cli, pm):
    make_stage("work")
    config = project / ".looprunner" / "config.yaml"
    config.write_text("# settings\nbackends:\n  tmux:\n    adress: http://x\n")
    before = tree(project)
    done = cli("start", "bad", "--stage", "work")
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"{config}:4: backend 'tmux' has no option 'adress'" in done.stderr
    config.write_text("backends:\n  - tmux\n")
    done = cli("start", "bad", "--stage", "work")
    assert done.returncode == 2
    assert f"{config}:2:3: backends: expected a mapping of backend names" in done.stderr
    assert tree(project) == {**before, ".looprunner/config.yaml": config.read_bytes()}
    with pytest.raises(UsageError, match="has no option 'adress'"):
        config.write_text("backends:\n  tmux-socket:\n    adress: x\n")
        Session.start("bad", Stage.load("work", project=project), project, backend="tmux-socket",
                      plugin_manager=pm)  # fmt: skip


def test_start_help_lists_the_generic_option(cli):
    done = cli("start", "--help")
    assert "--backend-option NAME=VALUE" in done.stdout


def write_pipeline(project: Path, backends: str) -> Path:
    folder = project / ".looprunner" / "pipelines"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "far.yaml"
    path.write_text(f"name: far\n{backends}nodes:\n  - id: only\n    stage: work\n    runs: 200\n")
    return path


def test_a_pipeline_file_sets_an_option_between_the_environment_and_the_project(
    project, make_stage, monkeypatch, pm, other_server
):
    slow_stage(project, make_stage, monkeypatch)
    (project / ".looprunner" / "config.yaml").write_text(
        "backends:\n  tmux-socket:\n    socket: from-project\n"
    )
    write_pipeline(project, f"backends:\n  tmux-socket:\n    socket: {other_server}\n")
    pipeline = Pipeline.load("far", project=project)
    assert pipeline.backends == {"tmux-socket": {"socket": other_server}}
    session = Session.start("pipe", pipeline, project, backend="tmux-socket", plugin_manager=pm)
    try:  # the pipeline's server, not the project's: the session runs there, and is found
        assert tmux_sessions(other_server) == ["pipeline-pipe"]
        later = Session("pipe", project, plugin_manager=pm)
        assert later.status().resources.tmux is True
    finally:
        session.kill()
    assert tmux_sessions(other_server) == []

    backend = SocketTmux()
    env = {"EXAMPLE_TMUX_SOCKET": "from-env"}
    resolve = backend_options.resolve
    assert resolve(backend, project, None, {}, None, pipeline) == {"socket": other_server}
    assert resolve(backend, project, None, env, None, pipeline) == {"socket": "from-env"}
    assert resolve(backend, project, None, {}) == {"socket": "from-project"}


def test_a_pipeline_file_with_an_unknown_option_is_refused_at_its_line(project, make_stage, cli):
    make_stage("work")
    path = write_pipeline(project, "backends:\n  tmux:\n    adress: http://x\n")
    before = tree(project)
    done = cli("start", "bad", "--pipeline", "far")
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip().splitlines() == [
        f"looprunner: error: {path}:4: backend 'tmux' has no option 'adress' (its options: none)"
    ]
    path.write_text(path.read_text().replace("    adress: http://x\n", "    adress: [1, 2]\n"))
    done = cli("start", "bad", "--pipeline", "far")
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"{path}:4:13: backends.tmux.adress: expected a text value" in done.stderr
    assert tree(project) == {**before, ".looprunner/pipelines/far.yaml": path.read_bytes()}
