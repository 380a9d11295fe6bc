"""Starting and resuming: check, take the lock, prepare the run, hand the engine over.

The launcher holds the session's lock while it prepares, so two launchers never race;
before it lets go it writes a launch record into the lock file (a token the engine must
find there, see :mod:`looprunner.store.holders`), so whoever takes the lock before the
engine does sees that an engine is on its way, and an overtaken engine runs nothing. A
refused start leaves nothing behind; a start whose engine never came up removes what it
made.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import attrs

from looprunner import convert, handoff, procinfo
from looprunner.builtin.defaults import STAGE_TYPE
from looprunner.engine.redact import Redactor
from looprunner.errors import (
    BackendError,
    ForeignLockError,
    ProgramMissingError,
    SessionConflictError,
)
from looprunner.models import Pipeline, RunState, RunStatus, Stage
from looprunner.protocols import (
    Backend,
    EngineFactory,
    InProcess,
    LaunchChecking,
    LaunchSpec,
    MachineChecking,
    NestedStages,
    SessionAges,
    StageValidating,
    describe,
    handoff_of,
)
from looprunner.session import backend_options, worktrees
from looprunner.session.ref import SessionRef
from looprunner.store import holders
from looprunner.store import lock as lockmod
from looprunner.store.atomic import current_umask, write_atomic
from looprunner.store.worktree import write_worktree

#: how long ``start`` waits for the engine to hold the lock and record ``running``
START_TIMEOUT = 60.0
#: how long the engine may take to hold the lock its launcher is releasing (seconds); a
#: backend session younger than this plus a margin may be an engine that is starting
ENGINE_LOCK_TIMEOUT = 10.0
ORPHAN_GRACE = ENGINE_LOCK_TIMEOUT + 5
ORPHAN_GRACE_ENV = "LOOPRUNNER_ORPHAN_GRACE"


def orphan_grace() -> float:
    """Seconds before a backend session without an engine counts as orphaned."""
    try:
        return float(os.environ.get(ORPHAN_GRACE_ENV, ORPHAN_GRACE))
    except ValueError:
        return ORPHAN_GRACE


def check(ref: SessionRef, pipeline: Pipeline) -> None:
    """Raise if ``pipeline`` cannot run here (unknown type or provider, missing program).

    A name or option a stage file gets wrong is reported at its line in that file.
    """
    registries = ref.plugins.registries
    stages = [node.stage for node in pipeline.nodes]
    while stages:
        stage = stages.pop(0)
        with convert.located(stage.source, ("type",)):
            stage_type = registries.stage_types.get(stage.type or STAGE_TYPE)
        with convert.located(stage.source, ("options",)):
            built = stage_type(stage)
            built.validate()
        if isinstance(built, NestedStages):
            stages.extend(built.nested_stages())
        if stage.provider is not None or (stage.type or STAGE_TYPE) == STAGE_TYPE:
            # a type of a plugin's that sets no provider may run no agent at all
            with convert.located(stage.source, ("provider",)):
                provider = registries.providers.get(stage.provider_name)()
            if isinstance(provider, StageValidating):  # the definition, before the machine
                with convert.located(stage.source, ("model",)):
                    provider.validate(stage)
            provider.check(stage)
            _check_command_path(stage, ref.paths.project)
        with convert.located(stage.source, ("termination", "type")):
            termination = registries.terminations.get(stage.termination.type)
        strategy = termination(stage.termination)
        strategy.validate()
        if isinstance(strategy, MachineChecking):  # facts about this machine, not the file
            strategy.check()


def _check_command_path(stage: Stage, project: Path) -> None:
    """Refuse a ``command:`` whose program is a path that does not exist.

    Agents run in the project folder, so a relative path is looked up there now, not
    when the first iteration fails. (A bare program name is the provider's to look up
    on PATH.)
    """
    if not stage.command or "/" not in stage.command[0]:
        return
    program = Path(stage.command[0]).expanduser()
    where = program if program.is_absolute() else project / program
    if not where.is_file():
        raise ProgramMissingError(
            f"stage {stage.name!r}: command {stage.command[0]!r} not found ({where})"
        )


def start(
    ref: SessionRef,
    pipeline: Pipeline,
    runner: Backend,
    *,
    force: bool,
    env: Mapping[str, str] | None,
    engine_factory: EngineFactory,
    background: bool,
    worktree: bool | None = None,
) -> None:
    """Start ``pipeline`` as a new run of the session on ``runner``.

    ``worktree`` runs its agents in a git worktree of their own (None: as the pipeline
    says, see :mod:`looprunner.session.worktrees`).
    """
    check(ref, pipeline)
    wanted = pipeline.wants_worktree if worktree is None else worktree
    if wanted != pipeline.wants_worktree:  # pipeline.yaml says what ran (restart reads it)
        pipeline = worktrees.asking(pipeline, wanted)
    planned = worktrees.plan(ref.project, ref.name) if wanted else None
    lock = take_lock(ref, "started")
    try:
        if planned is not None and (force or not ref.paths.run_dir.exists()):
            worktrees.refuse_dirty(planned)  # before the old run is moved: nothing changes
        refuse_or_move_aside(ref, runner, force=force)
    except BaseException:
        # a refused start leaves nothing behind: not even the lock file it made
        lock.release(remove=True)
        raise
    try:
        made = worktrees.make(planned) if planned is not None else None
        ref.paths.run_dir.mkdir(parents=True)
        if made is not None:
            write_worktree(ref.paths.run_dir, made)
        # secrets typed into --context never reach the disk either (the agents then
        # see [redacted:NAME] where the value was: they have the variable itself)
        redact = Redactor(os.environ if env is None else env).text
        write_atomic(ref.paths.pipeline_file, redact(convert.dump_pipeline(pipeline)))
        spawn(
            ref,
            runner,
            lock,
            env=env,
            resumes=None,
            engine_factory=engine_factory,
            background=background,
        )
    except BaseException:
        if lock.held:
            lock.release(remove=True)  # failed before the launch: nobody else knows of it
        if not ref.paths.state_file.exists():  # the engine never ran: undo the start
            shutil.rmtree(ref.paths.run_dir, ignore_errors=True)
            if planned is not None:
                worktrees.undo(planned)
        raise


def take_lock(ref: SessionRef, verb: str) -> lockmod.SessionLock:
    """Hold the session lock while preparing a launch, so two launchers never race.

    Refused (exit 3) while an engine holds the lock, while another launch hands over to
    its engine (its record in the lock file, its launcher alive), and — saying who —
    while something that is no looprunner process of this session holds the lock file.
    ``verb`` says what was refused ("started", "resumed"). The caller removes the lock
    file when it gives up before launching (``release(remove=True)``): the record it
    now holds names a launch that will not happen.
    """
    lock = lockmod.SessionLock(ref.paths.lock_file)
    if not lock.acquire(timeout=0.5):
        refuse_foreign(ref, verb)
        raise SessionConflictError(
            f"session {ref.name!r} is already running; see 'looprunner status {ref.name}'",
            session=ref.name,
        )
    if holders.pending_launch(lock.metadata()) is not None:
        lock.release()  # the record stays: that launch's engine must find it
        raise SessionConflictError(
            f"session {ref.name!r} is already running (its engine is starting)",
            session=ref.name,
        )
    # from now on the lock file says who holds it: a launch, not a stranger
    holders.new_launch(lock, resumes=None)
    return lock


def refuse_foreign(ref: SessionRef, verb: str) -> None:
    """Raise :class:`ForeignLockError` if a stranger holds the session's lock file."""
    view = holders.look(ref.paths.lock_file)
    if view.foreign is not None:
        raise ForeignLockError(
            f"session {ref.name!r} cannot be {verb}: {view.foreign.sentence(ref.paths.lock_file)}",
            session=ref.name,
            pid=view.foreign.pid,
            user=view.foreign.user,
        )


def refuse_in_the_way(ref: SessionRef, runner: Backend) -> None:
    """Refuse when the backend already holds a session of this name."""
    if isinstance(runner, LaunchChecking):
        runner.check_launch(ref.name, ref.project)
    live = runner.sessions(ref.project)
    if not live or ref.name not in live:
        return
    created = (
        (runner.created(ref.project) or {}).get(ref.name)
        if isinstance(runner, SessionAges)
        else None
    )
    if created is not None and time.time() - created < orphan_grace():
        # another start launched it an instant ago; its engine is starting
        raise SessionConflictError(
            f"session {ref.name!r} is already running (its engine is starting)",
            session=ref.name,
        )
    raise SessionConflictError(
        f"{describe(runner, ref.name)} exists but no engine holds the lock; "
        "run 'looprunner cleanup --fix' first",
        session=ref.name,
    )


def refuse_or_move_aside(ref: SessionRef, runner: Backend, *, force: bool) -> None:
    """Refuse a start over a live or finished run; with ``force``, move the old run aside."""
    recorded = ref.read_state() if ref.paths.run_dir.exists() else None
    if (
        recorded is not None
        and not recorded.status.finished
        and procinfo.is_alive(recorded.pid, recorded.pid_start_time, recorded.boot_id)
    ):
        raise SessionConflictError(
            f"session {ref.name!r} is still running (engine pid {recorded.pid}) "
            "although its lock file is missing",
            session=ref.name,
        )
    refuse_in_the_way(ref, runner)
    if not ref.paths.run_dir.exists():
        return
    if not force:
        state = ref.read_state()
        what = (
            f"finished ({state.status.value})"
            if state and state.status.finished
            else "crashed or interrupted"
        )
        resumable = (
            "" if state and state.status is RunStatus.COMPLETE else ", or 'looprunner resume'"
        )
        raise SessionConflictError(
            f"session {ref.name!r} already exists and is {what}; use --force to move the "
            f"old run aside and start again{resumable}",
            session=ref.name,
        )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    aside = ref.paths.run_dir.with_name(f"{ref.name}.{stamp}")
    n = 1
    while aside.exists():
        n += 1
        aside = ref.paths.run_dir.with_name(f"{ref.name}.{stamp}-{n}")
    ref.paths.run_dir.rename(aside)


def engine_argv(
    ref: SessionRef, backend: str, *, resume: bool, launch_token: str | None = None
) -> tuple[str, ...]:
    """Return the engine's command line (``python -m looprunner engine ...``)."""
    argv = [
        sys.executable,
        "-m",
        "looprunner",
        "--project",
        str(ref.project),
        "engine",
        "--session",
        ref.name,
        "--backend",
        backend,
    ]
    if resume:
        argv.append("--resume")
    if launch_token is not None:
        argv += ["--launch-token", launch_token]
    return tuple(argv)


def spawn(
    ref: SessionRef,
    runner: Backend,
    lock: lockmod.SessionLock,
    *,
    env: Mapping[str, str] | None,
    resumes: RunState | None,
    engine_factory: EngineFactory,
    background: bool,
) -> None:
    """Start the engine; ``lock`` is held on entry and released once it may take it.

    ``resumes`` is the state a resume decided on (None for a start): the engine takes
    over that state or none. A launch that fails is withdrawn: its record is removed
    from the lock file, so nobody waits for an engine that will not come.
    """
    environment = dict(os.environ if env is None else env)
    previous = ref.read_state()
    resume = resumes is not None
    token = holders.new_launch(lock, resumes=resumes)
    # later commands about this session ask the backend set as this launch sets it
    backend_options.record(ref.paths.run_dir, ref.launch_options)
    spec = LaunchSpec(
        session=ref.name,
        project=ref.project,
        argv=engine_argv(ref, runner.name, resume=resume, launch_token=token),
        env=environment,
        resume=resume,
        launch_token=token,
        options=dict(ref.launch_options),
    )
    try:
        if isinstance(runner, InProcess):
            runner.bind(engine_factory, background=background)
            lock.release()
            runner.launch(spec)
            deadline = time.monotonic() + START_TIMEOUT
            while runner.running() and not runner.started() and time.monotonic() < deadline:
                time.sleep(0.01)  # the engine takes the lock and records its state
            return
        try:
            transport = handoff_of(runner)
            handed = {**environment, handoff.UMASK_KEY: f"{current_umask():o}"}
            path = handoff.prepare(transport, ref.paths.run_dir, handed)
            flag = handoff.FLAGS[transport]
            try:
                runner.launch(attrs.evolve(spec, argv=(*spec.argv, flag, str(path))))
            except BaseException:
                handoff.discard(path)  # a refused launch leaves nothing behind
                raise
            if not handoff.deliver(transport, path, handed, timeout=START_TIMEOUT):
                runner.stop(ref.name, ref.project)
                raise BackendError(
                    f"the engine of {ref.name!r} did not start: {ref.log_tail() or 'no output'}"
                )
        finally:
            lock.release()
        wait_started(ref, runner, previous_pid=previous.pid if previous else None, token=token)
    except BaseException:
        withdraw(ref, token)
        raise


def withdraw(ref: SessionRef, token: str) -> None:
    """Remove a launch's record from the lock file, if the lock is free and it is there."""
    if not ref.paths.lock_file.exists():
        return  # nothing to withdraw; acquiring would create an empty lock file
    lock = lockmod.SessionLock(ref.paths.lock_file)
    try:
        if not lock.acquire(timeout=0):
            return  # an engine holds it: the record is consumed already
    except OSError:
        return
    launch = holders.launch_of(lock.metadata())
    lock.release(remove=launch is not None and launch.get("token") == token)


def wait_started(
    ref: SessionRef, backend: Backend, *, previous_pid: int | None, token: str | None = None
) -> None:
    """Return once the engine holds the lock (or has already finished its run).

    Looks at the lock and state often (cheap) and asks the backend now and then (a
    process each time for tmux), so a hundred starts at once do not starve their own
    engines. An engine that has not started when time runs out has its backend session
    removed, so a failed start leaves nothing running.
    """

    def recorded() -> bool:
        """Tell whether the new engine wrote its state (whatever became of it since)."""
        state = ref.read_state()
        return state is not None and state.pid != previous_pid

    def started() -> bool:
        state = ref.read_state()
        if state is None or state.pid == previous_pid:
            return False
        held = lockmod.probe(ref.paths.lock_file).held
        # running with the lock held, or already through a short run
        return (held and state.status is RunStatus.RUNNING) or state.status.finished

    deadline = time.monotonic() + START_TIMEOUT
    pause, next_backend_look = 0.01, time.monotonic() + 0.5
    while time.monotonic() < deadline:
        if started():
            return
        if time.monotonic() >= next_backend_look:
            next_backend_look = time.monotonic() + 0.5
            live = backend.sessions(ref.project)
            held = lockmod.probe(ref.paths.lock_file).held
            if not held and live is not None and ref.name not in live:
                if recorded():
                    return  # it ran and has already ended (or died): status tells
                overtaken(ref, token)
                break  # the engine ended before recording anything
        time.sleep(pause)
        pause = min(pause * 1.5, 0.1)
    if started():
        return
    backend.stop(ref.name, ref.project)
    raise BackendError(f"the engine of {ref.name!r} did not start: {ref.log_tail() or 'no output'}")


def overtaken(ref: SessionRef, token: str | None) -> None:
    """Raise if another command took the lock from this launch before its engine did.

    Its engine then exits without running (it finds no record of its launch); say what
    became of the session instead of "did not start".
    """
    if token is None:
        return
    launch = holders.launch_of(lockmod.read_metadata(ref.paths.lock_file))
    if launch is not None and launch.get("token") == token:
        return
    state = ref.read_state()
    now = f"it is {state.status.value} now" if state is not None else "it has no state"
    raise SessionConflictError(
        f"session {ref.name!r} was not started: another command took its lock while its "
        f"engine was starting ({now}); see 'looprunner status {ref.name}'",
        session=ref.name,
    )
