"""The documentation tells the truth: commands, options, keys, hooks, links and examples."""

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
from looprunner.models import Health, Termination
from looprunner.plugins.manager import make_plugin_manager

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
DOC_PAGES = sorted(DOCS.glob("*.md"))
ALL_DOC_PAGES = sorted(DOCS.rglob("*.md"))  # the plugin author pages under docs/plugins/ too

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
        "operations.md",
        "recovery.md",
        "migration.md",
    }
    assert expected <= {p.name for p in DOC_PAGES}
    plugin_pages = {"index.md", "hooks.md", "reference.md"}
    assert plugin_pages <= {p.name for p in (DOCS / "plugins").glob("*.md")}


class LinkCase(NamedTuple):
    test_id: str
    page: Path
    target: str


LINK_CASES = [
    LinkCase(f"{page.relative_to(DOCS)} -> {target}", page, target)
    for page in ALL_DOC_PAGES
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
    is_pipeline = isinstance(data, dict) and ("nodes" in data or "stages" in data)
    if isinstance(data, dict) and "backends" in data and not is_pipeline:  # config.yaml
        from looprunner.convert.project_config import CONFIG_FILE, read_project_config

        (tmp_path / CONFIG_FILE).parent.mkdir(parents=True)
        (tmp_path / CONFIG_FILE).write_text(case.text, encoding="utf-8")
        assert read_project_config(tmp_path).backends
        return
    if is_pipeline:  # a pipeline file: give it the stages it names, then resolve it
        nodes = list(data.get("nodes") or data.get("stages"))
        for node in nodes:  # a parallel block's stages need their folders too
            nodes += node.get("parallel", {}).get("stages", [])
        for node in nodes:
            name = node.get("stage") or node.get("loop")
            if name and not (tmp_path / ".looprunner" / "stages" / name).exists():
                write_stage(tmp_path / ".looprunner" / "stages" / name)
        path = tmp_path / "example.yaml"
        path.write_text(case.text, encoding="utf-8")
        pipeline = looprunner.Pipeline.load(path, project=tmp_path)
        assert pipeline.nodes
        assert dict(pipeline.backends) == data.get("backends", {})
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


# --------------------------------------------------------------------------- plugin hooks

HOOKS_PAGE = DOCS / "plugins" / "hooks.md"
_SIGNATURE_HEADING = re.compile(r"^## `(\w+)\(([^)`]*)\)`[ \t]*$", re.MULTILINE)
_ARGUMENT_ROW = re.compile(r"^\| `(\w+)` \|", re.MULTILINE)
_PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def hook_sections() -> dict[str, tuple[tuple[str, ...], str]]:
    """Map each hook documented in hooks.md to (its heading's arguments, its section text)."""
    text = without_code_blocks(HOOKS_PAGE.read_text(encoding="utf-8"))
    found: dict[str, tuple[tuple[str, ...], str]] = {}
    matches = list(_SIGNATURE_HEADING.finditer(text))
    for match, following in zip(matches, [*matches[1:], None], strict=True):
        end = following.start() if following else len(text)
        body = text[match.end() : end].split("\n## ", 1)[0]
        args = tuple(a.strip() for a in match.group(2).split(",") if a.strip())
        assert match.group(1) not in found, f"hooks.md: two sections for {match.group(1)}"
        found[match.group(1)] = (args, body)
    return found


def argument_table(section: str) -> list[str]:
    """The argument names in a hook section's ``| argument | meaning |`` table."""
    table = section.split("| argument | meaning |", 1)
    assert len(table) == 2, "the section has no '| argument | meaning |' table"
    rows = []
    for line in table[1].strip().splitlines():
        if not line.startswith("|"):
            break
        rows.append(line)
    return _ARGUMENT_ROW.findall("\n".join(rows))


class HookCase(NamedTuple):
    test_id: str
    name: str
    argnames: tuple[str, ...]


_HOOKS = make_plugin_manager(autoload=False).hook
HOOK_CASES = [
    HookCase(name, name, tuple(getattr(_HOOKS, name).spec.argnames))
    for name in sorted(vars(_HOOKS))
    if getattr(_HOOKS, name).spec is not None
]


def test_there_are_hooks_to_document():
    names = {case.name for case in HOOK_CASES}
    assert {"register_providers", "on_iteration", "on_cleanup"} <= names


@pytest.mark.parametrize("case", HOOK_CASES, ids=[c.test_id for c in HOOK_CASES])
def test_every_hook_has_a_section_headed_by_its_exact_signature(case):
    signature = f"{case.name}({', '.join(case.argnames)})"
    sections = hook_sections()
    assert case.name in sections, f"docs/plugins/hooks.md has no section '## `{signature}`'"
    args, body = sections[case.name]
    assert args == case.argnames, (
        f"docs/plugins/hooks.md: the section of {case.name} is headed with ({', '.join(args)}); "
        f"the hook is `{signature}`"
    )
    assert argument_table(body) == list(case.argnames), (
        f"docs/plugins/hooks.md: the argument table of {case.name} must list "
        f"{', '.join(case.argnames)}, in order"
    )


def test_hooks_md_documents_no_hook_that_does_not_exist():
    assert set(hook_sections()) <= {case.name for case in HOOK_CASES}


class ExampleCase(NamedTuple):
    test_id: str
    code: str


_HOOK_BLOCKS = _PYTHON_BLOCK.findall(HOOKS_PAGE.read_text(encoding="utf-8"))
EXAMPLE_CASES = [
    ExampleCase(f"hooks.md example {i}", block) for i, block in enumerate(_HOOK_BLOCKS[1:], 1)
]


@pytest.mark.parametrize("case", HOOK_CASES, ids=[c.test_id for c in HOOK_CASES])
def test_every_hook_section_has_an_example(case):
    raw = HOOKS_PAGE.read_text(encoding="utf-8")
    assert f"\n## `{case.name}(" in raw
    section = raw.split(f"\n## `{case.name}(", 1)[1].split("\n## ", 1)[0]
    assert "```python" in section, f"docs/plugins/hooks.md: {case.name} has no example"


@pytest.mark.parametrize("case", EXAMPLE_CASES, ids=[c.test_id for c in EXAMPLE_CASES])
def test_hook_examples_run(case, tmp_path):
    """Each example runs as written after the page's harness (its first Python block)."""
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", f"{_HOOK_BLOCKS[0]}\n{case.code}"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "plugin example failed in" not in result.stdout, result.stdout


# --------------------------------------------------------------------------- operations


@pytest.mark.parametrize("health", [h.value for h in Health])
def test_every_health_has_a_section_in_operations_md(health):
    text = without_code_blocks(read("operations.md"))
    headings = {heading.strip("`") for _, heading in _HEADING.findall(text)}
    assert health in headings, f"docs/operations.md has no section headed `{health}`"


def environment_variables() -> list[str]:
    """Every ``LOOPRUNNER_*`` variable named in the library's source."""
    pattern = re.compile(r"(?<![\w$])LOOPRUNNER_[A-Z][A-Z0-9_]*")
    names: set[str] = set()
    for path in (REPO / "looprunner").rglob("*.py"):
        names.update(pattern.findall(path.read_text(encoding="utf-8")))
    return sorted(names)


def test_the_source_reads_environment_variables():
    assert {"LOOPRUNNER_TMUX_SOCKET", "LOOPRUNNER_STATE_DIR"} <= set(environment_variables())


@pytest.mark.parametrize("variable", environment_variables())
def test_every_environment_variable_is_in_operations_md(variable):
    assert mentions(read("operations.md"), variable), (
        f"docs/operations.md does not mention {variable}"
    )


# --------------------------------------------------------------------------- plugin author pages
# docs/plugins/stage-types.md and backends.md each build one complete plugin. Its files are
# the page's code blocks whose first line is "# file: PATH"; the tests install those files
# with pip, exactly as a reader would, and run a session through the plugin.

PLUGIN_PAGES = ("stage-types.md", "backends.md")
_EXAMPLE_FILE = re.compile(r"^```\w*\n# file: (\S+)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def example_files(page: str) -> dict[str, str]:
    """The files of the plugin a docs/plugins page builds, by their path in the package."""
    files: dict[str, str] = {}
    for path, body in _EXAMPLE_FILE.findall((DOCS / "plugins" / page).read_text(encoding="utf-8")):
        assert path not in files, f"docs/plugins/{page}: two blocks are '# file: {path}'"
        files[path] = f"# file: {path}\n{body}"
    return files


def install_example(page: str, folder: Path) -> Path:
    """Write the page's plugin into ``folder``, pip-install it, return the install folder."""
    from looprunner.testing import install_plugin

    files = example_files(page)
    for path, text in files.items():
        target = folder / "source" / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return install_plugin(folder / "source", folder / "site")


@pytest.mark.parametrize("page", PLUGIN_PAGES)
def test_plugin_pages_build_one_plugin_and_are_linked_from_the_index(page):
    files = example_files(page)
    assert "pyproject.toml" in files, f"docs/plugins/{page}: no '# file: pyproject.toml' block"
    python = [path for path in files if path.endswith(".py")]
    assert len(python) == 1, f"docs/plugins/{page}: one runnable Python example, found {python}"
    assert f"]({page}" in read("plugins/index.md"), f"docs/plugins/index.md does not link {page}"


def test_the_stage_type_example_runs_a_session_to_completion(cli, project, tmp_path, monkeypatch):
    import json

    from looprunner.testing import plugin_path_env

    monkeypatch.setenv("PYTHONPATH", plugin_path_env(install_example("stage-types.md", tmp_path)))
    # a check that fails on its first attempt and passes on its second
    script = (
        "import pathlib, sys; p = pathlib.Path('attempts'); "
        "n = int(p.read_text()) + 1 if p.exists() else 1; p.write_text(str(n)); "
        "print(f'attempt {n}'); sys.exit(0 if n >= 2 else 1)"
    )
    stage = project / ".looprunner" / "stages" / "gate"
    stage.mkdir(parents=True)
    options = {"command": [sys.executable, "-c", script], "timeout": 60}
    (stage / "stage.yaml").write_text(f"type: check\noptions: {json.dumps(options)}\n")
    (stage / "prompt.md").write_text("No agent reads this.\n")

    result = cli("start", "gate", "--stage", "gate", "--foreground")
    assert result.returncode == 0, result.stdout + result.stderr
    state = json.loads(cli("--json", "status", "gate").stdout)
    assert (state["status"], state["iteration_completed"]) == ("complete", 2)
    iterations = project / ".claude" / "pipeline-runs" / "gate" / "stage-00-gate" / "iterations"
    assert (iterations / "001" / "output.md").read_text().strip() == "attempt 1"
    assert (iterations / "002" / "output.md").read_text().strip() == "attempt 2"

    (stage / "stage.yaml").write_text("type: check\noptions:\n  command: make test\n")
    linted = cli("lint")
    assert linted.returncode == 2
    assert "option 'command' must be a list of strings" in linted.stdout + linted.stderr


def test_the_backend_example_runs_a_session_to_completion(
    cli, project, make_stage, tmp_path, monkeypatch
):
    import json

    from looprunner.testing import plugin_path_env

    monkeypatch.setenv("PYTHONPATH", plugin_path_env(install_example("backends.md", tmp_path)))
    make_stage("work", termination={"type": "fixed", "iterations": 2})

    started = cli("start", "bg", "--stage", "work", "--backend", "background")
    assert started.returncode == 0, started.stdout + started.stderr
    record = json.loads((project / ".looprunner-background" / "bg.json").read_text())
    assert cli("wait", "bg", "--timeout", "60").returncode == 0
    state = json.loads(cli("--json", "status", "bg").stdout)
    assert (state["status"], state["backend"]) == ("complete", "background")
    assert state["iteration_completed"] == 2
    assert state["pid"] == record["pid"]  # the backend ran the engine's argv itself
