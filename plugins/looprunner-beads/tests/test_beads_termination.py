"""The ``beads`` termination in this process, against the fake bd (a real program)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import NamedTuple

import pytest
from looprunner import ConfigError, LooprunnerError, Termination
from looprunner.models import AgentStatus, Decision
from looprunner.plugins.manager import make_plugin_manager
from looprunner.plugins.registry import Registries
from looprunner.protocols import StageProgress, TerminationStrategy

PLUGIN = Path(__file__).resolve().parent.parent


@pytest.fixture
def plugin(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The plugin package, imported from its source folder (no entry point: no autoload)."""
    monkeypatch.syspath_prepend(str(PLUGIN))
    import looprunner_beads

    return looprunner_beads


def progress(project: Path, session: str, *decisions: Decision) -> StageProgress:
    return StageProgress(
        completed=len(decisions),
        cap=50,
        history=[AgentStatus(decision=d) for d in decisions],
        project=project,
        session=session,
    )


def test_the_plugin_registers_the_termination_and_its_stages(plugin):
    pm = make_plugin_manager(autoload=False)
    pm.register(plugin, name="beads")
    registries = Registries(pm)
    termination = registries.terminations.get("beads")
    assert termination is plugin.BeadsTermination
    assert registries.terminations.owner("beads") == "beads"
    [(owner, folder)] = registries.stage_folders.folders()
    assert owner == "beads"
    assert (folder / "work" / "stage.yaml").is_file()
    assert (folder / "work" / "prompt.md").is_file()
    assert isinstance(termination(Termination(type="beads", max=5)), TerminationStrategy)


def test_remaining_lists_every_ready_bead_of_the_session_and_no_other(plugin, beads, lr_project):
    # more than bd's default limit of 10: the plugin must ask for all of them
    beads.add("auth", *[f"bd-{n:02d}" for n in range(12)])
    beads.add("auth", "bd-claimed", status="in_progress")
    beads.add("auth", "bd-done", status="closed")
    beads.add("billing", "bd-other")
    termination = plugin.BeadsTermination(Termination(type="beads", max=50))
    remaining = termination.remaining(progress(lr_project, "auth"))
    assert sorted(remaining) == sorted([*(f"bd-{n:02d}" for n in range(12)), "bd-claimed"])
    [call] = beads.calls()
    assert call["argv"] == ["ready", "--label", "pipeline/auth", "--limit", "0", "--json"]
    assert Path(call["cwd"]) == lr_project


class DecideCase(NamedTuple):
    test_id: str
    ready: tuple[str, ...]
    decisions: tuple[Decision, ...]
    expected: str | None


DECIDE_CASES = [
    DecideCase("first-iteration-with-work", ("bd-1",), (), None),
    DecideCase("work-left-after-continue", ("bd-1",), (Decision.CONTINUE,), None),
    DecideCase("empty-before-the-first-iteration", (), (), "queue_empty"),
    DecideCase("empty-after-continue", (), (Decision.CONTINUE,), "queue_empty"),
    DecideCase("stop-wins-over-work", ("bd-1",), (Decision.CONTINUE, Decision.STOP), "agent_stop"),
    DecideCase("stop-then-continue", ("bd-1",), (Decision.STOP, Decision.CONTINUE), None),
]


@pytest.mark.parametrize("case", DECIDE_CASES, ids=[c.test_id for c in DECIDE_CASES])
def test_decide(case, plugin, beads, lr_project):
    beads.write([])
    beads.add("auth", *case.ready)
    termination = plugin.BeadsTermination(Termination(type="beads", max=50))
    assert termination.decide(progress(lr_project, "auth", *case.decisions)) == case.expected


def test_a_failing_bd_raises_a_looprunner_error_with_bds_message(plugin, beads, lr_project):
    # no .beads database in the project: bd says so and exits 1
    termination = plugin.BeadsTermination(Termination(type="beads", max=50))
    with pytest.raises(LooprunnerError, match="exited with status 1: Error: no beads database"):
        termination.decide(progress(lr_project, "auth"))


def test_output_that_is_not_bds_json_is_an_error_not_an_empty_queue(
    plugin, beads, lr_project, monkeypatch
):
    beads.write([])
    termination = plugin.BeadsTermination(Termination(type="beads", max=50))
    for printed, message in (
        ("", "printed no JSON"),
        ("No ready work", "printed no JSON: No ready work"),
        ('{"id": "bd-1"}', "not a list of issues"),
        ('[{"title": "no id"}]', "not a list of issues"),
    ):
        monkeypatch.setenv("FAKE_BD_PRINT", printed)
        with pytest.raises(LooprunnerError, match=message):
            termination.remaining(progress(lr_project, "auth"))
    monkeypatch.setenv("FAKE_BD_PRINT", "null")  # a Go nil slice: nothing ready
    assert termination.remaining(progress(lr_project, "auth")) == []


def test_without_bd_on_path_the_spec_is_valid_but_deciding_raises(plugin, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    termination = plugin.BeadsTermination(Termination(type="beads", max=5))
    termination.validate()  # the definition is fine: lint does not need bd
    with pytest.raises(LooprunnerError, match=r"bd is not installed \(not on PATH\)"):
        termination.decide(progress(tmp_path, "auth"))


@pytest.mark.parametrize(
    "key", ["queue_command", "min_iterations", "consensus"], ids=lambda key: key
)
def test_validate_refuses_keys_of_other_termination_types(key, plugin):
    value = ("bd", "ready") if key == "queue_command" else 2
    termination = plugin.BeadsTermination(Termination(type="beads", max=5, **{key: value}))
    with pytest.raises(ConfigError, match=rf"termination\.{key}: not used by a 'beads'"):
        termination.validate()
    plugin.BeadsTermination(Termination(type="beads", max=5)).validate()
