"""Every pluggy hook of looprunner: the only way plugins reach the core.

Project name and entry-point group: ``looprunner``. Implement hooks with
:data:`looprunner.hookimpl`; an implementation may take any subset of a hook's
arguments. Built-ins register through these same hooks.

Registration hooks run whenever a plugin manager's registries are built, so they
should only add classes. Lifecycle hooks (``on_*``) run in the
engine process; one that raises is written to engine.log and to the event log as a
``hook_error`` event, and the session goes on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from looprunner.models import (
        IterationResult,
        Node,
        Pipeline,
        Problem,
        RunError,
        RunState,
        StageResult,
    )
    from looprunner.plugins.registry import FolderRegistry, Registry
    from looprunner.protocols import Backend, Provider, StageType, TerminationStrategy
    from looprunner.protocols import SessionView as Session

PROJECT = "looprunner"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_providers(registry: Registry[Provider]) -> None:
    """Register agent providers.

    Fires each time a plugin manager's registries are built. Call ``registry.add(cls)`` for each
    provider class; the class names itself with ``name: ClassVar[str]``.

    Parameters
    ----------
    registry:
        The provider registry; adding a name another plugin already added is an error
        naming both plugins.
    """


@hookspec
def register_terminations(registry: Registry[TerminationStrategy]) -> None:
    """Register termination strategies (``fixed``, ``judgment``, ...).

    Fires each time a plugin manager's registries are built. Each class implements
    :class:`looprunner.protocols.TerminationStrategy` and names itself.

    Parameters
    ----------
    registry:
        The termination registry.
    """


@hookspec
def register_backends(registry: Registry[Backend]) -> None:
    """Register backends that run engine processes (``tmux``, ``inline``, ...).

    Fires each time a plugin manager's registries are built.

    Parameters
    ----------
    registry:
        The backend registry.
    """


@hookspec
def register_stage_types(registry: Registry[StageType]) -> None:
    """Register stage types: classes that decide what one iteration of a stage does.

    Fires each time a plugin manager's registries are built. Each class implements
    :class:`looprunner.plugin.StageType` and names itself with ``name: ClassVar[str]``; a
    stage selects it with ``type: NAME``.

    Parameters
    ----------
    registry:
        The stage-type registry; ``registry.add(cls)``.
    """


@hookspec
def register_stage_folders(registry: FolderRegistry) -> None:
    """Register folders of stage definitions a plugin ships (package data).

    Fires each time a plugin manager's registries are built. Each folder holds
    ``NAME/stage.yaml`` + ``prompt.md`` stage folders; they are found after the project's
    own and the built-ins, so a project can override them.

    Parameters
    ----------
    registry:
        The folder registry; ``registry.add(Path(__file__).parent / "stages")``.
    """


@hookspec
def on_session_start(session: Session, pipeline: Pipeline) -> None:
    """Called in the engine process when a session starts or resumes.

    Parameters
    ----------
    session:
        A view of the session: ``session.name``, ``session.project``,
        ``session.status()``, ``session.events()``.
    pipeline:
        The resolved pipeline it runs.
    """


@hookspec
def on_iteration_start(
    session: Session, stage: Node, iteration: int, context: dict[str, Any]
) -> None:
    """Called before the agent of an iteration starts.

    Parameters
    ----------
    session:
        The session.
    stage:
        The pipeline node being run (``stage.id``, ``stage.stage`` is the Stage).
    iteration:
        The 1-based iteration number within the stage.
    context:
        The context.json document the agent gets (read-only: changing it has no effect).
    """


@hookspec
def on_iteration(session: Session, stage: Node, iteration: int, result: IterationResult) -> None:
    """Called after an iteration completed and was recorded.

    Parameters
    ----------
    session:
        The session.
    stage:
        The pipeline node.
    iteration:
        The 1-based iteration number.
    result:
        Decision, reason, summary, exit code and duration of the iteration.
    """


@hookspec
def on_stage_complete(session: Session, stage: Node, result: StageResult) -> None:
    """Called when a stage (pipeline node) has completed.

    Parameters
    ----------
    session:
        The session.
    stage:
        The pipeline node.
    result:
        How many iterations it ran and why it stopped.
    """


@hookspec
def on_complete(session: Session, state: RunState) -> None:
    """Called once when the session completed (every stage done).

    Parameters
    ----------
    session:
        The session.
    state:
        The final state, as written to state.json.
    """


@hookspec
def on_error(session: Session, error: RunError) -> None:
    """Called once when the session failed (the agent, a status file or the engine).

    Parameters
    ----------
    session:
        The session.
    error:
        ``type``, ``message`` and ``iteration`` of the failure, as written to state.json.
    """


@hookspec
def on_cleanup(session: Session, problem: Problem) -> None:
    """Called by ``cleanup --fix`` after it repaired a problem of a session.

    For plugins that keep resources of their own per session: a task tracker can put a
    crashed session's claimed work back in the queue when ``problem.kind`` is
    ``"zombie_state"`` (the session was marked crashed).

    Parameters
    ----------
    session:
        The session the problem belonged to.
    problem:
        ``kind`` (``stale_lock``, ``orphaned_tmux``, ``zombie_state``,
        ``unlogged_ending``, ``stale_handoff``, ``unsafe_file``),
        ``detail`` and ``action`` (what was done).
    """
