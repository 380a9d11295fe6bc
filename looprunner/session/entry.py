"""The engine process's entry (``python -m looprunner engine``): receive, build, run.

The engine is told its session by the command line and receives the caller's
environment through a FIFO or a file (never the backend's environment, which may be a
tmux server's or a remote node's), then runs the session to its end with the installed plugins.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

from looprunner import handoff
from looprunner.engine.contain import MARK_ENV
from looprunner.engine.loop import Engine
from looprunner.errors import SessionConflictError
from looprunner.models import RunStatus
from looprunner.names import ProjectPaths
from looprunner.plugins.manager import make_plugin_manager
from looprunner.plugins.registry import Registries
from looprunner.session.facade import Session

#: how long the engine waits for the launcher to hand over its environment
HANDOFF_TIMEOUT = 10.0


def run_engine(
    project: Path,
    session: str,
    *,
    backend: str,
    resume: bool,
    env_fifo: Path | None,
    env_file: Path | None = None,
    launch_token: str | None = None,
) -> int:
    """Run the engine to its end; return 0 if the session completed, 3 on a conflict, else 1."""
    env: Mapping[str, str] | None = None
    handed = (handoff.FILE, env_file) if env_file is not None else (handoff.FIFO, env_fifo)
    if handed[1] is not None:
        received = handoff.receive_any(handed[0], handed[1], timeout=HANDOFF_TIMEOUT)
        if received is None:
            # never run agents with the backend's environment instead of the caller's
            print("looprunner engine: the launcher handed over no environment; not starting")
            return 1
        umask = handoff.take_umask(received)
        if umask is not None:
            os.umask(umask)  # still one thread here: the launcher's umask, not tmux's
        # started by an agent of another session? this session is not that agent's to end
        received.pop(MARK_ENV, None)
        os.environ.clear()
        os.environ.update(received)
        env = received
    # this process is the engine's own: let plugins' INFO messages reach engine.log
    logging.getLogger().setLevel(logging.INFO)
    registries = Registries(make_plugin_manager())
    paths = ProjectPaths.of(project).session(session)
    engine = Engine(
        paths,
        backend=backend,
        registries=registries,
        session_view=Session.with_registries(session, project, registries),
        env=env,
        own_process=True,
        launch_token=launch_token,
    )
    try:
        state = engine.run(resume=resume)
    except SessionConflictError as exc:
        print(f"looprunner engine: {exc}")
        return 3
    return 0 if state.status is RunStatus.COMPLETE else 1
