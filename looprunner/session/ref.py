"""One session's name, files and plugins: what every session operation starts from.

The registries (and with them the installed plugins) are loaded on first use only, and
each backend is built once per reference, so asking the same backend twice in one
command costs one construction. Looking at a session is the common case and must stay
cheap: a backend or termination the built-ins provide is found among them without
loading the installed plugins (a plugin cannot take a built-in's name anyway: two
classes claiming one name is refused whenever the plugins are loaded).
"""

from __future__ import annotations

import functools
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from looprunner.backend_settings import Configurable, OptionsKey, options_key
from looprunner.builtin.catalog import BuiltinRegistries
from looprunner.builtin.defaults import BACKEND as DEFAULT_BACKEND
from looprunner.errors import InvalidSessionNameError, LooprunnerError, SessionConflictError
from looprunner.models import RunState
from looprunner.names import (
    KeptRunPaths,
    ProjectPaths,
    SessionPaths,
    split_kept_run,
    validate_run_name,
)
from looprunner.plugins.registry import Registries
from looprunner.protocols import Backend, TerminationStrategy
from looprunner.session import backend_options
from looprunner.store import lock as lockmod
from looprunner.store.logs import last_lines, rotated
from looprunner.store.projection import read_projected

if TYPE_CHECKING:
    import pluggy


class Plugins:
    """The registries of one plugin manager, built when first asked for."""

    def __init__(self, pm: pluggy.PluginManager | None = None) -> None:
        self._pm = pm
        self._registries: Registries | None = None
        self._backends: dict[tuple[str, OptionsKey], Backend] = {}

    @classmethod
    def of(cls, registries: Registries) -> Plugins:
        """Plugins whose registries are already built."""
        plugins = cls(registries.pm)
        plugins._registries = registries
        return plugins

    @property
    def registries(self) -> Registries:
        """The stage types, providers, terminations and backends available."""
        if self._registries is None:
            from looprunner.plugins.manager import make_plugin_manager

            self._registries = Registries(self._pm or make_plugin_manager())
        return self._registries

    def _builtin(self) -> Registries | None:
        """Return the built-ins' registries alone, when no plugin manager was given."""
        if self._pm is not None or self._registries is not None:
            return None  # the caller chose the plugins, or they are loaded already
        return _builtin_registries()

    def termination(self, name: str) -> type[TerminationStrategy]:
        """Return the termination class registered as ``name``."""
        builtin = self._builtin()
        if builtin is not None and name in builtin.terminations:
            return builtin.terminations.get(name)
        return self.registries.terminations.get(name)

    @property
    def pm(self) -> pluggy.PluginManager:
        """The plugin manager (lifecycle hooks are called through it)."""
        return self.registries.pm

    def backend(self, name: str, options: Mapping[str, str] | None = None) -> Backend:
        """Return the backend registered as ``name``, set with ``options`` (built once each).

        Raises
        ------
        UsageError
            No backend of that name is registered (the message lists those that are).
        """
        key = (name, options_key(options))
        if key not in self._backends:
            builtin = self._builtin()
            if builtin is not None and name in builtin.backends:
                cls = builtin.backends.get(name)
            else:
                cls = self.registries.backends.get(name)
            made = cls()
            if options and isinstance(made, Configurable):
                made.configure(dict(options))
            self._backends[key] = made
        return self._backends[key]

    def default_backend(self) -> Backend:
        """Return the backend ``start`` uses unless told otherwise."""
        return self.backend(DEFAULT_BACKEND)

    def adopt(self, backend: Backend, options: Mapping[str, str] | None = None) -> None:
        """Use this backend object for its name (one the caller built itself)."""
        self._backends[(backend.name, options_key(options))] = backend


@functools.cache
def _builtin_registries() -> Registries:
    """Return the built-ins alone: what they register never changes within a process."""
    return BuiltinRegistries()


class SessionRef:
    """A session's validated name, its project's paths, and the plugins to use.

    The name may also be an earlier run's full name (``auth.20261129T163736``): such a
    reference can be looked at, never started, resumed or stopped (``kept`` says which).
    """

    def __init__(self, name: str, project: str | Path | ProjectPaths, plugins: Plugins) -> None:
        self.name = validate_run_name(name)
        # a listing passes the project's paths made once, not resolved again per session
        self.project_paths = (
            project if isinstance(project, ProjectPaths) else ProjectPaths.of(project)
        )
        self.paths: SessionPaths = (
            self.project_paths.kept(name)
            if split_kept_run(name) is not None
            else self.project_paths.session(name)
        )
        self.plugins = plugins
        #: the backend options of the launch being prepared (recorded by the launch)
        self.launch_options: dict[str, str] = {}

    @property
    def kept(self) -> KeptRunPaths | None:
        """The earlier run's paths when this names one, else None."""
        return self.paths if isinstance(self.paths, KeptRunPaths) else None

    def refuse_kept(self, verb: str) -> None:
        """Refuse (exit 2) to ``verb`` an earlier run: only a session can be."""
        kept = self.kept
        if kept is not None:
            raise InvalidSessionNameError(
                f"{self.name!r} is an earlier run of session {kept.session!r}, kept aside: "
                f"it cannot be {verb} (look at it with status, tail or monitor; remove it "
                "with rm)",
                session=self.name,
            )

    @property
    def project(self) -> Path:
        """The project folder (absolute)."""
        return self.paths.project

    def read_state(self) -> RunState | None:
        """Return the recorded state, or None when there is none (or it is unreadable)."""
        try:
            return read_projected(self.paths.state_file, self.paths.events_file)
        except ValueError:
            return None

    def backend_name(self, state: RunState | None = None) -> str | None:
        """Return the backend this session recorded: in its state, else in its lock file."""
        if state is not None and state.backend:
            return state.backend
        meta = lockmod.read_metadata(self.paths.lock_file)
        name = meta.get("backend")
        return name if isinstance(name, str) and name else None

    def backend(self, state: RunState | None = None) -> Backend | None:
        """Return the backend this session runs on (the default if it recorded none).

        None when the recorded backend is not installed any more: the session's process
        cannot then be asked about.
        """
        name = self.backend_name(state)
        try:
            if not name:
                return self.plugins.default_backend()
            return self.plugins.backend(name, self.backend_options())
        except LooprunnerError:
            return None

    def backend_options(self) -> dict[str, str]:
        """Return the backend options the session's last launch used (see backend_options)."""
        return backend_options.recorded(self.paths.run_dir)

    def log_tail(self, lines: int = 5) -> str:
        """Return the last lines of engine.log on one line (for error messages).

        Read from the end (and across a rotation), however long the log is.
        """
        log = self.paths.engine_log
        try:
            tail = last_lines(log, lines + 1, previous=rotated(log))
        except OSError:
            return ""
        kept = [line.strip() for line in tail if line.strip()]
        return " | ".join(kept[-lines:])


def run_dir_problem(run_dir: Path) -> str | None:
    """Say what is wrong with what stands where a session's run folder should be.

    None when there is nothing there or a folder (or a link to one). A symbolic link to
    nowhere, or a file, would make ``mkdir`` fail deep in a start; this says it in words.
    """
    try:
        info = os.lstat(run_dir)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"{run_dir} cannot be examined: {exc.strerror or exc}"
    if stat.S_ISDIR(info.st_mode):
        return None
    if stat.S_ISLNK(info.st_mode):
        target = str(run_dir.readlink())
        if not run_dir.exists():
            return f"{run_dir} is a symbolic link to {target!r}, which does not exist"
        if not run_dir.is_dir():
            return f"{run_dir} is a symbolic link to {target!r}, which is not a folder"
        return None
    return f"{run_dir} is not a folder"


def refuse_bad_run_dir(ref: SessionRef) -> None:
    """Refuse to start over something that is not a run folder (exit 3, one line)."""
    problem = run_dir_problem(ref.paths.run_dir)
    if problem is not None:
        raise SessionConflictError(
            f"cannot start session {ref.name!r}: {problem}; remove it, or make it a folder",
            session=ref.name,
        )
