"""The /sessions skill: installed into a project or home, updated in place, removed cleanly."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

from ruamel.yaml import YAML

from looprunner.cli.skill_files import skill_text
from tests.conftest import tree

SKILL = Path(".claude") / "skills" / "sessions" / "SKILL.md"
_FENCE = re.compile(r"^[ \t]*```\w*\n(.*?)^[ \t]*```", re.MULTILINE | re.DOTALL)
_INLINE = re.compile(r"`(looprunner [^`]+)`")


def front_matter(text: str) -> dict:
    assert text.startswith("---\n"), "SKILL.md must open with YAML front matter"
    head, _, _ = text[4:].partition("\n---\n")
    return YAML(typ="safe").load(head)


def command_lines(text: str) -> list[str]:
    """Every looprunner command the skill tells the agent to run (code blocks and inline)."""
    fenced = [
        line.strip()
        for block in _FENCE.findall(text)
        for line in block.splitlines()
        if line.strip().startswith("looprunner ")
    ]
    return list(dict.fromkeys(fenced + _INLINE.findall(_FENCE.sub("", text))))


def test_the_skill_installs_updates_in_place_and_uninstalls_leaving_nothing(cli, project):
    installed = cli("--json", "skill", "install")
    assert installed.returncode == 0, installed.stderr
    answer = json.loads(installed.stdout)
    assert answer["action"] == "installed"
    assert answer["path"] == str(project / SKILL.parent)
    text = (project / SKILL).read_text(encoding="utf-8")
    assert text == skill_text()

    meta = front_matter(text)
    assert meta["name"] == "sessions" == SKILL.parent.name
    assert "/sessions" in meta["description"]
    assert len(meta["description"]) <= 1024
    assert "NAME" in meta["argument-hint"]

    before = tree(project)
    again = cli("--json", "skill", "install")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["action"] == "unchanged"
    assert tree(project) == before

    removed = cli("--json", "skill", "uninstall")
    assert removed.returncode == 0, removed.stderr
    assert json.loads(removed.stdout)["removed"] == ["SKILL.md"]
    assert list(project.iterdir()) == []  # the folders it created are gone too


def test_every_command_the_skill_runs_exists(project):
    from click.testing import CliRunner

    from looprunner.cli.app import cli

    commands = command_lines(skill_text())
    assert len(commands) > 15
    verbs = set()
    for line in commands:
        argv = shlex.split(line)[1:]
        verbs.add(next(a for a in argv if not a.startswith("-")))
        if "attach" not in argv:  # the one command the user runs in their own terminal
            assert argv[0] == "--json", f"the skill runs {line!r} without --json"
        # click parses the whole line (an unknown command or option fails) before --help
        result = CliRunner().invoke(cli, ["--project", str(project), *argv, "--help"])
        assert result.exit_code == 0, f"{line}: {result.output}"
        assert "Usage:" in result.output
    assert {"list", "status", "start", "monitor", "attach", "kill", "cleanup", "stages"} <= verbs


def test_the_skill_goes_into_the_users_home_with_user(cli, project, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home)}
    assert cli("skill", "install", "--user", env=env).returncode == 0
    assert (home / SKILL).read_text(encoding="utf-8") == skill_text()
    assert list(project.iterdir()) == []
    assert cli("skill", "uninstall", "--user", env=env).returncode == 0
    assert list(home.iterdir()) == []


def test_print_shows_the_skill_and_writes_nothing(cli, project):
    shown = cli("skill", "install", "--print")
    assert shown.returncode == 0
    assert shown.stdout == skill_text()
    assert list(project.iterdir()) == []


def test_an_edited_skill_is_never_overwritten_or_removed_silently(cli, project):
    assert cli("skill", "install").returncode == 0
    skill = project / SKILL
    skill.write_text(skill.read_text(encoding="utf-8") + "\nAlways answer in French.\n")
    edited = skill.read_bytes()

    refused = cli("skill", "install")
    assert refused.returncode == 3
    assert f"{skill} was edited since looprunner installed it" in refused.stderr
    assert skill.read_bytes() == edited

    kept = cli("skill", "uninstall")
    assert kept.returncode == 0
    assert "edited since looprunner installed it" in kept.stderr
    assert skill.read_bytes() == edited

    replaced = cli("skill", "install", "--force")
    assert replaced.returncode == 0
    assert skill.read_text(encoding="utf-8") == skill_text()


def test_a_skill_looprunner_did_not_write_is_left_alone(cli, project):
    skill = project / SKILL
    skill.parent.mkdir(parents=True)
    skill.write_text("---\nname: sessions\ndescription: mine\n---\nMine.\n")
    before = tree(project)

    refused = cli("--json", "skill", "install")
    assert refused.returncode == 3
    assert "was not installed by looprunner" in json.loads(refused.stdout)["error"]["message"]
    left = cli("--json", "skill", "uninstall")
    assert left.returncode == 0
    assert json.loads(left.stdout)["left"][0]["file"] == "SKILL.md"
    assert tree(project) == before
