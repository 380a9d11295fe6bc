"""A backend's settings of its own (the address of its cluster), as it declares them.

A small contract beside :mod:`looprunner.protocols`: the options a backend takes
(:class:`BackendOption`), the ability to be set with them (:class:`Configurable`), and
:func:`options_of`, which reads what a backend class declares. Where their values come
from and where they are recorded is :mod:`looprunner.session.backend_options`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Protocol, runtime_checkable

import attrs

from looprunner.errors import PluginError


@attrs.frozen
class BackendOption:
    """A setting of a backend's own, such as the address of its cluster.

    ``start``, ``resume`` and ``restart`` accept ``flag`` (``--ray-address``) when the
    backend is installed, and ``--backend-option NAME=VALUE`` always; ``env`` names the
    variable that sets it too, and the project's ``.looprunner/config.yaml`` may set it
    under ``backends: {BACKEND: {NAME: VALUE}}``. The value a launch used is recorded
    with the session, in plain text: never make a credential an option.
    """

    name: str
    flag: str
    env: str | None = None
    help: str = ""


@runtime_checkable
class Configurable(Protocol):
    """A backend with settings of its own (:class:`BackendOption`), given before any call.

    The backend of a session is built with the options that session was launched with,
    so ``status``, ``kill``, ``monitor``, ``attach`` and ``cleanup`` reach the same place
    the launch did.
    """

    options: ClassVar[tuple[BackendOption, ...]]

    def configure(self, options: Mapping[str, str]) -> None:
        """Use these option values (name -> value, only those set) from now on."""


#: a backend's option values in a hashable, order-free form: one backend object per setting
OptionsKey = tuple[tuple[str, str], ...]


def options_key(options: Mapping[str, str] | None) -> OptionsKey:
    """Return ``options`` as a key: equal settings give equal keys, in any order."""
    return tuple(sorted((options or {}).items()))


def options_of(backend: object) -> tuple[BackendOption, ...]:
    """Return the options a backend (or backend class) declares; none if it declares none."""
    declared = getattr(backend, "options", ())
    if not isinstance(declared, tuple) or not all(
        isinstance(option, BackendOption) for option in declared
    ):
        raise PluginError(
            f"backend {getattr(backend, 'name', backend)!r}: options must be a tuple of "
            "BackendOption"
        )
    return declared
