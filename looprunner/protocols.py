"""Typing-only contracts for the pluggable parts: stage types, providers, terminations, backends.

Built-ins implement these exactly as a third-party plugin would, and the rest of the
package uses every plugin class only through them. A backend's optional abilities are
small protocols of their own, checked with ``isinstance``: a backend that cannot attach
a terminal simply does not implement :class:`Attachable`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import attrs

from looprunner import handoff
from looprunner.errors import PluginError

if TYPE_CHECKING:  # annotations only: a backend or termination needs no model built
    from looprunner.models import (
        AgentCommand,
        AgentReport,
        AgentStatus,
        Check,
        Event,
        Invocation,
        IterationContext,
        SessionStatus,
        Stage,
        Termination,
    )

# ---------------------------------------------------------------------- stage types


@runtime_checkable
class StageType(Protocol):
    """Decides what one iteration of a stage does.

    The built-in ``agent`` type renders the prompt, runs the provider's agent and reads
    its ``status.json``; a plugin type may run no agent at all, or several.
    """

    name: ClassVar[str]

    def __init__(self, stage: Stage) -> None: ...

    def validate(self) -> None:
        """Raise :class:`~looprunner.errors.ConfigError` if ``stage.options`` are unusable.

        Called by ``lint``, ``dry-run`` and ``start`` before anything is written.
        """

    def run_iteration(self, ctx: IterationContext) -> AgentStatus:
        """Run one iteration and return its verdict (recorded like an agent's status)."""


@runtime_checkable
class NestedStages(Protocol):
    """A stage type that runs further stages (a parallel block runs its block's stages).

    ``start`` and ``dry-run`` check each of them as they check a pipeline's own stages
    (provider installed, termination usable), and ``lint`` lints them.
    """

    def nested_stages(self) -> Sequence[Stage]:
        """Return every stage this type will run, as it will run them."""


# ---------------------------------------------------------------------- providers


@runtime_checkable
class Provider(Protocol):
    """Turns one iteration into a command to run: Claude Code, Codex, any program."""

    name: ClassVar[str]

    def check(self, stage: Stage) -> None:
        """Raise :class:`~looprunner.errors.ProviderError` if the stage cannot run here.

        For example when its program is not installed or an option it needs is missing.
        """

    def command(self, invocation: Invocation) -> AgentCommand:
        """Return the program, its arguments, environment and stdin for this iteration."""


@runtime_checkable
class StageValidating(Protocol):
    """A provider that can refuse a stage's settings (a model it cannot run) up front.

    ``lint``, ``dry-run`` and ``start`` call :meth:`validate`; unlike
    :meth:`Provider.check` it judges only the definition, never this machine. A provider
    may also name other spellings it answers to in ``aliases: ClassVar[tuple[str, ...]]``.
    """

    def validate(self, stage: Stage) -> None:
        """Raise :class:`~looprunner.errors.ConfigError` if the stage's settings are unusable."""


@runtime_checkable
class Reporting(Protocol):
    """A provider whose program prints its work as JSON events, one object a line.

    The engine shows each event in engine.log as :meth:`render_event` puts it, keeps the
    whole stream as the iteration's ``transcript.jsonl``, and takes the final answer
    (``output.md``), tokens, cost, turns, session id and version from :meth:`report`.
    Lines that are not JSON objects are shown as printed and left out of the report.
    """

    def render_event(self, event: Mapping[str, Any]) -> str:
        """Return the readable text of one event for engine.log ('' to show nothing)."""

    def report(self, events: Sequence[Mapping[str, Any]]) -> AgentReport:
        """Return what the stream said of the run; fields it did not say are None."""


@runtime_checkable
class Diagnosing(Protocol):
    """A provider or backend that can say whether this machine can run it.

    ``looprunner doctor`` shows the answer: the program found and its version, missing
    credentials (variable names only, never values), what running as root implies.
    """

    def diagnose(self, env: Mapping[str, str]) -> Check:
        """Look at this machine and ``env`` (the caller's environment); change nothing."""


@runtime_checkable
class FailureClassifying(Protocol):
    """A provider that knows its program's failures better than the engine's patterns.

    When an agent exits non-zero, the engine asks :meth:`classify` before matching the
    output against the lines Claude Code and Codex print. The answer decides whether the
    run is retried (``provider_rate_limited``, ``provider_overloaded``) and what the
    failed iteration records.
    """

    def classify(self, exit_code: int, output: str) -> str | None:
        """Return this failure's class, or None to leave it to the engine's patterns.

        One of ``provider_rate_limited``, ``provider_overloaded``, ``provider_auth`` or
        ``provider_exit``; ``output`` is what the agent printed (its end, redacted).
        """


@runtime_checkable
class AuthExplaining(Protocol):
    """A provider that can say what to set or do when its agent could not authenticate."""

    def auth_hint(self, env: Mapping[str, str]) -> str:
        """Return one sentence naming the variables (names only) or the login to use."""


# ---------------------------------------------------------------------- terminations


@attrs.frozen
class StageProgress:
    """What a termination sees: the stage's own decisions so far, oldest first."""

    completed: int
    cap: int
    history: Sequence[AgentStatus]
    project: Path
    session: str


@runtime_checkable
class TerminationStrategy(Protocol):
    """Decides after each iteration whether a stage is done."""

    name: ClassVar[str]
    #: the reason recorded when the stage reaches its cap without deciding itself
    cap_reason: ClassVar[str]

    def __init__(self, spec: Termination) -> None: ...

    def validate(self) -> None:
        """Raise :class:`~looprunner.errors.ConfigError` if the spec is unusable."""

    def decide(self, progress: StageProgress) -> str | None:
        """Return a reason to stop now, or None to run another iteration.

        Called before every iteration (also right after a resume), so a decision must be
        derived from ``progress`` alone, never from memory of earlier calls.
        """


@runtime_checkable
class MachineChecking(Protocol):
    """A termination that needs something of this machine (a program on PATH).

    ``start`` and ``dry-run`` call :meth:`check`; ``lint`` does not, since it judges the
    definition only.
    """

    def check(self) -> None:
        """Raise a :class:`~looprunner.errors.LooprunnerError` if this machine cannot run it."""


@runtime_checkable
class QueueCounting(Protocol):
    """A termination backed by a work queue that can say how much is left."""

    def remaining(self, progress: StageProgress) -> Sequence[object]:
        """Return the items still queued (``status`` shows their count)."""


# ---------------------------------------------------------------------- backends


@attrs.frozen
class LaunchSpec:
    """How to start an engine: its argv, environment, and working folder.

    For a backend that runs the engine in another process, ``argv`` ends with
    ``--env-fifo PATH`` (or ``--env-file PATH``, see :class:`HandsOver`): the launcher
    hands the caller's environment to the engine through that FIFO or file, so the
    backend runs ``argv`` as given.

    ``launch_token`` is the token of the launch record the launcher wrote into the
    session's lock file (``argv`` carries it as ``--launch-token``): the engine runs
    only if that record is still there when it takes the lock. An in-process backend
    passes the spec to the engine factory, which gives the token to the engine.
    """

    session: str
    project: Path
    argv: tuple[str, ...]
    env: Mapping[str, str]
    resume: bool = False
    launch_token: str | None = None
    #: the backend's options for this launch (see :mod:`looprunner.backend_settings`);
    #: the backend was configured with them already
    options: Mapping[str, str] = attrs.field(factory=dict)


@runtime_checkable
class Backend(Protocol):
    """Where an engine process runs (a tmux session, the calling process, ...).

    Constructed with no arguments. A session records its backend's name in
    ``state.json``; every command asks that backend about it.
    """

    name: ClassVar[str]

    def launch(self, spec: LaunchSpec) -> None:
        """Start the engine; return once it is started (not finished) where possible."""

    def sessions(self, project: Path) -> set[str] | None:
        """Return the project's live sessions, or None if that cannot be known."""

    def stop(self, session: str, project: Path) -> bool:
        """Remove what the backend holds for the project's ``session``; return if any."""


@runtime_checkable
class Attachable(Protocol):
    """A backend a terminal can attach to (``looprunner attach``)."""

    def attach_argv(self, session: str, project: Path) -> list[str]:
        """Return the command that attaches the calling terminal to the session."""


@runtime_checkable
class OutputCapturing(Protocol):
    """A backend that can show a live session's recent output (``looprunner monitor``)."""

    def capture(self, session: str, project: Path, lines: int) -> list[str] | None:
        """Return the last ``lines`` lines the session shows, or None if it is gone."""


@runtime_checkable
class SessionAges(Protocol):
    """A backend that knows when each live session began.

    ``cleanup`` and ``start`` use it to spare a session whose engine is still starting.
    """

    def created(self, project: Path) -> dict[str, float] | None:
        """Return each live session's creation time (epoch seconds), or None if unknown."""


@runtime_checkable
class SessionExits(Protocol):
    """A backend that can keep a session after its engine process exited, and tells so.

    tmux does, when a user's configuration sets ``remain-on-exit``: the session stays
    with a dead pane. Such a session holds nothing, so ``cleanup`` repairs it at once
    (no orphan grace) and ``resume`` clears it instead of refusing.
    """

    def exited(self, project: Path) -> set[str] | None:
        """Return this project's sessions whose every process has exited (None: unknown)."""


@runtime_checkable
class LaunchChecking(Protocol):
    """A backend that can tell, before a launch, that something of its own is in the way."""

    def check_launch(self, session: str, project: Path) -> None:
        """Raise :class:`~looprunner.errors.SessionConflictError` if the name is taken."""


@runtime_checkable
class Describing(Protocol):
    """A backend that names what it holds for a session as its users know it."""

    def describe(self, session: str) -> str:
        """Return, for example, ``tmux session pipeline-NAME``."""


def describe(backend: Backend, session: str) -> str:
    """Name what ``backend`` holds for ``session`` (its own words if it has them)."""
    if isinstance(backend, Describing):
        return backend.describe(session)
    return f"{backend.name} session of {session!r}"


@runtime_checkable
class HandsOver(Protocol):
    """A backend that says how the launcher's environment reaches its engines.

    ``"fifo"`` (what a backend without this attribute gets): a FIFO in the run
    directory, which works only when the engine runs on the launcher's machine.
    ``"file"``: the engine may run on another machine that shares the project folder;
    the environment goes through a 0600 file there that the engine removes first thing
    (see :mod:`looprunner.handoff`).
    """

    handoff: ClassVar[str]


def handoff_of(backend: Backend) -> str:
    """Return the environment transport ``backend`` asks for (``fifo`` unless it says)."""
    if not isinstance(backend, HandsOver):
        return handoff.FIFO
    chosen = backend.handoff
    if chosen not in handoff.TRANSPORTS:
        raise PluginError(
            f"backend {backend.name!r}: handoff {chosen!r} is not one of "
            f"{', '.join(handoff.TRANSPORTS)}"
        )
    return chosen


@runtime_checkable
class InProcess(Protocol):
    """A backend that runs the engine in the calling process.

    The session gives it the factory that builds an engine (backends never import the
    engine) and stops that engine through it, since there is no other process to signal.
    """

    def bind(self, engine_factory: EngineFactory, *, background: bool) -> None:
        """Receive what to run and whether to run it in a thread."""

    def request_stop(self, timeout: float) -> bool:
        """Stop the engine it runs, if any; return whether there was one."""

    def started(self) -> bool:
        """Tell whether its engine recorded its state (or ended)."""

    def running(self) -> bool:
        """Tell whether its engine (thread) runs."""


class RunsToEnd(Protocol):
    """An engine as an in-process backend sees it: run it, or ask it to stop."""

    @property
    def recorded(self) -> bool:
        """True once the engine has written its state."""

    def run(self, *, resume: bool = False) -> object:
        """Run the session to its end."""

    def request_stop(self) -> None:
        """Stop the session soon (recorded as killed)."""


class EngineFactory(Protocol):
    """Builds the engine for a launch (given to in-process backends)."""

    def __call__(self, spec: LaunchSpec) -> RunsToEnd:
        """Build (not run) the engine for ``spec``."""


# ---------------------------------------------------------------------- hooks


@runtime_checkable
class SessionView(Protocol):
    """What lifecycle hooks receive as ``session``: a read-only view of one session."""

    name: str

    @property
    def project(self) -> Path:
        """The project folder."""

    def status(self) -> SessionStatus:
        """Return the session's health and state."""

    def events(self, *, last: int | None = None) -> Iterator[Event]:
        """Return the session's recorded events, oldest first."""
