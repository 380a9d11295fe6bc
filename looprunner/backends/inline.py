"""The inline backend: the engine runs in the calling process.

Used by ``start --foreground``, tests and notebooks. ``launch`` runs the whole session
before it returns (or in a background thread when ``background=True``).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from looprunner.protocols import LaunchSpec

if TYPE_CHECKING:
    from looprunner.plugins import Registries


class InlineBackend:
    """Runs the engine in this process."""

    name: ClassVar[str] = "inline"

    def __init__(self, *, background: bool = False, registries: Registries | None = None) -> None:
        self.background = background
        self.registries = registries
        self.thread: threading.Thread | None = None
        self.engine: object | None = None

    def launch(self, spec: LaunchSpec) -> None:
        """Run the engine now (or start a thread that does)."""
        from looprunner.engine.main import make_engine

        engine = make_engine(
            spec.project, spec.session, backend=self.name, env=spec.env, registries=self.registries
        )
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

    def sessions(self, project: Path) -> set[str] | None:
        """Inline engines have no backend resource: the lock says whether they run."""
        return set()

    def stop(self, session: str, project: Path) -> bool:
        """Nothing to remove: the engine is stopped through its lock holder's pid."""
        return False
