"""looprunner: run coding-agent loops in the background and manage their whole life.

The public surface is re-exported here; everything else may change between versions.
Heavy modules load on first use, so ``import looprunner`` stays fast.
"""

from __future__ import annotations

#: ``typing.TYPE_CHECKING`` without importing typing, which costs more than the rest of
#: ``import looprunner`` (type checkers treat any name TYPE_CHECKING as true)
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from looprunner.definitions.build import build_pipeline
    from looprunner.errors import (
        BackendError,
        BackendUnreachableError,
        ConfigError,
        InvalidSessionNameError,
        LooprunnerError,
        PluginError,
        ProviderError,
        SessionConflictError,
        SessionError,
        SessionNotFoundError,
        SessionTimeoutError,
    )
    from looprunner.models import (
        Event,
        Health,
        Pipeline,
        RemovalReport,
        RunInfo,
        RunState,
        RunStatus,
        SessionStatus,
        Stage,
        Termination,
    )
    from looprunner.plugins.hookspecs import hookimpl
    from looprunner.session import Session
    from looprunner.session.maintenance import CleanupReport, cleanup
    from looprunner.session.removal import prune

__all__ = [
    "BackendError",
    "BackendUnreachableError",
    "CleanupReport",
    "ConfigError",
    "Event",
    "Health",
    "InvalidSessionNameError",
    "LooprunnerError",
    "Pipeline",
    "PluginError",
    "ProviderError",
    "RemovalReport",
    "RunInfo",
    "RunState",
    "RunStatus",
    "Session",
    "SessionConflictError",
    "SessionError",
    "SessionNotFoundError",
    "SessionStatus",
    "SessionTimeoutError",
    "Stage",
    "Termination",
    "__version__",
    "build_pipeline",
    "cleanup",
    "hookimpl",
    "prune",
]

_HOMES = {
    "Session": "looprunner.session",
    "hookimpl": "looprunner.plugins.hookspecs",
    "build_pipeline": "looprunner.definitions.build",
    "cleanup": "looprunner.session.maintenance",
    "CleanupReport": "looprunner.models",
    "prune": "looprunner.session.removal",
    **dict.fromkeys(
        (
            "Event",
            "Health",
            "Pipeline",
            "RemovalReport",
            "RunInfo",
            "RunState",
            "RunStatus",
            "SessionStatus",
            "Stage",
            "Termination",
        ),
        "looprunner.models",
    ),
    **dict.fromkeys(
        (
            "BackendError",
            "ConfigError",
            "InvalidSessionNameError",
            "LooprunnerError",
            "PluginError",
            "ProviderError",
            "SessionConflictError",
            "SessionError",
            "SessionNotFoundError",
            "SessionTimeoutError",
            "BackendUnreachableError",
        ),
        "looprunner.errors",
    ),
}

#: models whose ``load`` needs looprunner.definitions imported (see models/loading.py)
_LOADABLE = frozenset({"Stage", "Pipeline"})


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from looprunner._version import __version__

        return __version__
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'looprunner' has no attribute {name!r}")
    if name in _LOADABLE:
        # Stage.load / Pipeline.load read files through the loader this installs
        __import__("looprunner.definitions")
    # __import__, not importlib.import_module: ``python -X importtime`` lists only the former
    value = getattr(__import__(home, fromlist=[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
