"""Every pluggy hook of looprunner: the only way plugins reach the core.

Project name and entry-point group: ``looprunner``. Implement hooks with
:data:`looprunner.hookimpl`. Built-ins register through these same hooks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from looprunner.plugins import Registry

PROJECT = "looprunner"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_providers(registry: Registry[Any]) -> None:
    """Register agent providers.

    Fires once, when a plugin manager is built. Call ``registry.add(cls)`` for each
    provider class; the class names itself with ``name: ClassVar[str]``.

    Parameters
    ----------
    registry:
        The provider registry; adding a name another plugin already added is an error
        naming both plugins.
    """


@hookspec
def register_terminations(registry: Registry[Any]) -> None:
    """Register termination strategies (``fixed``, ``judgment``, ...).

    Fires once, when a plugin manager is built. Each class implements
    :class:`looprunner.protocols.TerminationStrategy` and names itself.

    Parameters
    ----------
    registry:
        The termination registry.
    """


@hookspec
def register_backends(registry: Registry[Any]) -> None:
    """Register backends that run engine processes (``tmux``, ``inline``, ...).

    Fires once, when a plugin manager is built.

    Parameters
    ----------
    registry:
        The backend registry.
    """
