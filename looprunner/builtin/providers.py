"""The built-in providers: ``claude``, ``codex``, ``command`` and ``mock``.

Each turns an iteration into an argv; the prompt always travels on stdin and the
iteration's paths in ``LOOPRUNNER_*`` environment variables, so no user text is ever
part of a command line, let alone a shell string.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import sys
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import attrs

from looprunner.builtin.cli_streams import claude_render, claude_report, codex_render, codex_report
from looprunner.errors import ConfigError, ProgramMissingError, ProviderError
from looprunner.models import AgentCommand, AgentReport, Check, Invocation, Stage
from looprunner.programs import program_check, program_version, running_as_root


def path_env(invocation: Invocation) -> dict[str, str]:
    """Return the variables every agent gets: where the iteration's files are."""
    return {
        "LOOPRUNNER_CTX": invocation.paths.context,
        "LOOPRUNNER_STATUS": invocation.paths.status,
        "LOOPRUNNER_OUTPUT": invocation.paths.output,
        "LOOPRUNNER_PROGRESS": invocation.paths.progress,
        "LOOPRUNNER_ITERATION": str(invocation.iteration),
        "LOOPRUNNER_SESSION": invocation.session,
        "LOOPRUNNER_STAGE": invocation.stage_id,
    }


def _require_program(program: str, provider: str) -> str:
    found = shutil.which(program)
    if found is None:
        raise ProgramMissingError(
            f"provider {provider!r} needs the {program!r} program, which is not on PATH"
        )
    return found


#: model names loop-agents accepted for Claude, and the name the ``claude`` program takes
CLAUDE_MODEL_ALIASES = {
    "claude-opus": "opus",
    "opus-4": "opus",
    "opus-4.5": "opus",
    "claude-sonnet": "sonnet",
    "sonnet-4": "sonnet",
    "claude-haiku": "haiku",
}
#: the reasoning efforts ``codex`` takes after a model's colon (``gpt-5.2-codex:xhigh``)
CODEX_EFFORTS = ("minimal", "low", "medium", "high", "xhigh")
#: the effort used when a codex model names none (loop-agents' default, not codex's own)
CODEX_DEFAULT_EFFORT = "high"
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*")
#: Claude Code prints its work as JSON events while it runs (``--verbose`` is required)
CLAUDE_STREAM_FLAGS = ("--output-format", "stream-json", "--verbose")


@functools.cache
def _version_of(program: str) -> str | None:
    """Ask a program its version once per engine (its stream may not say it)."""
    line = program_version([program, "--version"], os.environ)
    return line.split()[-1] if line else None


def _auth_hint(env: Mapping[str, str], variables: tuple[str, ...], login: str) -> str:
    """Say which credential variables are set (a wrong value) or that none is (missing)."""
    present = [name for name in variables if env.get(name)]
    if present:
        return f"{' and '.join(present)} is set but was refused: check its value, or {login}"
    return f"set {' or '.join(variables)} in the engine's environment, or {login}"


class ClaudeProvider:
    """Claude Code in print mode: ``claude -p --dangerously-skip-permissions``.

    The prompt is read from stdin; ``--output-format stream-json --verbose`` makes it
    print its work as events while it runs (see :mod:`looprunner.builtin.cli_streams`).
    As root, Claude Code refuses to skip permissions unless ``IS_SANDBOX=1``: the
    provider sets it there, as looprunner's agents run unattended by design (the risk
    is documented in docs/providers.md). ``CLAUDECODE`` is removed from the environment
    so a loop started from inside a Claude Code session can still start its own agents.
    loop-agents' provider spellings ``claude-code`` and ``anthropic`` name it too, and
    its model spellings (``opus-4.5``, ``claude-sonnet``) are passed as the names the
    ``claude`` program knows (``opus``, ``sonnet``).
    """

    name: ClassVar[str] = "claude"
    aliases: ClassVar[tuple[str, ...]] = ("claude-code", "anthropic")
    program: ClassVar[str] = "claude"

    def check(self, stage: Stage) -> None:
        """Fail early when ``claude`` is not installed."""
        _require_program(self.program, self.name)

    def diagnose(self, env: Mapping[str, str]) -> Check:
        """Say whether ``claude`` is installed, its version, credentials and root."""
        check = program_check(
            kind="provider",
            name=self.name,
            program=self.program,
            install="npm install -g @anthropic-ai/claude-code",
            env=env,
            auth_variables=("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_AUTH_TOKEN"),
            login_files=(".claude/.credentials.json",),
            login_hint=", or log in with `claude`",
        )
        if check.ok and running_as_root() and not env.get("IS_SANDBOX"):
            note = (
                "running as root: Claude Code refuses --dangerously-skip-permissions "
                "unless IS_SANDBOX=1 is set (do so only in a container or sandbox)"
            )
            return attrs.evolve(check, notes=(*check.notes, note))
        return check

    def auth_hint(self, env: Mapping[str, str]) -> str:
        """Name what Claude Code authenticates with (names only, never values)."""
        return _auth_hint(
            env, ("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN"), "run `claude` and /login"
        )

    def command(self, invocation: Invocation) -> AgentCommand:
        """Build the ``claude`` command line."""
        argv = [
            _require_program(self.program, self.name),
            "-p",
            "--dangerously-skip-permissions",
            *CLAUDE_STREAM_FLAGS,
        ]
        if invocation.model:
            argv += ["--model", CLAUDE_MODEL_ALIASES.get(invocation.model, invocation.model)]
        if invocation.resume_session:
            argv += ["--resume", invocation.resume_session]
        env = path_env(invocation)
        if running_as_root():
            env["IS_SANDBOX"] = "1"
        return AgentCommand(
            argv=tuple(argv), stdin=invocation.prompt, env=env, unset_env=("CLAUDECODE",)
        )

    def render_event(self, event: Mapping[str, Any]) -> str:
        """Show one stream-json event in engine.log as text."""
        return claude_render(event)

    def report(self, events: Sequence[Mapping[str, Any]]) -> AgentReport:
        """Take answer, usage, cost, turns, session id and version from the stream."""
        return claude_report(events)


def codex_model(model: str | None) -> tuple[str | None, str]:
    """Split ``gpt-5.2-codex:xhigh`` into model and effort; refuse what codex cannot take.

    The effort must be one of :data:`CODEX_EFFORTS` (``high`` when none is given, as in
    loop-agents); the model must look like a model name. Which models exist is codex's
    to say (new ones appear), so a well-formed name is passed on as it is.
    """
    if not model:
        return None, CODEX_DEFAULT_EFFORT
    name, colon, effort = model.partition(":")
    if colon and effort not in CODEX_EFFORTS:
        raise ConfigError(
            f"codex reasoning effort {effort!r} in model {model!r} is not one of "
            f"{', '.join(CODEX_EFFORTS)}",
            field="model",
        )
    if name and not _MODEL_NAME.fullmatch(name):
        raise ConfigError(f"codex model {name!r} is not a model name", field="model")
    return name or None, effort or CODEX_DEFAULT_EFFORT


class CodexProvider:
    """OpenAI Codex non-interactively: ``codex exec --json ... -`` (prompt from stdin).

    ``--json`` makes it print its work as events (see :mod:`looprunner.builtin.cli_streams`);
    they carry tokens but no cost, so an iteration's ``cost_usd`` stays unknown.

    A model written ``gpt-5.2-codex:xhigh`` selects the model and its reasoning effort;
    without an effort, ``high`` (loop-agents' default). loop-agents' provider spelling
    ``openai`` names it too.
    """

    name: ClassVar[str] = "codex"
    aliases: ClassVar[tuple[str, ...]] = ("openai",)
    program: ClassVar[str] = "codex"

    def check(self, stage: Stage) -> None:
        """Fail early when ``codex`` is not installed."""
        _require_program(self.program, self.name)

    def validate(self, stage: Stage) -> None:
        """Refuse a model or reasoning effort codex cannot take (see :func:`codex_model`)."""
        codex_model(stage.model)

    def diagnose(self, env: Mapping[str, str]) -> Check:
        """Say whether ``codex`` is installed, its version and credentials."""
        return program_check(
            kind="provider",
            name=self.name,
            program=self.program,
            install="npm install -g @openai/codex",
            env=env,
            auth_variables=("OPENAI_API_KEY", "CODEX_API_KEY"),
            login_files=(".codex/auth.json",),
            login_hint=", or log in with `codex login`",
        )

    def auth_hint(self, env: Mapping[str, str]) -> str:
        """Name what Codex authenticates with (names only, never values)."""
        return _auth_hint(env, ("OPENAI_API_KEY", "CODEX_API_KEY"), "run `codex login`")

    def command(self, invocation: Invocation) -> AgentCommand:
        """Build the ``codex exec`` command line."""
        argv = [
            _require_program(self.program, self.name),
            "exec",
            *(("resume",) if invocation.resume_session else ()),
            "--json",
            "--dangerously-bypass-approvals-and-sandbox",
            "--skip-git-repo-check",
        ]
        try:
            model, effort = codex_model(invocation.model)
        except ConfigError as exc:
            raise ProviderError(exc.message) from None
        if model:
            argv += ["--model", model]
        argv += ["-c", f"model_reasoning_effort={effort}"]
        if invocation.resume_session:
            argv.append(invocation.resume_session)
        argv.append("-")
        return AgentCommand(argv=tuple(argv), stdin=invocation.prompt, env=path_env(invocation))

    def render_event(self, event: Mapping[str, Any]) -> str:
        """Show one ``exec --json`` event in engine.log as text."""
        return codex_render(event)

    def report(self, events: Sequence[Mapping[str, Any]]) -> AgentReport:
        """Take answer, usage and session id from the stream; the version from ``--version``."""
        program = shutil.which(self.program)
        return codex_report(events, _version_of(program) if program else None)


class CommandProvider:
    """Any program, given as the stage's ``command`` (an argv, never run by a shell)."""

    name: ClassVar[str] = "command"

    def check(self, stage: Stage) -> None:
        """Require a ``command:`` whose program exists."""
        if not stage.command:
            raise ProviderError(f"stage {stage.name!r}: provider 'command' needs a 'command:'")
        program = stage.command[0]
        if "/" not in program and shutil.which(program) is None:
            raise ProgramMissingError(f"stage {stage.name!r}: command {program!r} is not on PATH")

    def command(self, invocation: Invocation) -> AgentCommand:
        """Run the stage's argv with the prompt on stdin."""
        if not invocation.command:
            raise ProviderError("provider 'command' needs a 'command:' in the stage")
        return AgentCommand(
            argv=invocation.command, stdin=invocation.prompt, env=path_env(invocation)
        )


class MockProvider:
    """Replays a fixture folder, for tests and dry runs without an API key.

    ``iteration-N.txt`` (else ``default.txt``) is printed as the output of iteration N and
    ``status-N.json`` (else ``status.json``) written as its status; a status of
    ``{"crash": true}`` makes the agent exit non-zero without writing one. The agent is a
    real process (``python -m looprunner.builtin.mock_agent``), so kills and crashes are
    real too.
    """

    name: ClassVar[str] = "mock"

    def check(self, stage: Stage) -> None:
        """Require the fixture folder, if one is given, to exist."""
        if stage.fixtures is not None and not stage.fixtures.is_dir():
            raise ProviderError(f"stage {stage.name!r}: fixtures folder {stage.fixtures} not found")

    def command(self, invocation: Invocation) -> AgentCommand:
        """Run the mock agent on the stage's fixtures."""
        env = path_env(invocation)
        if invocation.fixtures:
            env["LOOPRUNNER_MOCK_FIXTURES"] = invocation.fixtures
        if invocation.mock_delay is not None:
            env["LOOPRUNNER_MOCK_DELAY"] = str(invocation.mock_delay)
        return AgentCommand(
            argv=(sys.executable, "-m", "looprunner.builtin.mock_agent"),
            stdin=invocation.prompt,
            env=env,
        )
