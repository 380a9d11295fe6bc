"""Where :meth:`Stage.load` and :meth:`Pipeline.load` get their definitions from.

Models never parse files: they import only attrs, the standard library and
:mod:`looprunner.errors`. Yet ``Stage.load("work")`` is the natural way to get a stage.
Importing the file readers here would make models depend on ``looprunner.definitions``,
which depends on ``looprunner.convert``, which depends on models: an import cycle.

So the dependency is inverted. Models know only the :class:`DefinitionLoader` protocol;
``looprunner.definitions`` installs the real loader with :func:`install_loader` when it
is imported, and ``looprunner``'s own ``__getattr__`` imports it before handing out
``Stage`` or ``Pipeline``, so ``from looprunner import Stage; Stage.load("work")`` works
as it always did. Code that imports ``looprunner.models`` directly and calls ``load``
without importing ``looprunner.definitions`` gets a :class:`LooprunnerError` that says so.

The protocol is generic in what it returns, so this module imports no model at all (not
even for type checkers) and the only edge is ``models.pipeline -> models.loading``;
``Stage.load`` checks that it received a ``Stage``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, TypeVar

from looprunner.errors import LooprunnerError

StageT_co = TypeVar("StageT_co", covariant=True)
PipelineT_co = TypeVar("PipelineT_co", covariant=True)


class DefinitionLoader(Protocol[StageT_co, PipelineT_co]):
    """Reads stage and pipeline definitions by name or path.

    ``looprunner.definitions`` provides the one looprunner uses, a
    ``DefinitionLoader[Stage, Pipeline]``; a test may install its own.
    """

    def load_stage(self, name_or_path: str | Path, project: Path) -> StageT_co:
        """Return the stage called ``name_or_path`` in ``project``, or at that path."""
        ...

    def load_pipeline(self, name_or_path: str | Path, project: Path) -> PipelineT_co:
        """Return the resolved pipeline called ``name_or_path`` in ``project``, or at that path."""
        ...


_installed: DefinitionLoader[object, object] | None = None


def install_loader(
    new: DefinitionLoader[object, object] | None,
) -> DefinitionLoader[object, object] | None:
    """Make ``new`` the loader :meth:`Stage.load` and :meth:`Pipeline.load` use.

    Returns the loader it replaces (None if there was none), so a caller can put it back.
    """
    global _installed  # the one process-wide hook this module exists for
    previous, _installed = _installed, new
    return previous


def loader() -> DefinitionLoader[object, object]:
    """Return the installed loader; never imports one itself (see the module docstring)."""
    if _installed is None:
        raise LooprunnerError(
            "no definition loader is installed: import looprunner.definitions first "
            "(or use 'from looprunner import Stage, Pipeline', which does)"
        )
    return _installed
