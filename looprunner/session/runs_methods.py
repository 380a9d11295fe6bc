"""What :class:`~looprunner.session.Session` offers for earlier runs: list and remove them.

Mixed into ``Session`` (the façade stays small); the work is in
:mod:`looprunner.session.runs` and :mod:`looprunner.session.removal`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from looprunner.names import ProjectPaths
from looprunner.session.ref import Plugins

if TYPE_CHECKING:
    import pluggy

    from looprunner.models import RemovalReport, RunInfo


class RunsMethods:
    """Earlier runs kept aside by ``start --force``, and removing finished runs."""

    @classmethod
    def runs(cls, project: str | Path = ".", session: str | None = None) -> list[RunInfo]:
        """Return the earlier runs ``start --force`` kept aside (all, or ``session``'s)."""
        from looprunner.session import runs

        return runs.kept_runs(ProjectPaths.of(project), Plugins(), session)

    @classmethod
    def remove(
        cls,
        names: Sequence[str],
        project: str | Path = ".",
        *,
        confirm: Callable[[tuple[RunInfo, ...]], bool] | None = None,
        plugin_manager: pluggy.PluginManager | None = None,
    ) -> RemovalReport:
        """Remove finished sessions and earlier runs by name: all of them, or none.

        ``confirm`` is asked once, with every run about to go; False removes nothing. A
        live or unfinished session raises :class:`SessionConflictError`, an unknown name
        :class:`SessionNotFoundError`, and nothing is removed.
        """
        from looprunner.session import removal

        return removal.remove(project, names, plugins=Plugins(plugin_manager), confirm=confirm)
