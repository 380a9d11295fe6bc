"""Plugin managers: the installed plugins and the built-ins, loaded the same way.

There is no global plugin manager: each :class:`~looprunner.session.Session` (and each
engine process) builds its own with :func:`make_plugin_manager`, which loads the
``looprunner`` entry points unless ``LOOPRUNNER_DISABLE_PLUGIN_AUTOLOAD`` is set, skips
plugins named in ``LOOPRUNNER_DISABLED_PLUGINS`` (comma-separated), and registers the
built-ins through the same hooks as everyone else.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import pluggy

from looprunner._version import __version__
from looprunner.builtin.catalog import BUILTIN_NAME
from looprunner.errors import PluginError
from looprunner.plugins import hookspecs
from looprunner.plugins.registry import Registries

AUTOLOAD_ENV = "LOOPRUNNER_DISABLE_PLUGIN_AUTOLOAD"
DISABLED_ENV = "LOOPRUNNER_DISABLED_PLUGINS"


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
    refuse_wrappers(pm)
    return pm


def refuse_wrappers(pm: pluggy.PluginManager) -> None:
    """Refuse wrapper implementations, which looprunner would otherwise never run.

    looprunner calls each implementation of a hook on its own, so one plugin's failure
    cannot stop another's (a session must survive a broken plugin). pluggy's wrappers only
    work inside pluggy's own call loop; rather than silently skip them, a plugin that
    declares one is refused when it loads.
    """
    for caller in pm.hook.__dict__.values():
        if not isinstance(caller, pluggy.HookCaller):
            continue
        for impl in caller.get_hookimpls():
            if impl.hookwrapper or impl.wrapper:
                plugin = pm.get_name(impl.plugin) or repr(impl.plugin)
                raise PluginError(
                    f"plugin {plugin}: {caller.name} is a wrapper implementation; looprunner "
                    "calls each implementation on its own, so use a plain @hookimpl"
                )


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
            for kind, registry in regs.by_kind().items()
        }
        shipped = sorted(
            stage.name
            for owner, folder in regs.stage_folders.folders()
            if owner == name
            for stage in folder.iterdir()
            if (stage / "stage.yaml").is_file()
        )
        if shipped:
            registers["stages"] = shipped
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
