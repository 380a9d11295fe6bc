"""What a :class:`~looprunner.session.Session` does with its git worktree.

Mixed into ``Session`` (the façade stays small); the work is in
:mod:`looprunner.session.worktrees`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from looprunner.errors import SessionConflictError
from looprunner.models import Health, WorktreeStatus
from looprunner.session import observe

if TYPE_CHECKING:
    from looprunner.models import Pipeline
    from looprunner.session.ref import SessionRef
    from looprunner.session.worktrees import WorktreePlan, WorktreeRemoval


class WorktreeMethods:
    """A session's git worktree: planned, looked at, removed."""

    _ref: SessionRef

    def plan_worktree(
        self, pipeline: Pipeline, worktree: bool | None = None
    ) -> WorktreePlan | None:
        """Return the worktree a start of ``pipeline`` would make or reuse (None: none).

        Changes nothing; raises what the start would raise (``WorktreeRefusedError``).
        """
        from looprunner.session import worktrees

        wanted = pipeline.wants_worktree if worktree is None else worktree
        return worktrees.plan(self._ref.project, self._ref.name) if wanted else None

    def worktree(self) -> WorktreeStatus | None:
        """Return the session's worktree as it is now (commits ahead, changes), or None."""
        state = self._ref.read_state()
        recorded = state.worktree if state is not None else None
        if recorded is None:
            return None  # most sessions: git is not asked, its module not even loaded
        from looprunner.session import worktrees

        return worktrees.look(self._ref.project, recorded)

    def remove_worktree(self) -> WorktreeRemoval | None:
        """Remove the worktree of this session's finished run, unless it holds work.

        Kept, with the reason, while it has uncommitted changes or another run works in
        it; the branch always stays. None when the run used no worktree.

        Raises
        ------
        SessionConflictError
            The session is running.
        """
        from looprunner.session import worktrees

        if observe.status(self._ref).health is Health.RUNNING:
            raise SessionConflictError(
                f"session {self._ref.name!r} is running; its worktree stays",
                session=self._ref.name,
            )
        return worktrees.remove(self._ref.project, self._ref.paths.run_dir)
