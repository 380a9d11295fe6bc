"""Plugin managers and the registries they fill.

There is no global plugin manager: each :class:`~looprunner.session.Session` (and each
engine process) builds its own with :func:`make_plugin_manager`, which loads the
``looprunner`` entry points unless ``LOOPRUNNER_DISABLE_PLUGIN_AUTOLOAD`` is set, skips
plugins named in ``LOOPRUNNER_DISABLED_PLUGINS`` (comma-separated), and registers the
built-ins through the same hooks as everyone else.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

import pluggy

from looprunner import hookspecs
from looprunner._version import __version__
from looprunner.errors import ConfigError, PluginError, ProviderError, UsageError

T = TypeVar("T")

AUTOLOAD_ENV = "LOOPRUNNER_DISABLE_PLUGIN_AUTOLOAD"
BUILTIN_NAME = "looprunner.builtin"
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
            message = f"unknown {self.kind} {name!r} (available: {known})"
            if self.kind == "provider":
                raise ProviderError(message) from None
            if self.kind == "backend":
                raise UsageError(message) from None
            raise ConfigError(message, code="LR033") from None

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
        self.pm = pm
        self.stage_types: Registry[Any] = Registry("stage type")
        self.providers: Registry[Any] = Registry("provider")
        self.terminations: Registry[Any] = Registry("termination")
        self.backends: Registry[Any] = Registry("backend")
        for hook_name, registry in (
            ("register_stage_types", self.stage_types),
            ("register_providers", self.providers),
            ("register_terminations", self.terminations),
            ("register_backends", self.backends),
        ):
            hook = getattr(pm.hook, hook_name)
            for impl in hook.get_hookimpls():
                registry.current_plugin = pm.get_name(impl.plugin) or repr(impl.plugin)
                impl.function(**dict.fromkeys(impl.argnames, registry))


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
        except Exception as exc:  # a plugin's import error or a bad hook signature
            raise PluginError(f"a looprunner plugin failed to load: {exc}") from exc
    from looprunner.builtin import plugin as builtin_plugin

    pm.register(builtin_plugin, name=BUILTIN_NAME)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"a looprunner plugin implements an unknown hook: {exc}") from exc
    return pm


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


def plugin_info(pm: pluggy.PluginManager) -> list[dict[str, Any]]:
    """Describe each registered plugin: name, distribution, version, what it registers."""
    regs = Registries(pm)
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    rows = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:
            continue
        dist = dists.get(id(plugin))
        registers = {
            kind: sorted(n for n in registry.names() if registry.owner(n) == name)
            for kind, registry in (
                ("stage_types", regs.stage_types),
                ("providers", regs.providers),
                ("terminations", regs.terminations),
                ("backends", regs.backends),
            )
        }
        hooks = sorted(
            caller.name
            for caller in pm.get_hookcallers(plugin) or []
            if caller.name.startswith("on_")
        )
        rows.append(
            {
                "name": name,
                "distribution": dist.project_name if dist else _builtin(name, "looprunner"),
                "version": dist.version if dist else _builtin(name, __version__),
                "registers": {k: v for k, v in registers.items() if v},
                "hooks": hooks,
            }
        )
    return rows


def _builtin(name: str, value: str) -> str | None:
    return value if name == BUILTIN_NAME else None


def registries(pm: pluggy.PluginManager | None = None) -> Registries:
    """Return the registries of ``pm`` (a fresh default manager if None)."""
    return Registries(pm or make_plugin_manager())
