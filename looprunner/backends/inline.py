"""The inline backend: the engine runs in the calling process.

Used by ``start --foreground``, tests and notebooks. ``launch`` runs the whole session
before it returns (or in a background thread when bound with ``background=True``). The
session gives it the factory that builds the engine, so this module never imports the
engine.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import ClassVar

from looprunner.errors import BackendError
from looprunner.protocols import EngineFactory, LaunchSpec, RunsToEnd


class InlineBackend:
    """Runs the engine in this process."""

    name: ClassVar[str] = "inline"

    def __init__(self) -> None:
        self.background = False
        self.thread: threading.Thread | None = None
        self.engine: RunsToEnd | None = None
        self._factory: EngineFactory | None = None

    def bind(self, engine_factory: EngineFactory, *, background: bool) -> None:
        """Receive the engine factory, and whether to run the engine in a thread."""
        self._factory = engine_factory
        self.background = background

    def launch(self, spec: LaunchSpec) -> None:
        """Run the engine now (or start a thread that does)."""
        if self._factory is None:
            raise BackendError("the inline backend was given no engine to run")
        engine = self._factory(spec)
        self.engine = engine

        def run() -> None:
            engine.run(resume=spec.resume)

        if self.background:
            self.thread = threading.Thread(
                target=run, name=f"looprunner-{spec.session}", daemon=True
            )
            self.thread.start()
        else:
            run()

    def started(self) -> bool:
        """Tell whether the engine recorded its state, or its thread ended."""
        if self.engine is not None and self.engine.recorded:
            return True
        return self.thread is not None and not self.thread.is_alive()

    def running(self) -> bool:
        """Tell whether the engine's thread runs."""
        return self.thread is not None and self.thread.is_alive()

    def request_stop(self, timeout: float) -> bool:
        """Ask this process's engine to stop and wait up to ``timeout`` for its thread."""
        if self.engine is None:
            return False
        self.engine.request_stop()
        if self.thread is not None:
            self.thread.join(timeout)
        return True

    def sessions(self, project: Path) -> set[str] | None:
        """Inline engines have no backend resource: the lock says whether they run."""
        return set()

    def stop(self, session: str, project: Path) -> bool:
        """Nothing to remove: the engine is stopped through its lock holder's pid."""
        return False
