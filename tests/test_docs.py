"""The documentation tells the truth: commands, options, stage keys, links and examples."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import NamedTuple

import attrs
import click
import pytest
from ruamel.yaml import YAML

import looprunner
from looprunner.cli.app import cli
from looprunner.convert import STAGE_KEYS, load_stage_file
from looprunner.models import Termination

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
DOC_PAGES = sorted(DOCS.glob("*.md"))

_FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.MULTILINE)
_YAML_BLOCK = re.compile(r"^```yaml\n(.*?)^```", re.MULTILINE | re.DOTALL)


def read(page: str) -> str:
    return (DOCS / page).read_text(encoding="utf-8")


def without_code_blocks(text: str) -> str:
    return _FENCE.sub("", text)


def sections(text: str) -> dict[str, str]:
    """Map each ``##`` heading to its text, up to the next ``##`` heading."""
    parts = re.split(r"^## +(.+)$", text, flags=re.MULTILINE)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def mentions(text: str, word: str) -> bool:
    """Tell whether ``word`` (an option such as ``--force``) appears as a whole word."""
    return re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text) is not None


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    seen: Counter[str] = Counter()
    found = set()
    for _, heading in _HEADING.findall(without_code_blocks(text)):
        base = slug(heading)
        found.add(base if seen[base] == 0 else f"{base}-{seen[base]}")
        seen[base] += 1
    return found


def option_names(param: click.Parameter) -> list[str]:
    """An option's long names, or its short names when it has no long one."""
    names = [*param.opts, *param.secondary_opts]
    long = [n for n in names if n.startswith("--")]
    return long or names


class OptionCase(NamedTuple):
    test_id: str
    command: str
    option: str


VISIBLE_COMMANDS = sorted(name for name, cmd in cli.commands.items() if not cmd.hidden)
OPTION_CASES = [
    OptionCase(f"{name} {option}", name, option)
    for name in VISIBLE_COMMANDS
    for param in cli.commands[name].params
    if isinstance(param, click.Option) and not param.hidden
    for option in option_names(param)
]
GLOBAL_OPTIONS = [
    option
    for param in cli.params
    if isinstance(param, click.Option) and not param.hidden
    for option in option_names(param)
]


def command_section(name: str) -> str:
    heading = f"`looprunner {name}`"
    found = sections(read("cli.md")).get(heading)
    assert found is not None, f"docs/cli.md has no section headed '## {heading}'"
    return found


def test_the_cli_has_visible_commands():
    assert {"start", "list", "status", "wait", "kill", "demo"} <= set(VISIBLE_COMMANDS)
    assert "engine" not in VISIBLE_COMMANDS


@pytest.mark.parametrize("name", VISIBLE_COMMANDS)
def test_every_command_has_a_section_in_cli_md(name):
    assert command_section(name).strip()


@pytest.mark.parametrize("case", OPTION_CASES, ids=[c.test_id for c in OPTION_CASES])
def test_every_option_is_documented_in_its_command_section(case):
    assert mentions(command_section(case.command), case.option), (
        f"docs/cli.md: section `looprunner {case.command}` does not mention {case.option}"
    )


@pytest.mark.parametrize("option", GLOBAL_OPTIONS)
def test_every_global_option_is_documented(option):
    assert mentions(sections(read("cli.md"))["Global options"], option)


@pytest.mark.parametrize("key", sorted(STAGE_KEYS))
def test_every_stage_key_is_documented(key):
    assert re.search(rf"^\| `{key}` \|", read("stages.md"), re.MULTILINE), (
        f"docs/stages.md has no table row for stage key {key!r}"
    )


@pytest.mark.parametrize("field", [f.name for f in attrs.fields(Termination)])
def test_every_termination_key_is_documented(field):
    assert re.search(rf"^\| `{field}` \|", read("stages.md"), re.MULTILINE)


@pytest.mark.parametrize("name", sorted(looprunner.__all__))
def test_every_public_name_is_in_the_python_api_page(name):
    assert mentions(read("python-api.md"), name)


def test_docs_pages_exist():
    expected = {
        "index.md",
        "quickstart.md",
        "concepts.md",
        "stages.md",
        "agent-contract.md",
        "providers.md",
        "terminations.md",
        "pipelines.md",
        "cli.md",
        "lint.md",
        "python-api.md",
    }
    assert expected <= {p.name for p in DOC_PAGES}


class LinkCase(NamedTuple):
    test_id: str
    page: Path
    target: str


LINK_CASES = [
    LinkCase(f"{page.name} -> {target}", page, target)
    for page in DOC_PAGES
    for target in _LINK.findall(without_code_blocks(page.read_text(encoding="utf-8")))
    if not re.match(r"[a-z][a-z0-9+.-]*:", target)  # http:, https:, mailto: ...
]


def test_docs_have_links():
    assert len(LINK_CASES) > 20


@pytest.mark.parametrize("case", LINK_CASES, ids=[c.test_id for c in LINK_CASES])
def test_relative_links_resolve(case):
    path_part, _, anchor = case.target.partition("#")
    target = (case.page.parent / path_part).resolve() if path_part else case.page
    assert target.exists(), f"{case.page.name}: link to missing {path_part}"
    if anchor and target.suffix == ".md":
        known = anchors(target.read_text(encoding="utf-8"))
        assert anchor in known, f"{case.page.name}: no heading #{anchor} in {target.name}"


class YamlCase(NamedTuple):
    test_id: str
    page: Path
    index: int
    text: str


YAML_CASES = [
    YamlCase(f"{page.name}[{i}]", page, i, block)
    for page in DOC_PAGES
    for i, block in enumerate(_YAML_BLOCK.findall(page.read_text(encoding="utf-8")))
]


def write_stage(folder: Path, text: str = "provider: mock\n") -> Path:
    folder.mkdir(parents=True)
    (folder / "stage.yaml").write_text(text, encoding="utf-8")
    (folder / "prompt.md").write_text("Write ${STATUS}.\n", encoding="utf-8")
    (folder / "fixtures").mkdir()
    return folder / "stage.yaml"


@pytest.mark.parametrize("case", YAML_CASES, ids=[c.test_id for c in YAML_CASES])
def test_yaml_examples_are_valid_definitions(case, tmp_path):
    data = YAML(typ="safe").load(case.text)
    if isinstance(data, dict) and ("nodes" in data or "stages" in data):
        # a pipeline file: give it the stages it names, then resolve it
        for node in data.get("nodes") or data.get("stages"):
            name = node.get("stage") or node.get("loop")
            if name and not (tmp_path / ".looprunner" / "stages" / name).exists():
                write_stage(tmp_path / ".looprunner" / "stages" / name)
        path = tmp_path / "example.yaml"
        path.write_text(case.text, encoding="utf-8")
        pipeline = looprunner.Pipeline.load(path, project=tmp_path)
        assert pipeline.nodes
    else:
        load_stage_file(write_stage(tmp_path / "example", case.text), default_name="example")


def test_example_hello_stage_loads():
    stage = looprunner.Stage.load(REPO / "examples" / "stages" / "hello", project=REPO)
    assert stage.provider_name == "command"
    assert stage.command == ("python3", "agents/hello_agent.py")


@pytest.mark.parametrize("args", [(), ("--inline",)], ids=["default-backend", "inline"])
def test_run_loop_example_runs_to_completion(args, tmp_path):
    env = {
        **os.environ,  # carries the private LOOPRUNNER_TMUX_SOCKET conftest set
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p),
    }
    assert env["LOOPRUNNER_TMUX_SOCKET"].startswith("lrtest-")
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / "run_loop.py"), *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "session hello: complete" in result.stdout
    assert "session_complete" in result.stdout
    assert "'reason': 'agent_stop'" in result.stdout
    assert "- iteration 3: hello #3 from session hello" in result.stdout
