"""The house stays as docs/architecture.md draws it.

No import cycle at run time, every top-level module placed in the layers contract (which
`nox -s imports` checks), modules small enough to read, and no module outside
``backends/`` and ``builtin/`` singling out a built-in by name.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path
from typing import NamedTuple

import grimp
import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "looprunner"
MAX_LINES = 450
BUILTIN_NAMES = {"tmux", "inline", "agent", "mock"}
#: where a built-in may be named: its own home
OWN_HOMES = ("backends/", "builtin/")


def _graph() -> grimp.ImportGraph:
    return grimp.build_graph("looprunner", exclude_type_checking_imports=True, cache_dir=None)


def _strongly_connected(graph: grimp.ImportGraph) -> list[list[str]]:
    """Tarjan's algorithm over the package's modules: every group that imports itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    counter = 0

    def visit(module: str) -> None:
        nonlocal counter
        index[module] = low[module] = counter
        counter += 1
        stack.append(module)
        on_stack.add(module)
        for other in graph.find_modules_directly_imported_by(module):
            if other not in graph.modules:
                continue
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in on_stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return groups


def test_the_runtime_import_graph_has_no_cycle() -> None:
    assert _strongly_connected(_graph()) == []


def test_a_cycle_would_be_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "knot"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from knot import b\n")
    (package / "b.py").write_text("def f():\n    from knot import a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    graph = grimp.build_graph("knot", exclude_type_checking_imports=True, cache_dir=None)
    assert _strongly_connected(graph) == [["knot.a", "knot.b"]]


def test_the_import_contracts_hold(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The layers contract and the one-importer-per-dependency contracts (import-linter)."""
    from importlinter.cli import lint_imports

    monkeypatch.chdir(REPO)
    code = lint_imports(config_filename=str(REPO / "pyproject.toml"), no_cache=True, no_logo=True)
    out = capsys.readouterr().out
    assert code == 0, out[-3000:]
    assert "0 broken" in out


def _layers() -> list[str]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    [layered] = [c for c in contracts if c["type"] == "layers"]
    return [name.strip() for layer in layered["layers"] for name in layer.split("|")]


def test_every_top_level_module_has_a_layer() -> None:
    placed = _layers()
    missing = []
    for path in sorted(PACKAGE.iterdir()):
        if path.name.startswith(".") or path.name in ("__init__.py", "py.typed", "__pycache__"):
            continue
        if path.suffix != ".py" and not (path / "__init__.py").is_file():
            continue
        module = f"looprunner.{path.stem}"
        if not any(name == module or name.startswith(module + ".") for name in placed):
            missing.append(module)
    assert missing == [], "place these in the layers contract of pyproject.toml"


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_stay_small(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(REPO)} has {lines} lines: split it by job"


class Singled(NamedTuple):
    where: str
    line: int
    name: str


def _singled_out(source: str, where: str) -> list[Singled]:
    """Comparisons with, and registry look-ups of, a built-in's name."""
    found = []

    def names_in(node: ast.AST) -> list[str]:
        if isinstance(node, ast.Constant) and node.value in BUILTIN_NAMES:
            return [node.value]
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            return [n for element in node.elts for n in names_in(element)]
        return []

    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            found += [Singled(where, node.lineno, n) for o in operands for n in names_in(o)]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in {"get", "backend"}
        ):
            found += [Singled(where, node.lineno, n) for a in node.args for n in names_in(a)]
    return found


def test_no_module_outside_its_own_singles_out_a_built_in() -> None:
    found = []
    for path in _modules():
        relative = str(path.relative_to(PACKAGE))
        if relative.startswith(OWN_HOMES):
            continue
        found += _singled_out(path.read_text(encoding="utf-8"), relative)
    assert found == []


def test_the_built_in_check_catches_a_comparison_and_a_look_up() -> None:
    source = 'if backend.name == "tmux":\n    pass\nregistry.get("inline")\nx in ("mock", "y")\n'
    assert [s.name for s in _singled_out(source, "x.py")] == ["tmux", "inline", "mock"]
