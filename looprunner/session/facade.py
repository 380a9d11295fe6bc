"""Session: the composition root, a small façade over launch, observe and control.

Everything the command line and notebooks do goes through this class. It wires the
plugins (registries, backends) to the engine and the store; the work itself lives in
:mod:`~looprunner.session.launch`, :mod:`~looprunner.session.observe`,
:mod:`~looprunner.session.control` and :mod:`~looprunner.session.listing`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from looprunner.builtin.defaults import BACKEND as DEFAULT_BACKEND
from looprunner.errors import SessionError
from looprunner.models import Event, Health, SessionStatus
from looprunner.names import ProjectPaths, SessionPaths, validate_session_name
from looprunner.protocols import Attachable, Backend, InProcess, LaunchSpec, describe
from looprunner.session import listing, observe
from looprunner.session.ref import Plugins, SessionRef, refuse_bad_run_dir
from looprunner.session.relaunch_methods import RelaunchMethods
from looprunner.session.runs_methods import RunsMethods
from looprunner.session.worktree_methods import WorktreeMethods
from looprunner.store.logs import size

if TYPE_CHECKING:
    import pluggy

    from looprunner.engine.loop import Engine
    from looprunner.models import Pipeline, Stage
    from looprunner.plugins.registry import Registries
    from looprunner.session.selection import HealthFilter, Since
    from looprunner.views.display import SessionList

# The engine, launching, control and the views load on first use: looking at a session
# (``status``, ``list``) is the common case and needs none of them.


class Session(RelaunchMethods, WorktreeMethods, RunsMethods):
    """One named session in a project.

    Parameters
    ----------
    name:
        The session name (validated: lower-case letters, digits, single hyphens), or an
        earlier run's full name (``auth.20261129T163736``, see :meth:`runs`): that one
        can be looked at and removed, not started, resumed, restarted or killed.
    project:
        The project folder; state lives in its ``.claude/`` (or ``LOOPRUNNER_STATE_DIR``).
    plugin_manager:
        The plugins to use; by default the installed ones and the built-ins.
    """

    def __init__(
        self,
        name: str,
        project: str | Path = ".",
        *,
        plugin_manager: pluggy.PluginManager | None = None,
    ) -> None:
        self._ref = SessionRef(name, project, Plugins(plugin_manager))
        self.name = self._ref.name
        self._in_process: InProcess | None = None
        self._launched_on = DEFAULT_BACKEND

    @classmethod
    def with_registries(cls, name: str, project: str | Path, registries: Registries) -> Session:
        """Return a session using registries already built (the engine process's own)."""
        session = cls(name, project)
        session._ref.plugins = Plugins.of(registries)
        return session

    # ------------------------------------------------------------------ identity

    @property
    def paths(self) -> SessionPaths:
        """The session's files (run folder, state, events, lock, ...)."""
        return self._ref.paths

    @property
    def project_paths(self) -> ProjectPaths:
        """The project's folders (state root, runs, locks)."""
        return self._ref.project_paths

    @property
    def project(self) -> Path:
        """The project folder (absolute)."""
        return self._ref.project

    @property
    def state_root(self) -> Path:
        """The project's state folder (``.claude``, or ``LOOPRUNNER_STATE_DIR``)."""
        return self._ref.project_paths.root

    @property
    def registries(self) -> Registries:
        """The stage types, providers, terminations and backends this session can use."""
        return self._ref.plugins.registries

    @property
    def kept(self) -> bool:
        """True when this names an earlier run kept aside, not a session."""
        return self._ref.kept is not None

    def refuse_kept(self, verb: str) -> None:
        """Raise :class:`UsageError` if this names an earlier run: it can only be looked at."""
        self._ref.refuse_kept(verb)

    @property
    def in_process(self) -> bool:
        """True when this object launched the session's engine in this process."""
        return self._in_process is not None

    def where(self) -> str:
        """Say where the session's engine runs, as its backend names it."""
        backend = self._ref.backend(self._ref.read_state())
        return describe(backend, self.name) if backend is not None else "an unknown backend"

    def __repr__(self) -> str:
        return f"Session({self.name!r}, project={str(self.project)!r})"

    def _repr_html_(self) -> str:
        from looprunner.views import display

        return display.html_table([self.status()])

    def __str__(self) -> str:
        from looprunner.views import display

        return "\n".join(display.progress_lines(self.status()))

    # ------------------------------------------------------------------ start

    @classmethod
    def start(
        cls,
        name: str,
        pipeline: Pipeline | Stage,
        project: str | Path = ".",
        *,
        backend: str | Backend = DEFAULT_BACKEND,
        force: bool = False,
        background: bool = False,
        env: Mapping[str, str] | None = None,
        plugin_manager: pluggy.PluginManager | None = None,
        worktree: bool | None = None,
        backend_options: Mapping[str, str] | None = None,
    ) -> Session:
        """Start a session running ``pipeline`` and return it.

        ``worktree=True``: its agents work in a git worktree of their own (None: as the
        pipeline says); see :mod:`looprunner.session.worktrees`. ``backend_options``
        sets the backend's own options (``{"address": ...}`` for ``ray``), see
        :mod:`looprunner.session.backend_options`.

        With a backend that runs the engine elsewhere (``tmux``, a plugin's) this returns
        once the engine holds the lock and has recorded ``running``; with ``inline`` it
        returns when the session has ended (or at once with ``background=True``, the
        engine running in a thread).

        Raises
        ------
        SessionConflictError
            The session is running, or has a run directory and ``force`` is not set.
        ConfigError, ProviderError, WorktreeRefusedError
            The pipeline (or its worktree) cannot be run here; nothing was written.
        """
        from looprunner.models import Pipeline, Stage
        from looprunner.session import launch

        session = cls(validate_session_name(name), project, plugin_manager=plugin_manager)
        pipeline = Pipeline.loop(pipeline) if isinstance(pipeline, Stage) else pipeline
        runner = session._runner(backend, backend_options, env=env, pipeline=pipeline)
        refuse_bad_run_dir(session._ref)
        launch.start(
            session._ref,
            pipeline,
            runner,
            force=force,
            env=env,
            engine_factory=session._make_engine,
            background=background,
            worktree=worktree,
        )
        return session

    def check(self, pipeline: Pipeline) -> None:
        """Raise if ``pipeline`` cannot run here (unknown type or provider, bad options, ...).

        A name a stage file gets wrong is reported at its line in that file.
        """
        from looprunner.session import launch

        launch.check(self._ref, pipeline)

    def _make_engine(self, spec: LaunchSpec) -> Engine:
        """Build the engine an in-process backend runs (hooks see this session)."""
        from looprunner.engine.loop import Engine

        return Engine(
            self.paths,
            backend=self._launched_on,
            registries=self.registries,
            session_view=self,
            env=spec.env,
            launch_token=spec.launch_token,
        )

    # ------------------------------------------------------------------ observe

    def status(self) -> SessionStatus:
        """Return the session's health and state, from lock, state file and its backend."""
        return observe.status(self._ref)

    def events(self, *, last: int | None = None) -> Iterator[Event]:
        """Iterate over the session's recorded events, oldest first.

        ``last=N`` gives only the last N, read from the end of the log (fast on any size).
        """
        return observe.events(self._ref, last=last)

    async def aevents(
        self, *, follow: bool = False, interval: float = 0.25
    ) -> AsyncIterator[Event]:
        """Iterate the session's events without blocking an event loop.

        With ``follow``, new events are yielded as they are written until the session
        stops running.
        """
        import asyncio

        seen = 0
        while True:
            finished = self.status().health is not Health.RUNNING
            for event in self.events():
                if event.seq > seen:
                    seen = event.seq
                    yield event
            if not follow or finished:
                return
            await asyncio.sleep(interval)

    def wait(
        self,
        timeout: float | None = None,
        *,
        poll: float = 0.2,
        on_progress: Callable[[SessionStatus], None] | None = None,
    ) -> SessionStatus:
        """Block until the session is no longer running and return its final status.

        Raises
        ------
        SessionTimeoutError
            If ``timeout`` seconds pass first.
        SessionNotFoundError
            If there is no such session.
        """
        return observe.wait(self._ref, timeout, poll=poll, on_progress=on_progress)

    def watch(self, *, interval: float = 0.5, out: Any = None) -> SessionStatus:
        """Show live progress, a bar per stage, until the session ends; return its status.

        Works in a notebook (the output updates in place) and in a terminal.
        """
        from looprunner.views import display

        return display.watch(self, interval=interval, out=out)

    def output(self, lines: int = 50) -> tuple[str, list[str]]:
        """Return where the output comes from (the backend, or ``engine.log``) and its lines.

        While the session runs on a backend that shows live output (tmux's pane), that;
        otherwise ``engine.log``, which keeps everything the engine printed.
        """
        return observe.output(self._ref, lines)

    def follow_output(self, *, interval: float = 0.25) -> Iterator[str]:
        """Yield what the engine prints from now until the session stops running."""
        return observe.follow_output(self._ref, interval=interval)

    def tail(
        self, *, follow: bool = False, interval: float = 0.25, offset: int = 0
    ) -> Iterator[Event]:
        """Yield the recorded events, then (with ``follow``) new ones until the session ends.

        ``offset`` skips the first bytes of the log (a follower that already showed the
        backlog starts at the log's size then).
        """
        return observe.tail(self._ref, follow_on=follow, interval=interval, offset=offset)

    def queue_remaining(self) -> int | None:
        """Return how many items the current stage's queue holds, if it is a queue stage."""
        return observe.queue_remaining(self._ref)

    def event_log_position(self) -> int:
        """Return where the event log ends now (pass it to ``tail(offset=...)``)."""
        return size(self.paths.events_file)

    def pipeline(self) -> Pipeline:
        """Return the resolved pipeline this session runs (``pipeline.yaml`` of its run).

        Raises
        ------
        ConfigError
            If the run has no readable pipeline file.
        """
        return observe.pipeline(self._ref)

    def attach_command(self) -> list[str]:
        """Return the command that attaches a terminal to this live session.

        Raises
        ------
        SessionError
            If the session's backend has no live session to attach to, or cannot attach.
        """
        self._ref.refuse_kept("attached to")
        current = self.status()
        backend = self._ref.backend(current.state)
        if not current.resources.tmux or not isinstance(backend, Attachable):
            what = current.health.value
            where = (
                f"its backend ({backend.name}) cannot attach a terminal"
                if backend is not None and not isinstance(backend, Attachable)
                else f"there is no live {self.where()} (it is {what})"
            )
            raise SessionError(
                f"cannot attach to {self.name!r}: {where}; "
                f"try 'looprunner monitor {self.name}' or 'looprunner status {self.name}'",
                session=self.name,
            )
        return backend.attach_argv(self.name, self.project)

    # ------------------------------------------------------------------ control

    def kill(self, *, grace: float | None = None) -> SessionStatus:
        """Stop the session: engine and agent group ended, state ``killed``, history kept.

        Raises
        ------
        SessionNotFoundError
            If there is no such session.
        SessionError
            If the session already finished.
        """
        from looprunner.session import control

        self._ref.refuse_kept("killed")
        return control.kill(self._ref, in_process=self._in_process, grace=grace)

    # ------------------------------------------------------------------ listing

    @classmethod
    def names_on_disk(cls, project: str | Path = ".") -> list[str]:
        """Return the names that have a run directory or a lock file (no backend asked)."""
        return listing.names_on_disk(ProjectPaths.of(project))

    @classmethod
    def list(
        cls,
        project: str | Path = ".",
        *,
        plugin_manager: pluggy.PluginManager | None = None,
        health: HealthFilter = None,
        stage: str | None = None,
        since: Since = None,
        sort: str | None = None,
    ) -> SessionList:
        """Return the status of every session in the project, by name.

        Each backend the project's sessions use is asked once. The list shows itself as
        a table in Jupyter and in a REPL, with the columns of ``looprunner list``.
        ``health`` (``"running,failed"`` or a list), ``stage``, ``since`` (``"2h"``, a
        date, a ``datetime`` or ``timedelta``) and ``sort`` (``name``, ``age``, ``cost``)
        are ``list``'s options (see :func:`looprunner.session.selection.select`); a bad
        value raises ``UsageError`` naming it, before any session is looked at.
        """
        from looprunner.session.selection import select
        from looprunner.views.display import SessionList

        select([], health=health, since=since, sort=sort)  # refuse bad values before looking
        found = listing.statuses(project, Plugins(plugin_manager))
        return SessionList(select(found, health=health, stage=stage, since=since, sort=sort))
