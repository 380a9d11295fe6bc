"""Developer sessions: tests, lint, types, imports, docs. Run ``nox -l`` to list them."""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests", "lint", "types", "imports"]

PYPROJECT = nox.project.load_toml("pyproject.toml")


def group(name: str) -> list[str]:
    return nox.project.dependency_groups(PYPROJECT, name)


@nox.session
def tests(session: nox.Session) -> None:
    """Run the whole test suite (tmux tests use private sockets, Ray tests one local head)."""
    session.install("-e", ".", "-e", "plugins/looprunner-ray", *group("test"))
    session.run("pytest", "-n", "auto", "-m", "slow or not slow", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff lint and format check."""
    session.install(*group("lint"))
    session.run("ruff", "check", "looprunner", "tests", "benchmarks", "examples", "noxfile.py")
    session.run("ruff", "format", "--check", "looprunner", "tests")


@nox.session
def types(session: nox.Session) -> None:
    """mypy --strict on the library."""
    session.install("-e", ".", *group("types"))
    session.run("mypy")


@nox.session
def imports(session: nox.Session) -> None:
    """The import-linter contracts: models stay pure, one importer per heavy dependency."""
    session.install("-e", ".", *group("imports"))
    session.run("lint-imports")


@nox.session
def docs(session: nox.Session) -> None:
    """Check the docs against the code: every CLI command and option is documented."""
    session.install("-e", ".", *group("test"))
    session.run("pytest", "tests/test_docs.py", *session.posargs)


@nox.session
def examples(session: nox.Session) -> None:
    """Run the example script and execute the example notebook top to bottom."""
    session.install("-e", ".", "nbclient>=0.10", "ipykernel>=6", "nbformat>=5")
    session.run("python", "examples/run_pipeline.py", "--inline")
    session.run(
        "python",
        "-c",
        "import nbformat, nbclient; "
        "nb = nbformat.read('examples/notebook.ipynb', as_version=4); "
        "nbclient.NotebookClient(nb, timeout=120, kernel_name='python3').execute(); "
        "print('notebook ran:', len(nb.cells), 'cells')",
    )


@nox.session
def bench(session: nox.Session) -> None:
    """The benchmark suite (pass --quick for the short version CI runs)."""
    session.install("-e", ".")
    session.run("python", "benchmarks/run.py", *session.posargs)


@nox.session
def ray(session: nox.Session) -> None:
    """The Ray backend's tests against a real local Ray head (installs ray[default])."""
    session.install("-e", ".", "-e", "plugins/looprunner-ray", *group("test"))
    # the Ray sessions are marked slow, which a plain pytest leaves out
    session.run(
        "pytest", "plugins/looprunner-ray/tests", "-m", "slow or not slow", *session.posargs
    )
