"""looprunner-ray: the backend ``ray``, each session's engine a Ray job.

``looprunner start NAME --backend ray`` submits the engine to the cluster that
``RAY_ADDRESS`` names; see docs/scale-out.md in looprunner's repository.
"""

from __future__ import annotations

from typing import Any

from looprunner.plugin import hookimpl

from looprunner_ray._version import __version__
from looprunner_ray.backend import RayBackend

__all__ = ["RayBackend", "__version__"]


@hookimpl
def register_backends(registry: Any) -> None:
    """Register the backend ``ray``."""
    registry.add(RayBackend)
