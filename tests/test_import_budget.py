"""Commands that only look at sessions load only what looking needs.

``status``, ``list``, ``tail``, ``wait`` and shell completion read JSON files and ask tmux
once; each module they import is time every invocation pays. The budget is stated as
module *names* (``python -X importtime`` lists every import), not as milliseconds: what
they may not load is the converter (cattrs), the YAML reader, the plugin machinery
(pluggy, entry points), the engine, the definitions and the other backends' libraries.
Timings are measured in ``benchmarks/`` (docs/performance.md).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

#: what a command that only looks must never import (a prefix matches its submodules)
NOT_FOR_LOOKING = (
    "cattrs",
    "ruamel",
    "pluggy",
    "libtmux",
    "portalocker",
    "rich",
    "textual",
    "importlib.metadata",
    "looprunner.convert",
    "looprunner.engine",
    "looprunner.definitions",
    "looprunner.plugins.manager",
    "looprunner.builtin.providers",
    "looprunner.builtin.stage_types",
)

LOOKING = {
    "status": ("status", "done"),
    "status --json": ("--json", "status", "done"),
    "list": ("list",),
    "list --json": ("--json", "list"),
    "tail": ("tail", "done"),
    "tail --json": ("--json", "tail", "-n", "3", "done"),
    "wait": ("wait", "done", "--timeout", "5"),
}


def imported(args: tuple[str, ...], project: Path, env: dict[str, str] | None = None) -> set[str]:
    """Run ``looprunner ARGS`` and return every module it imported."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "looprunner", "--project", str(project), *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
        timeout=120,
    )
    assert done.returncode == 0, (args, done.stdout, done.stderr[-2000:])
    return {
        match.group(1)
        for match in re.finditer(r"^import time:\s+\d+ \|\s+\d+ \|\s+(\S+)$", done.stderr, re.M)
    }


def over_budget(modules: set[str]) -> list[str]:
    return sorted(
        module
        for module in modules
        if any(module == name or module.startswith(name + ".") for name in NOT_FOR_LOOKING)
    )


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with one finished session, run in the foreground."""
    project = tmp_path_factory.mktemp("budget")
    stage = project / ".looprunner" / "stages" / "work"
    stage.mkdir(parents=True)
    (stage / "stage.yaml").write_text(
        "name: work\nprovider: mock\ntermination:\n  type: fixed\n  iterations: 2\n"
    )
    (stage / "prompt.md").write_text("Do the work.\n")
    start = ("start", "done", "--stage", "work", "--foreground")
    started = subprocess.run(
        [sys.executable, "-m", "looprunner", "--project", str(project), *start],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert started.returncode == 0, started.stderr
    return project


@pytest.mark.parametrize("command", sorted(LOOKING))
def test_a_command_that_looks_loads_no_machinery(finished, command):
    assert over_budget(imported(LOOKING[command], finished)) == []


def test_completing_a_session_name_loads_no_machinery(finished):
    words = {"COMP_WORDS": "looprunner status d", "COMP_CWORD": "2"}
    env = {"_LOOPRUNNER_COMPLETE": "bash_complete", **words}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "looprunner", "status", "d"],
        capture_output=True,
        text=True,
        check=False,
        cwd=finished,
        env={**os.environ, **env},
        timeout=120,
    )
    assert "done" in done.stdout, (done.stdout, done.stderr[-2000:])
    modules = set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s+(\S+)$", done.stderr, re.M))
    assert over_budget(modules) == []


def test_the_budget_can_fail(finished):
    """``start`` does load the machinery: the check above sees imports at all."""
    modules = imported(("dry-run", "--stage", "work"), finished)
    assert "cattrs" in over_budget(modules)


def test_import_looprunner_loads_only_itself():
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import looprunner"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    ours = set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s+(\S+)$", done.stderr, re.M))
    third_party = {"attr", "attrs", "cattrs", "click", "pluggy", "ruamel", "libtmux"}
    assert not ours & third_party
    assert {m for m in ours if m.startswith("looprunner")} == {"looprunner"}
