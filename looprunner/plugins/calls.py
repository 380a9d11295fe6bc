"""Calling lifecycle hooks so that one broken plugin never stops a session."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy


def call_lifecycle(
    pm: pluggy.PluginManager,
    name: str,
    on_error: Callable[[str, str, BaseException], None],
    **kwargs: Any,
) -> None:
    """Call every implementation of lifecycle hook ``name``, each on its own.

    Each implementation gets only the arguments it asks for. One that raises is
    reported through ``on_error(plugin, hook, exception)`` and the others still run:
    a broken plugin never stops a session.
    """
    hook = getattr(pm.hook, name)
    for impl in reversed(hook.get_hookimpls()):  # the order pluggy itself uses
        try:
            impl.function(**{arg: kwargs[arg] for arg in impl.argnames})
        except Exception as exc:
            on_error(pm.get_name(impl.plugin) or repr(impl.plugin), name, exc)
