"""Typed registries: what the registration hooks fill, one registry per kind of plugin class.

A registry maps names to classes; each class names itself (``name: ClassVar[str]``) and
two plugins claiming one name is an error naming both. Registration hooks are called one
implementation at a time, so the registry knows which plugin added what.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from looprunner.errors import ConfigError, LooprunnerError, PluginError, ProviderError, UsageError
from looprunner.protocols import Backend, Provider, StageType, TerminationStrategy

if TYPE_CHECKING:
    import pluggy

T = TypeVar("T")

#: what an unknown name of each kind raises: a bad stage or termination name is a
#: definition error, a bad provider or backend name a usage error
_UNKNOWN: dict[str, tuple[type[LooprunnerError], str]] = {
    "provider": (ProviderError, ""),
    "backend": (UsageError, ""),
    "stage type": (ConfigError, "LR034"),
    "termination": (ConfigError, "LR033"),
}


class Registry(Generic[T]):
    """Named plugin classes of one kind; each name (and alias) may be claimed once.

    A class may name other spellings it answers to in ``aliases: ClassVar[tuple[str,
    ...]]`` (loop-agents' ``claude-code`` for ``claude``); :meth:`get` and ``in`` accept
    them, :meth:`names` lists only the names.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, type[T]] = {}
        self._owners: dict[str, str] = {}
        self._aliases: dict[str, str] = {}
        self.current_plugin = "?"

    def add(self, cls: type[T]) -> None:
        """Register ``cls`` under its ``name`` class attribute (and its ``aliases``)."""
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name:
            raise PluginError(f"{self.current_plugin}: {cls.__qualname__} has no 'name'")
        aliases = getattr(cls, "aliases", ())
        for claimed in (name, *aliases):
            holder = self._aliases.get(claimed) or (claimed if claimed in self._items else None)
            if holder is not None and self._items[holder] is not cls:
                raise PluginError(
                    f"{self.kind} {claimed!r} is registered twice: by {self._owners[holder]} "
                    f"and by {self.current_plugin}"
                )
        self._items[name] = cls
        self._owners[name] = self.current_plugin
        for alias in aliases:
            self._aliases[alias] = name

    def get(self, name: str) -> type[T]:
        """Return the class registered as ``name`` (or an alias), or raise naming the rest."""
        try:
            return self._items[self._aliases.get(name, name)]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "none"
            message = f"unknown {self.kind} {name!r} (available: {known})"
            error, code = _UNKNOWN.get(self.kind, (ConfigError, "LR002"))
            if error is ConfigError:
                raise ConfigError(message, code=code) from None
            raise error(message) from None

    def __contains__(self, name: object) -> bool:
        return name in self._items or name in self._aliases

    def names(self) -> list[str]:
        """Return every registered name, sorted."""
        return sorted(self._items)

    def owner(self, name: str) -> str:
        """Return the plugin that registered ``name``."""
        return self._owners[name]

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))


class FolderRegistry:
    """Folders of stage definitions (``NAME/stage.yaml`` + ``prompt.md``) plugins ship."""

    def __init__(self) -> None:
        self._folders: list[tuple[str, Path]] = []
        self.current_plugin = "?"

    def add(self, folder: Path | str) -> None:
        """Register a folder whose sub-folders are stages."""
        path = Path(folder)
        if not path.is_dir():
            raise PluginError(f"{self.current_plugin}: stage folder {path} does not exist")
        self._folders.append((self.current_plugin, path))

    def folders(self) -> list[tuple[str, Path]]:
        """Return (plugin, folder) pairs in registration order."""
        return list(self._folders)

    def owner(self, index: int) -> str:
        """Return the plugin that registered the ``index``-th folder."""
        return self._folders[index][0]


class Registries:
    """Every registry one plugin manager fills.

    Each registry is filled when first used, by calling each implementation of its
    registration hook on its own (pluggy gives no way to learn which plugin is adding a
    class otherwise). Filling only what is used keeps a command that needs one backend
    from importing every provider and termination.
    """

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm

    def _fill(self, hook_name: str, registry: F) -> F:
        """Fill ``registry`` by calling each implementation of ``hook_name``."""
        return _fill(self.pm, hook_name, registry)

    @functools.cached_property
    def stage_types(self) -> Registry[StageType]:
        """The stage types (``register_stage_types``)."""
        return self._fill("register_stage_types", Registry[StageType]("stage type"))

    @functools.cached_property
    def providers(self) -> Registry[Provider]:
        """The providers (``register_providers``)."""
        return self._fill("register_providers", Registry[Provider]("provider"))

    @functools.cached_property
    def terminations(self) -> Registry[TerminationStrategy]:
        """The termination strategies (``register_terminations``)."""
        return self._fill("register_terminations", Registry[TerminationStrategy]("termination"))

    @functools.cached_property
    def backends(self) -> Registry[Backend]:
        """The backends (``register_backends``)."""
        return self._fill("register_backends", Registry[Backend]("backend"))

    @functools.cached_property
    def stage_folders(self) -> FolderRegistry:
        """The folders of stage definitions plugins ship (``register_stage_folders``)."""
        return self._fill("register_stage_folders", FolderRegistry())

    def by_kind(self) -> dict[str, Listing]:
        """Return the class registries keyed by the plural used in ``plugins --json``."""
        return {
            "stage_types": self.stage_types,
            "providers": self.providers,
            "terminations": self.terminations,
            "backends": self.backends,
        }


class Listing(Protocol):
    """What every class registry offers for listing."""

    def names(self) -> list[str]:
        """Every registered name."""

    def owner(self, name: str) -> str:
        """Return the plugin that registered ``name``."""


class _Filling(Protocol):
    current_plugin: str


F = TypeVar("F", bound=_Filling)


def _fill(pm: pluggy.PluginManager, hook_name: str, registry: F) -> F:
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        registry.current_plugin = pm.get_name(impl.plugin) or repr(impl.plugin)
        impl.function(**dict.fromkeys(impl.argnames, registry))
    return registry
