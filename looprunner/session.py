"""Session: the composition root that wires definitions, store, engine and backends.

Everything the command line and notebooks do goes through this class.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import pluggy

from looprunner import handoff, procinfo
from looprunner.engine.redact import Redactor
from looprunner.errors import (
    BackendError,
    LooprunnerError,
    SessionConflictError,
    SessionError,
    SessionNotFoundError,
    SessionTimeoutError,
)
from looprunner.health import derive_health

if TYPE_CHECKING:
    from looprunner.display import SessionList
from looprunner.models import (
    Event,
    Health,
    LockInfo,
    Pipeline,
    Resources,
    RunState,
    RunStatus,
    SessionStatus,
    Stage,
    events,
)
from looprunner.names import (
    ProjectPaths,
    SessionPaths,
    is_valid_session_name,
    validate_session_name,
)
from looprunner.plugins import Registries, make_plugin_manager
from looprunner.protocols import Backend, LaunchSpec
from looprunner.store import lock as lockmod
from looprunner.store.atomic import write_atomic
from looprunner.store.events import EventLog, iter_events, utc_now
from looprunner.store.state import read_state, write_state

#: how long ``start`` waits for the engine to hold the lock and record ``running``
START_TIMEOUT = 60.0
#: how long ``kill`` waits for an engine to end after SIGTERM before using SIGKILL
KILL_TIMEOUT = 15.0


def _now_stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S")


class Session:
    """One named session in a project.

    Parameters
    ----------
    name:
        The session name (validated: lower-case letters, digits, single hyphens).
    project:
        The project folder; state lives in its ``.claude/`` (or ``LOOPRUNNER_STATE_DIR``).
    """

    def __init__(
        self,
        name: str,
        project: str | Path = ".",
        *,
        plugin_manager: pluggy.PluginManager | None = None,
    ) -> None:
        self.name = validate_session_name(name)
        self.project_paths = ProjectPaths.of(project)
        self.paths: SessionPaths = self.project_paths.session(name)
        self._pm = plugin_manager
        self._registries: Registries | None = None
        self._inline: Any = None

    def __repr__(self) -> str:
        return f"Session({self.name!r}, project={str(self.paths.project)!r})"

    def _repr_html_(self) -> str:
        from looprunner.display import html_table

        return html_table([self.status()])

    def __str__(self) -> str:
        from looprunner.display import progress_lines

        return "\n".join(progress_lines(self.status()))

    def watch(self, *, interval: float = 0.5, out: Any = None) -> SessionStatus:
        """Show live progress, a bar per stage, until the session ends; return its status.

        Works in a notebook (the output updates in place) and in a terminal.
        """
        from looprunner.display import watch

        return watch(self, interval=interval, out=out)

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

    @property
    def registries(self) -> Registries:
        """The providers, terminations and backends this session can use."""
        if self._registries is None:
            self._registries = Registries(self._pm or make_plugin_manager())
        return self._registries

    # ------------------------------------------------------------------ start

    @classmethod
    def start(
        cls,
        name: str,
        pipeline: Pipeline | Stage,
        project: str | Path = ".",
        *,
        backend: str | Backend = "tmux",
        force: bool = False,
        background: bool = False,
        env: Mapping[str, str] | None = None,
        plugin_manager: pluggy.PluginManager | None = None,
    ) -> Session:
        """Start a session running ``pipeline`` and return it.

        With the ``tmux`` backend this returns once the engine holds the lock and has
        recorded ``running``; with ``inline`` it returns when the session has ended
        (or at once with ``background=True``, the engine running in a thread).

        Raises
        ------
        SessionConflictError
            The session is running, or has a run directory and ``force`` is not set.
        ConfigError, ProviderError
            The pipeline cannot run here; nothing was written.
        """
        session = cls(name, project, plugin_manager=plugin_manager)
        if isinstance(pipeline, Stage):
            pipeline = Pipeline.loop(pipeline)
        session._launch(pipeline, backend=backend, force=force, background=background, env=env)
        return session

    def check(self, pipeline: Pipeline) -> None:
        """Raise if ``pipeline`` cannot run here (unknown provider, missing program, ...).

        A name a stage file gets wrong is reported at its line in that file.
        """
        from looprunner.convert import located

        for node in pipeline.nodes:
            stage = node.stage
            with located(stage.source, ("provider",)):
                provider = self.registries.providers.get(stage.provider_name)()
            provider.check(stage)
            with located(stage.source, ("termination", "type")):
                termination = self.registries.terminations.get(stage.termination.type)
            strategy = termination(stage.termination)
            strategy.validate()
            machine_check = getattr(strategy, "check", None)
            if machine_check is not None:  # optional: facts about this machine, not the file
                machine_check()

    def _backend(self, backend: str | Backend, *, background: bool = False) -> Backend:
        if not isinstance(backend, str):
            return backend
        cls = self.registries.backends.get(backend)
        if backend == "inline":
            return cls(background=background, registries=self.registries)  # type: ignore[no-any-return]
        return cls()  # type: ignore[no-any-return]

    def _launch(
        self,
        pipeline: Pipeline,
        *,
        backend: str | Backend,
        force: bool,
        background: bool,
        env: Mapping[str, str] | None,
    ) -> None:
        from looprunner import convert

        self.check(pipeline)
        runner = self._backend(backend, background=background)
        lock = self._take_lock()
        try:
            self._refuse_or_move_aside(force=force, backend=runner)
        except BaseException:
            # a refused start leaves nothing behind: not even the lock file it made
            lock.release(remove=True)
            raise
        try:
            self.paths.run_dir.mkdir(parents=True)
            # secrets typed into --context never reach the disk either (the agents then
            # see [redacted:NAME] where the value was: they have the variable itself)
            redact = Redactor(os.environ if env is None else env).text
            write_atomic(self.paths.pipeline_file, redact(convert.dump_pipeline(pipeline)))
            self._spawn(runner, lock, env=env, resume=False)
        except BaseException:
            if not self.paths.state_file.exists():  # the engine never ran: undo the start
                shutil.rmtree(self.paths.run_dir, ignore_errors=True)
                if lock.acquire(timeout=0):
                    lock.release(remove=True)
            raise

    def _take_lock(self) -> lockmod.SessionLock:
        """Hold the session lock while preparing a launch, so two launchers never race."""
        lock = lockmod.SessionLock(self.paths.lock_file)
        if not lock.acquire(timeout=0.5):
            raise SessionConflictError(
                f"session {self.name!r} is already running; see 'looprunner status {self.name}'",
                session=self.name,
            )
        return lock

    def _spawn(
        self,
        runner: Backend,
        lock: lockmod.SessionLock,
        *,
        env: Mapping[str, str] | None,
        resume: bool,
    ) -> None:
        """Start the engine; ``lock`` is held on entry and released once it may take it."""
        environment = dict(os.environ if env is None else env)
        previous = self._read_state()
        spec = LaunchSpec(
            session=self.name,
            project=self.paths.project,
            argv=self._engine_argv(runner.name, resume=resume),
            env=environment,
            resume=resume,
        )
        if runner.name == "inline":
            lock.release()
            self._inline = runner
            runner.launch(spec)
            thread = getattr(runner, "thread", None)
            deadline = time.monotonic() + START_TIMEOUT
            while thread is not None and thread.is_alive() and time.monotonic() < deadline:
                if getattr(getattr(runner, "engine", None), "state", None) is not None:
                    break  # the engine holds the lock and has recorded its state
                time.sleep(0.01)
            return
        try:
            fifo = handoff.create(self.paths.run_dir)
            runner.launch(attrs.evolve(spec, argv=(*spec.argv, "--env-fifo", str(fifo))))
            if not handoff.send(fifo, environment, timeout=START_TIMEOUT):
                runner.stop(self.name, self.paths.project)
                raise BackendError(
                    f"the engine of {self.name!r} did not start: {self._log_tail() or 'no output'}"
                )
        finally:
            lock.release()
        self._wait_started(runner, previous_pid=previous.pid if previous else None)

    def _engine_argv(self, backend: str, *, resume: bool = False) -> tuple[str, ...]:
        argv = [
            sys.executable,
            "-m",
            "looprunner",
            "--project",
            str(self.paths.project),
            "engine",
            "--session",
            self.name,
            "--backend",
            backend,
        ]
        if resume:
            argv.append("--resume")
        return tuple(argv)

    def _refuse_or_move_aside(self, *, force: bool, backend: Backend) -> None:
        recorded = self._read_state() if self.paths.run_dir.exists() else None
        if (
            recorded is not None
            and not recorded.status.finished
            and procinfo.is_alive(recorded.pid, recorded.pid_start_time, recorded.boot_id)
        ):
            raise SessionConflictError(
                f"session {self.name!r} is still running (engine pid {recorded.pid}) "
                "although its lock file is missing",
                session=self.name,
            )
        if backend.name == "tmux":
            owner = getattr(backend, "owner", None)
            holder = owner(self.name) if owner else None
            if holder == str(self.paths.project):
                from looprunner.maintenance import orphan_grace

                created = (backend.created(self.paths.project) or {}).get(self.name)  # type: ignore[attr-defined]
                if created is not None and time.time() - created < orphan_grace():
                    # another start launched it an instant ago; its engine is starting
                    raise SessionConflictError(
                        f"session {self.name!r} is already running (its engine is starting)",
                        session=self.name,
                    )
                raise SessionConflictError(
                    f"tmux session pipeline-{self.name} exists but no engine holds the lock; "
                    "run 'looprunner cleanup --fix' first",
                    session=self.name,
                )
            if holder is not None:
                whose = f"another project ({holder})" if holder else "no looprunner project"
                raise SessionConflictError(
                    f"tmux session pipeline-{self.name} already exists and belongs to {whose}; "
                    "choose another name",
                    session=self.name,
                )
        if not self.paths.run_dir.exists():
            return
        if not force:
            state = self._read_state()
            what = (
                f"finished ({state.status.value})"
                if state and state.status.finished
                else "crashed or interrupted"
            )
            raise SessionConflictError(
                f"session {self.name!r} already exists and is {what}; use --force to move the "
                f"old run aside and start again"
                + (
                    ""
                    if state and state.status is RunStatus.COMPLETE
                    else ", or 'looprunner resume'"
                ),
                session=self.name,
            )
        aside = self.paths.run_dir.with_name(f"{self.name}.{_now_stamp()}")
        n = 1
        while aside.exists():
            n += 1
            aside = self.paths.run_dir.with_name(f"{self.name}.{_now_stamp()}-{n}")
        self.paths.run_dir.rename(aside)

    def _wait_started(self, backend: Backend, *, previous_pid: int | None) -> None:
        """Return once the engine holds the lock (or has already finished its run).

        Looks at the lock and state often (cheap) and asks tmux now and then (a process
        each time), so a hundred starts at once do not starve their own engines. An
        engine that has not started when time runs out has its tmux session removed, so
        a failed start leaves nothing running.
        """

        def recorded() -> bool:
            """Tell whether the new engine wrote its state (whatever became of it since)."""
            state = self._read_state()
            return state is not None and state.pid != previous_pid

        def started() -> bool:
            state = self._read_state()
            if state is None or state.pid == previous_pid:
                return False
            held = lockmod.probe(self.paths.lock_file).held
            # running with the lock held, or already through a short run
            return (held and state.status is RunStatus.RUNNING) or state.status.finished

        deadline = time.monotonic() + START_TIMEOUT
        pause, next_tmux_look = 0.01, time.monotonic() + 0.5
        while time.monotonic() < deadline:
            if started():
                return
            if time.monotonic() >= next_tmux_look:
                next_tmux_look = time.monotonic() + 0.5
                live = backend.sessions(self.paths.project)
                held = lockmod.probe(self.paths.lock_file).held
                if not held and live is not None and self.name not in live:
                    if recorded():
                        return  # it ran and has already ended (or died): status tells
                    break  # the engine ended before recording anything
            time.sleep(pause)
            pause = min(pause * 1.5, 0.1)
        if started():
            return
        backend.stop(self.name, self.paths.project)
        raise BackendError(
            f"the engine of {self.name!r} did not start: {self._log_tail() or 'no output'}"
        )

    def _log_tail(self, lines: int = 5) -> str:
        try:
            text = self.paths.engine_log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])

    # ------------------------------------------------------------------ observe

    def _read_state(self) -> RunState | None:
        try:
            return read_state(self.paths.state_file)
        except ValueError:
            return None

    def status(self, *, tmux_sessions: set[str] | object | None = ...) -> SessionStatus:
        """Return the session's health and state, from lock, state file and tmux."""
        probe = lockmod.probe(self.paths.lock_file)
        unreadable = False
        try:
            state = read_state(self.paths.state_file)
        except ValueError:
            state, unreadable = None, True
        if tmux_sessions is ...:
            tmux_sessions = _tmux_sessions(None, self.paths.project)
        live = tmux_sessions if isinstance(tmux_sessions, set) else None
        tmux_present = None if live is None else self.name in live
        engine_alive = (
            not probe.held
            and state is not None
            and not state.status.finished
            and procinfo.is_alive(state.pid, state.pid_start_time, state.boot_id)
        )
        health, detail = derive_health(
            state=state,
            lock_held=probe.held,
            tmux_present=tmux_present,
            state_unreadable=unreadable,
            engine_alive=engine_alive,
        )
        meta = probe.metadata
        pid = meta.get("pid") if isinstance(meta.get("pid"), int) else None
        lock_info = LockInfo(
            present=probe.present,
            held=probe.held,
            pid=pid,
            pid_alive=procinfo.is_alive(pid, meta.get("pid_start_time"), meta.get("boot_id"))
            if pid
            else None,
            host=meta.get("host"),
            started_at=meta.get("started_at"),
        )
        return SessionStatus(
            session=self.name,
            health=health,
            resources=Resources(
                lock=probe.present, state=state is not None or unreadable, tmux=tmux_present
            ),
            state=state,
            lock=lock_info,
            detail=detail,
        )

    def events(self, *, last: int | None = None) -> Iterator[Event]:
        """Iterate over the session's recorded events, oldest first.

        ``last=N`` gives only the last N, read from the end of the log (fast on any size).
        """
        if last is not None:
            from looprunner.store.events import last_events

            return iter(last_events(self.paths.events_file, last))
        return iter_events(self.paths.events_file)

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
        deadline = None if timeout is None else time.monotonic() + timeout
        tmux = _tmux_sessions(None, self.paths.project)
        orphaned_before = False
        while True:
            status = self.status(tmux_sessions=tmux)
            if status.health is Health.NOT_FOUND:
                raise SessionNotFoundError(f"no session named {self.name!r}", session=self.name)
            if on_progress is not None:
                on_progress(status)
            if status.health not in (Health.RUNNING, Health.UNKNOWN):
                if status.health is not Health.ORPHANED or orphaned_before:
                    return status
                # an engine that just exited leaves its tmux session for an instant:
                # look once more before calling it orphaned
                orphaned_before = True
                tmux = _tmux_sessions(None, self.paths.project)
                continue
            if deadline is not None and time.monotonic() >= deadline:
                raise SessionTimeoutError(
                    f"session {self.name!r} still {status.health.value} after {timeout:g}s",
                    session=self.name,
                )
            time.sleep(
                poll if deadline is None else max(0.0, min(poll, deadline - time.monotonic()))
            )
            if status.resources.tmux:
                tmux = _tmux_sessions(None, self.paths.project)

    def output(self, lines: int = 50) -> tuple[str, list[str]]:
        """Return where the output comes from (``tmux`` or ``engine.log``) and its last lines.

        While the session runs in tmux, the live pane; otherwise ``engine.log``, which
        keeps everything the engine printed after the tmux session has gone.
        """
        from looprunner.store.logs import last_lines

        status = self.status()
        if status.health is Health.RUNNING and status.resources.tmux:
            try:
                pane = self._backend("tmux").capture(self.name, lines)  # type: ignore[attr-defined]
            except LooprunnerError:
                pane = None
            if pane is not None:
                return "tmux", list(pane)
        return "engine.log", last_lines(self.paths.engine_log, lines)

    def follow_output(self, *, interval: float = 0.25) -> Iterator[str]:
        """Yield what the engine prints from now until the session stops running."""
        from looprunner.store.logs import follow, size

        def done() -> bool:
            return self.status().health is not Health.RUNNING

        for chunk in follow(
            self.paths.engine_log, offset=size(self.paths.engine_log), done=done, interval=interval
        ):
            yield chunk.decode("utf-8", "replace")

    def tail(
        self, *, follow: bool = False, interval: float = 0.25, offset: int = 0
    ) -> Iterator[Event]:
        """Yield the recorded events, then (with ``follow``) new ones until the session ends.

        ``offset`` skips the first bytes of the log (a follower that already showed the
        backlog starts at the log's size then).
        """
        from looprunner.store.events import parse_event_line
        from looprunner.store.logs import follow as follow_file

        if not follow:
            yield from self.events()
            return

        def done() -> bool:
            return self.status().health is not Health.RUNNING

        pending = b""
        for chunk in follow_file(
            self.paths.events_file, offset=offset, done=done, interval=interval
        ):
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for raw in complete:
                event = parse_event_line(raw) if raw.strip() else None
                if event is not None:
                    yield event

    def queue_remaining(self) -> int | None:
        """Return how many items the current stage's queue holds, if it is a queue stage.

        None when the stage's termination has no queue, or the queue cannot be asked.
        """
        from looprunner import convert
        from looprunner.protocols import StageProgress

        state = self._read_state()
        if state is None or not self.paths.pipeline_file.exists():
            return None
        try:
            pipeline = convert.load_resolved_pipeline(self.paths.pipeline_file)
            node = pipeline.nodes[min(state.current_stage, len(pipeline.nodes) - 1)]
            if node.stage.termination.type in ("fixed", "judgment"):
                return None  # no queue to ask (and no need to load the plugins)
            termination = self.registries.terminations.get(node.stage.termination.type)(
                node.stage.termination
            )
            remaining = getattr(termination, "remaining", None)
            if remaining is None:
                return None
            progress = StageProgress(
                completed=state.iteration_completed,
                cap=node.cap,
                history=(),
                project=self.paths.project,
                session=self.name,
            )
            return len(remaining(progress))
        except Exception:  # a plugin's queue that cannot be asked must not break status
            return None

    def event_log_position(self) -> int:
        """Return where the event log ends now (pass it to ``tail(offset=...)``)."""
        from looprunner.store.logs import size

        return size(self.paths.events_file)

    def pipeline(self) -> Pipeline:
        """Return the resolved pipeline this session runs (``pipeline.yaml`` of its run).

        Raises
        ------
        ConfigError
            If the run has no readable pipeline file.
        """
        from looprunner import convert

        return convert.load_resolved_pipeline(self.paths.pipeline_file)

    def attach_command(self) -> list[str]:
        """Return the tmux command that attaches a terminal to this live session.

        Raises
        ------
        SessionError
            If the session has no live tmux session to attach to.
        """
        status = self.status()
        if not status.resources.tmux:
            what = status.health.value
            raise SessionError(
                f"session {self.name!r} has no live tmux session to attach to (it is {what}); "
                f"try 'looprunner monitor {self.name}' or 'looprunner status {self.name}'",
                session=self.name,
            )
        command: list[str] = self._backend("tmux").attach_argv(self.name)  # type: ignore[attr-defined]
        return command

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
        status = self.status()
        if status.health is Health.NOT_FOUND:
            raise SessionNotFoundError(f"no session named {self.name!r}", session=self.name)
        if status.finished:
            raise SessionError(
                f"session {self.name!r} is not running (it is {status.health.value})",
                session=self.name,
            )
        if status.health is Health.RUNNING:
            self._stop_engine(status, timeout=KILL_TIMEOUT if grace is None else grace + 5)
        state = self._read_state()
        if state is not None and state.agent_pid:
            from looprunner.engine.process import kill_grace, stop_leftover_group

            stop_leftover_group(
                state.agent_pid,
                state.agent_start_time,
                state.boot_id,
                kill_grace() if grace is None else grace,
            )
        self._stop_tmux()
        self._record_killed()
        return self.status()

    def resume(
        self,
        *,
        backend: str | Backend | None = None,
        background: bool = False,
        env: Mapping[str, str] | None = None,
    ) -> Session:
        """Continue a crashed, failed or killed session from its last completed iteration.

        The interrupted iteration's leftovers are cleared and it runs again; completed
        iterations are never repeated. Returns this session (running, or finished with
        the inline backend).

        Raises
        ------
        SessionConflictError
            If the session is running, or a tmux session without an engine is in the way.
        SessionError
            If the session already completed, or its health cannot be known.
        """
        from looprunner import convert

        status = self.status()
        health = status.health
        if health is Health.NOT_FOUND:
            raise SessionNotFoundError(f"no session named {self.name!r}", session=self.name)
        if health is Health.RUNNING:
            raise SessionConflictError(f"session {self.name!r} is running", session=self.name)
        if health is Health.COMPLETE:
            raise SessionError(
                f"session {self.name!r} already completed; nothing to resume", session=self.name
            )
        if health is Health.ORPHANED:
            raise SessionConflictError(
                f"tmux session pipeline-{self.name} exists without an engine; "
                f"run 'looprunner kill {self.name} --yes' or 'looprunner cleanup --fix' first",
                session=self.name,
            )
        if health is Health.UNKNOWN:
            raise SessionError(f"cannot resume {self.name!r}: {status.detail}", session=self.name)
        if not self.paths.pipeline_file.exists():
            raise SessionError(
                f"session {self.name!r} has no pipeline.yaml in {self.paths.run_dir}; "
                "start it again with --force",
                session=self.name,
            )
        self.check(convert.load_resolved_pipeline(self.paths.pipeline_file))
        chosen = backend or (status.state.backend if status.state else "tmux")
        runner = self._backend(chosen, background=background)
        lock = self._take_lock()
        if runner.name == "tmux":
            live = runner.sessions(self.paths.project)
            if live and self.name in live:
                lock.release()
                raise SessionConflictError(
                    f"tmux session pipeline-{self.name} already exists", session=self.name
                )
        self._spawn(runner, lock, env=env, resume=True)
        return self

    def _stop_engine(self, status: SessionStatus, *, timeout: float) -> None:
        if self._inline is not None and self._inline.engine is not None:
            self._inline.engine.request_stop()
            if self._inline.thread is not None:
                self._inline.thread.join(timeout)
            return
        meta = lockmod.read_metadata(self.paths.lock_file)
        state = status.state
        if isinstance(meta.get("pid"), int):
            pid, started, boot = meta["pid"], meta.get("pid_start_time"), meta.get("boot_id")
        elif state is not None and state.pid:  # the lock file was deleted from under it
            pid, started, boot = state.pid, state.pid_start_time, state.boot_id
        else:
            return
        if not procinfo.is_alive(pid, started, boot):
            return
        if pid == os.getpid():
            raise SessionError(
                f"session {self.name!r} runs in this process; "
                "stop it through the Session that started it",
                session=self.name,
            )
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while procinfo.is_alive(pid, started, boot) and time.monotonic() < deadline:
            time.sleep(0.05)
        if procinfo.is_alive(pid, started, boot):
            os.kill(pid, signal.SIGKILL)
            while procinfo.is_alive(pid, started, boot) and time.monotonic() < deadline + 5:
                time.sleep(0.05)

    def _stop_tmux(self) -> None:
        try:
            backend = self._backend("tmux")
        except LooprunnerError:
            return
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            live = backend.sessions(self.paths.project)
            if not live or self.name not in live:
                return
            time.sleep(0.05)  # the engine just exited: its tmux session closes by itself
        backend.stop(self.name, self.paths.project)

    def _record_killed(self) -> None:
        """Mark a session whose engine is gone as killed (the lock makes us its writer)."""
        lock = lockmod.SessionLock(self.paths.lock_file)
        if not lock.acquire(timeout=2.0):
            raise SessionError(
                f"session {self.name!r} did not stop: its lock is still held", session=self.name
            )
        try:
            state = self._read_state()
            if state is None or state.status.finished:
                return
            now = utc_now()
            index = min(state.current_stage, len(state.stages) - 1)
            state = state.with_stage(
                index, attrs.evolve(state.stages[index], status=RunStatus.KILLED)
            )
            write_state(
                self.paths.state_file,
                attrs.evolve(
                    state,
                    status=RunStatus.KILLED,
                    finished_at=now,
                    updated_at=now,
                    completion_reason="killed",
                    iteration_started=None,
                    agent_pid=None,
                    agent_start_time=None,
                ),
            )
            EventLog(self.paths.events_file, self.name).append(
                events.SESSION_KILLED,
                stage=state.current.id,
                iteration=state.iteration or None,
                data={"by": "kill"},
            )
        finally:
            lock.release(remove=True)

    # ------------------------------------------------------------------ listing

    @classmethod
    def names_on_disk(cls, project: str | Path = ".") -> list[str]:
        """Return the names that have a run directory or a lock file (tmux not asked)."""
        paths = ProjectPaths.of(project)
        names: set[str] = set()
        if paths.runs.is_dir():
            names.update(p.name for p in paths.runs.iterdir() if is_valid_session_name(p.name))
        if paths.locks.is_dir():
            names.update(
                p.stem for p in paths.locks.glob("*.lock") if is_valid_session_name(p.stem)
            )
        return sorted(names)

    @classmethod
    def list(cls, project: str | Path = ".") -> SessionList:
        """Return the status of every session in the project, by name (tmux asked once).

        The list shows itself as a table in Jupyter and in a REPL.
        """
        from looprunner.display import SessionList

        paths = ProjectPaths.of(project)
        names = set(cls.names_on_disk(paths.project))
        tmux = _tmux_sessions(None, paths.project)
        if tmux:
            names.update(tmux)
        return SessionList(
            cls(name, paths.project).status(tmux_sessions=tmux) for name in sorted(names)
        )


def _tmux_sessions(registries: Registries | None, project: Path) -> set[str] | None:
    """Ask tmux once which of the project's sessions are live.

    The tmux session is one of the three resources every session is judged by, so this
    talks to the built-in tmux backend directly: looking at a session never needs the
    plugins loaded (which costs more than the look itself).
    """
    from looprunner.backends.tmux import TmuxBackend

    return TmuxBackend().sessions(project)


def session_names(statuses: list[SessionStatus]) -> list[str]:
    """Return the names in a list of statuses."""
    return [s.session for s in statuses]


def not_found(name: str, project: str | Path) -> SessionNotFoundError:
    """Build the not-found error, naming the sessions that do exist."""
    existing = session_names(Session.list(project))
    hint = f"; sessions here: {', '.join(existing)}" if existing else "; there are no sessions here"
    return SessionNotFoundError(f"no session named {name!r}{hint}", session=name)


def as_dict(status: SessionStatus) -> dict[str, Any]:
    """Return the ``--json`` shape of a status: state.json's fields, health, resources."""
    from looprunner import convert

    data: dict[str, Any] = (
        dict(convert.unstructure(status.state)) if status.state else {"session": status.session}
    )
    data["health"] = status.health.value
    data["resources"] = {
        "lock": status.resources.lock,
        "state": status.resources.state,
        "tmux": status.resources.tmux,
    }
    data["detail"] = status.detail
    if status.lock is not None:
        data["lock_info"] = convert.unstructure(status.lock)
    return data
