"""Entry point of the engine process (``python -m looprunner engine``)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from looprunner import handoff
from looprunner.engine.runner import Engine
from looprunner.errors import SessionConflictError
from looprunner.names import ProjectPaths
from looprunner.plugins import Registries
from looprunner.plugins import registries as default_registries

#: how long the engine waits for the launcher to hand over its environment
HANDOFF_TIMEOUT = 10.0


def make_engine(
    project: Path,
    session: str,
    *,
    backend: str,
    env: Mapping[str, str] | None = None,
    registries: Registries | None = None,
) -> Engine:
    """Build an engine for ``session`` in ``project`` (default plugins unless given)."""
    paths = ProjectPaths.of(project).session(session)
    return Engine(paths, backend=backend, registries=registries or default_registries(), env=env)


def run_engine(
    project: Path, session: str, *, backend: str, resume: bool, env_fifo: Path | None
) -> int:
    """Run the engine to its end; return 0 if the session completed, 3 on a conflict, else 1."""
    import os

    env: Mapping[str, str] | None = None
    if env_fifo is not None:
        received = handoff.receive(env_fifo, timeout=HANDOFF_TIMEOUT)
        if received is None:
            # never run agents with the tmux server's environment instead of the caller's
            print("looprunner engine: the launcher handed over no environment; not starting")
            return 1
        os.environ.clear()
        os.environ.update(received)
        env = received
    # this process is the engine's own: let plugins' INFO messages reach engine.log
    logging.getLogger().setLevel(logging.INFO)
    engine = make_engine(project, session, backend=backend, env=env)
    try:
        state = engine.run(resume=resume)
    except SessionConflictError as exc:
        print(f"looprunner engine: {exc}")
        return 3
    return 0 if state.status.value == "complete" else 1
