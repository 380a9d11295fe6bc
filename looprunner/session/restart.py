"""Restarting: a finished session started again under its name, with what it ran.

The definition is the ``pipeline.yaml`` its run recorded at start (what ``resume`` reads
too): the stage or pipeline already resolved, with the command line's provider, model,
inputs, context and iteration cap applied. Its backend is the one its state records.
The old run is moved aside exactly as ``start --force`` does; nothing is deleted.
Edits made to the stage's files since are therefore not picked up: that is a new
``start --force``.
"""

from __future__ import annotations

from collections.abc import Mapping

from looprunner import convert
from looprunner.errors import SessionConflictError, SessionError
from looprunner.models import Health
from looprunner.protocols import Backend, EngineFactory
from looprunner.session import launch, listing, observe
from looprunner.session.ref import SessionRef


def restart(
    ref: SessionRef,
    runner: Backend,
    *,
    env: Mapping[str, str] | None,
    engine_factory: EngineFactory,
    background: bool,
) -> None:
    """Start the session again with the pipeline its last run recorded."""
    ref.refuse_kept("restarted")
    current = observe.status(ref)
    name = ref.name
    if current.health is Health.NOT_FOUND:
        raise listing.not_found(name, ref.project)
    if current.health in (Health.RUNNING, Health.ORPHANED, Health.UNKNOWN):
        why = {
            Health.RUNNING: "it is running",
            Health.ORPHANED: "a backend session of it runs without an engine "
            "(run 'looprunner cleanup --fix' first)",
            Health.UNKNOWN: f"its health is unknown ({current.detail})",
        }[current.health]
        raise SessionConflictError(f"session {name!r} cannot be restarted: {why}", session=name)
    if not ref.paths.pipeline_file.is_file():
        raise SessionError(
            f"session {name!r} cannot be restarted: its run recorded no pipeline.yaml "
            f"({ref.paths.pipeline_file}), so what it ran is unknown; start it again with "
            f"'looprunner start {name} --force --stage TYPE | --pipeline NAME'",
            session=name,
        )
    pipeline = convert.load_resolved_pipeline(ref.paths.pipeline_file)
    launch.start(
        ref,
        pipeline,
        runner,
        force=True,
        env=env,
        engine_factory=engine_factory,
        background=background,
    )
