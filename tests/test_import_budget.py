"""Commands that only look at sessions load only what looking needs.

``status``, ``list``, ``tail``, ``wait`` and shell completion read JSON files and ask tmux
once; each module they import is time every invocation pays. The budget is stated as
module *names* (what ``sys.modules`` holds when the command exits: ``python -X importtime``
misses a module loaded through ``importlib.import_module``), not as milliseconds: what
they may not load is the converter (cattrs), the YAML reader, the plugin machinery
(pluggy, entry points), the engine, the definitions and the other backends' libraries.
Timings are measured in ``benchmarks/`` (docs/performance.md).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

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

#: what the thin entry (``looprunner.cli.quick``) never imports either: the command-line
#: framework, the models of specifications and agents, and what only starting needs
NOT_FOR_THE_THIN_ENTRY = (
    *NOT_FOR_LOOKING,
    "click",
    "looprunner.cli.app",
    "looprunner.cli.context",
    "looprunner.models.agent",
    "looprunner.models.iteration",
    "looprunner.models.pipeline",
    "looprunner.models.results",
    "looprunner.programs",
    "looprunner.gitrepo",
    "looprunner.session.launch",
    "looprunner.session.control",
    "looprunner.session.maintenance",
    "html",
    "secrets",
    "socket",
    "shutil",  # and the compression modules it loads: finding tmux needs none of them
)

#: what ``status`` and ``list`` of an ordinary session load even less of: the quick look
#: (``looprunner.glance``) reads the files as plain data and asks tmux without subprocess;
#: it reads JSON through the standard library's C scanner, without :mod:`json` and the
#: regular expression compiler that package loads, and names healths with their words,
#: without the enums (and :mod:`functools` and :mod:`collections` with them)
NOT_FOR_A_QUICK_LOOK = (
    *NOT_FOR_THE_THIN_ENTRY,
    "json",
    "re",
    "enum",
    "functools",
    "collections",
    "looprunner.models",
    "attr",
    "attrs",
    "typing",
    "pathlib",
    "subprocess",
    "looprunner.session",
    "looprunner.store",
    "looprunner.names",
    "looprunner.models.state",
    "looprunner.models.status",
    "looprunner.backends.tmux",
)
QUICK = ("status", "status --json", "list", "list --json")

LOOKING = {
    "status": ("status", "done"),
    "status --json": ("--json", "status", "done"),
    "list": ("list",),
    "list --json": ("--json", "list"),
    "tail": ("tail", "done"),
    "tail --json": ("--json", "tail", "-n", "3", "done"),
    "wait": ("wait", "done", "--timeout", "5"),
}


#: a program's first lines: as it exits, it writes every module it imported
LISTED = (
    "import atexit, os, sys\n"
    "def seen():\n"
    "    with open(os.environ['LOOPRUNNER_TEST_MODULES'], 'w') as out:\n"
    "        out.write('\\n'.join(sys.modules))\n"
    "atexit.register(seen)\n"
)
#: ``looprunner ARGS`` as the installed command runs it (``python -m`` adds ``runpy``'s
#: own imports), listing its modules
LOADED = LISTED + "from looprunner.cli import main\nsys.argv[0] = 'looprunner'\nsys.exit(main())\n"


def loaded(
    argv: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``python -c ARGV`` (a program, then its arguments); return it and its modules."""
    handle, listing = tempfile.mkstemp(prefix="modules-")
    os.close(handle)
    try:
        done = subprocess.run(
            [sys.executable, "-c", *argv],
            capture_output=True,
            text=True,
            check=False,
            cwd=cwd,
            env={**os.environ, **(env or {}), "LOOPRUNNER_TEST_MODULES": listing},
            timeout=120,
        )
        return done, set(Path(listing).read_text().split())
    finally:
        Path(listing).unlink()


def imported(args: tuple[str, ...], project: Path, env: dict[str, str] | None = None) -> set[str]:
    """Run ``looprunner ARGS`` and return every module it imported."""
    done, modules = loaded([LOADED, "--project", str(project), *args], env=env)
    assert done.returncode == 0, (args, done.stdout, done.stderr[-2000:])
    return modules


def over_budget(modules: set[str], budget: tuple[str, ...] = NOT_FOR_LOOKING) -> list[str]:
    return sorted(
        module
        for module in modules
        if any(module == name or module.startswith(name + ".") for name in budget)
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


@pytest.mark.parametrize("command", sorted(LOOKING))
def test_a_command_that_looks_loads_no_command_line_framework(finished, command):
    modules = imported(LOOKING[command], finished)
    assert over_budget(modules, NOT_FOR_THE_THIN_ENTRY) == []


@pytest.mark.parametrize("command", QUICK)
def test_a_quick_look_builds_no_model_and_starts_no_subprocess_module(finished, command):
    modules = imported(LOOKING[command], finished)
    assert "looprunner.glance.look" in modules  # it was the quick look that answered
    assert over_budget(modules, NOT_FOR_A_QUICK_LOOK) == []


@pytest.mark.parametrize("command", QUICK)
def test_without_the_quick_look_the_models_answer(finished, command):
    modules = imported(LOOKING[command], finished, env={"LOOPRUNNER_QUICK_LOOK": "0"})
    assert "looprunner.glance.look" not in modules
    assert "looprunner.models.state" in modules


def test_the_version_loads_nothing_but_itself():
    done, modules = loaded([LOADED, "--version"])
    assert done.stdout.startswith("looprunner, version "), done.stderr
    assert {m for m in modules if m.startswith("looprunner")} == {
        "looprunner",
        "looprunner._version",
        "looprunner.cli",
        "looprunner.cli.quick",
    }
    assert "typing" not in modules


class LeftToClick(NamedTuple):
    """A command line the thin entry does not read: click answers it, as before."""

    test_id: str
    args: tuple[str, ...]
    code: int
    says: str


LEFT_TO_CLICK = [
    LeftToClick("help", ("status", "--help"), 0, "Show the health, resources and progress"),
    LeftToClick("bad-choice", ("list", "--sort", "size"), 2, "Invalid value for '--sort'"),
    LeftToClick("joined-short-option", ("tail", "-n1", "done"), 0, "session_complete"),
    LeftToClick("missing-argument", ("status",), 2, "Missing argument 'NAME'"),
    LeftToClick("no-such-project", ("--project", "nowhere", "status", "done"), 2, "no such folder"),
]


@pytest.mark.parametrize("case", LEFT_TO_CLICK, ids=[c.test_id for c in LEFT_TO_CLICK])
def test_what_the_thin_entry_does_not_read_click_answers(finished, case):
    done = subprocess.run(
        [sys.executable, "-m", "looprunner", *case.args],
        capture_output=True,
        text=True,
        check=False,
        cwd=finished,
        timeout=120,
    )
    assert (done.returncode, case.says in done.stdout + done.stderr) == (case.code, True), (
        done.stdout,
        done.stderr,
    )


def test_completing_a_session_name_loads_no_machinery(finished):
    words = {"COMP_WORDS": "looprunner status d", "COMP_CWORD": "2"}
    env = {"_LOOPRUNNER_COMPLETE": "bash_complete", **words}
    done, modules = loaded([LOADED, "status", "d"], cwd=finished, env=env)
    assert "done" in done.stdout, (done.stdout, done.stderr[-2000:])
    assert over_budget(modules) == []


def test_the_budget_can_fail(finished):
    """``start`` does load the machinery: the check above sees imports at all."""
    modules = imported(("dry-run", "--stage", "work"), finished)
    assert "cattrs" in over_budget(modules)


def test_import_looprunner_loads_only_itself():
    done, modules = loaded([LISTED + "import looprunner\n"])
    assert done.returncode == 0, done.stderr
    third_party = {"attr", "attrs", "cattrs", "click", "pluggy", "ruamel", "libtmux"}
    assert not modules & third_party
    assert "typing" not in modules  # it alone costs more than the rest of the import
    assert {m for m in modules if m.startswith("looprunner")} == {"looprunner"}
