"""Plugin managers and the registries they fill.

There is no global plugin manager: each :class:`~looprunner.session.Session` (and each
engine process) builds its own with :func:`make_plugin_manager`, which loads the
``looprunner`` entry points unless ``LOOPRUNNER_DISABLE_PLUGIN_AUTOLOAD`` is set, skips
plugins named in ``LOOPRUNNER_DISABLED_PLUGINS`` (comma-separated), and registers the
built-ins through the same hooks as everyone else.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any, Generic, TypeVar

import pluggy

from looprunner import hookspecs
from looprunner.errors import PluginError, ProviderError

T = TypeVar("T")

AUTOLOAD_ENV = "LOOPRUNNER_DISABLE_PLUGIN_AUTOLOAD"
DISABLED_ENV = "LOOPRUNNER_DISABLED_PLUGINS"


class Registry(Generic[T]):
    """Named plugin classes of one kind; each name may be claimed once."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, type[T]] = {}
        self._owners: dict[str, str] = {}
        self.current_plugin = "?"

    def add(self, cls: type[T]) -> None:
        """Register ``cls`` under its ``name`` class attribute."""
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name:
            raise PluginError(f"{self.current_plugin}: {cls.__qualname__} has no 'name'")
        if name in self._items and self._items[name] is not cls:
            raise PluginError(
                f"{self.kind} {name!r} is registered twice: by {self._owners[name]} "
                f"and by {self.current_plugin}"
            )
        self._items[name] = cls
        self._owners[name] = self.current_plugin

    def get(self, name: str) -> type[T]:
        """Return the class registered as ``name``."""
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "none"
            error = ProviderError if self.kind == "provider" else PluginError
            raise error(f"unknown {self.kind} {name!r} (available: {known})") from None

    def names(self) -> list[str]:
        """Return every registered name, sorted."""
        return sorted(self._items)

    def owner(self, name: str) -> str:
        """Return the plugin that registered ``name``."""
        return self._owners[name]

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))


class Registries:
    """Every registry one plugin manager fills."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.providers: Registry[Any] = Registry("provider")
        self.terminations: Registry[Any] = Registry("termination")
        self.backends: Registry[Any] = Registry("backend")
        for hook_name, registry in (
            ("register_providers", self.providers),
            ("register_terminations", self.terminations),
            ("register_backends", self.backends),
        ):
            hook = getattr(pm.hook, hook_name)
            for impl in hook.get_hookimpls():
                registry.current_plugin = pm.get_name(impl.plugin) or repr(impl.plugin)
                impl.function(registry)


def make_plugin_manager(
    *, autoload: bool | None = None, blocked: Iterable[str] = ()
) -> pluggy.PluginManager:
    """Build a plugin manager with the built-ins and, unless disabled, installed plugins."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    disabled = {n.strip() for n in os.environ.get(DISABLED_ENV, "").split(",") if n.strip()}
    for name in {*disabled, *blocked}:
        pm.set_blocked(name)
    if autoload is None:
        autoload = not os.environ.get(AUTOLOAD_ENV)
    if autoload:
        try:
            pm.load_setuptools_entrypoints(hookspecs.PROJECT)
        except Exception as exc:
            raise PluginError(f"a looprunner plugin failed to load: {exc}") from exc
    from looprunner.builtin import plugin as builtin_plugin

    pm.register(builtin_plugin, name="looprunner.builtin")
    pm.check_pending()
    return pm


def registries(pm: pluggy.PluginManager | None = None) -> Registries:
    """Return the registries of ``pm`` (a fresh default manager if None)."""
    return Registries(pm or make_plugin_manager())
