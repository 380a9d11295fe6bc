"""The one error hierarchy of looprunner.

Every error the library raises on purpose derives from :class:`LooprunnerError`, carries
the exit code the command line uses for it, and a short ``type`` that ``--json`` output
reports. Families mix in the builtin exception they behave like, so callers that only
know Python's own exceptions (``ValueError``, ``LookupError``) still catch them.

This module imports nothing from looprunner, so anything may import it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_CONFLICT = 3
EXIT_NOT_FOUND = 4


class LooprunnerError(Exception):
    """Root of every error looprunner raises on purpose."""

    exit_code: int = EXIT_FAILED
    type: str = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(LooprunnerError, ValueError):
    """A stage, pipeline or option is malformed; the message says where.

    Attributes
    ----------
    path, line, column:
        Where the problem is, when it comes from a file (line and column are 1-based).
    field:
        The dotted key path of the bad value (``termination.iterations``), if known.
    code:
        The stable lint rule this problem breaks (``LR002``; see ``docs/lint.md``).
    """

    exit_code = EXIT_BAD_INPUT
    type = "config"

    def __init__(
        self,
        message: str,
        *,
        path: Path | None = None,
        line: int | None = None,
        column: int | None = None,
        field: str | None = None,
        code: str = "LR002",
    ) -> None:
        self.code = code
        self.path = path
        self.line = line
        self.column = column
        self.field = field
        self.detail = message
        super().__init__(self._located(message))

    def _located(self, message: str) -> str:
        if self.path is None:
            return f"{self.field}: {message}" if self.field else message
        where = str(self.path)
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        what = f"{self.field}: {message}" if self.field else message
        return f"{where}: {what}"

    @property
    def problems(self) -> tuple[ConfigError, ...]:
        """Every problem this error reports, each located on its own: here, just itself."""
        return (self,)


class ConfigProblems(ConfigError):
    """Several problems found in definitions at once, each with its own file and line.

    ``lint`` reports each of :attr:`problems`; ``start`` and ``dry-run`` stop, printing one
    line per problem. The error's own ``path``, ``line``, ``field`` and ``code`` are the
    first problem's, so code that looks at a single ConfigError still finds a location.
    """

    def __init__(self, problems: Iterable[ConfigError]) -> None:
        listed = tuple(problems)
        if not listed:
            raise ValueError("ConfigProblems needs at least one problem")
        first = listed[0]
        super().__init__(
            first.detail,
            path=first.path,
            line=first.line,
            column=first.column,
            field=first.field,
            code=first.code,
        )
        self._problems = listed
        self.message = "\n".join(problem.message for problem in listed)
        self.args = (self.message,)

    @property
    def problems(self) -> tuple[ConfigError, ...]:
        """Each problem, in the order found."""
        return self._problems


def combine_problems(errors: Iterable[ConfigError]) -> ConfigError | None:
    """Return one error reporting every problem in ``errors`` once, or None if there are none.

    Groups are flattened and a problem reported twice (a stage two nodes share) is kept
    once; a single problem is returned as itself.
    """
    seen: dict[str, ConfigError] = {}
    for error in errors:
        for problem in error.problems:
            seen.setdefault(problem.message, problem)
    problems = list(seen.values())
    if not problems:
        return None
    return problems[0] if len(problems) == 1 else ConfigProblems(problems)


class LegacyPipelineWarning(DeprecationWarning):
    """A definition uses a loop-agents spelling that is read, but deprecated.

    The message names the file and line and the spelling to write instead; ``lint``
    reports it as rule LR041, and the command line prints it as a warning.
    """

    def __init__(
        self,
        message: str,
        *,
        path: Path | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        self.detail = message
        self.path = path
        self.line = line
        self.column = column
        where = ""
        if path is not None:
            where = str(path)
            if line is not None:
                where += f":{line}" + (f":{column}" if column is not None else "")
            where += ": "
        super().__init__(where + message)


class UsageError(LooprunnerError, ValueError):
    """An argument or option value is not acceptable."""

    exit_code = EXIT_BAD_INPUT
    type = "usage"


class SessionError(LooprunnerError):
    """Something about one named session went wrong."""

    type = "session"

    def __init__(self, message: str, *, session: str | None = None) -> None:
        super().__init__(message)
        self.session = session


class InvalidSessionNameError(SessionError, ValueError):
    """A session name that would be unsafe as a path or tmux target."""

    exit_code = EXIT_BAD_INPUT
    type = "invalid_session_name"


class SessionConflictError(SessionError):
    """The session is running, or finished and not to be overwritten without ``force``."""

    exit_code = EXIT_CONFLICT
    type = "conflict"


class ForeignLockError(SessionConflictError):
    """Something that is not a looprunner engine of this session holds its lock file.

    Another user's (or a stray program's) ``flock`` on the lock file blocks every
    engine, ``kill``, ``resume`` and ``start --force`` of the session; rather than call
    the session running, commands name the holder (its pid and user where
    ``/proc/locks`` tells them). Exit code 3, a conflict over the session's lock.

    Attributes
    ----------
    pid, user:
        The holder, where they can be read (None otherwise).
    """

    type = "foreign_lock"

    def __init__(
        self,
        message: str,
        *,
        session: str | None = None,
        pid: int | None = None,
        user: str | None = None,
    ) -> None:
        super().__init__(message, session=session)
        self.pid = pid
        self.user = user


class SessionNotFoundError(SessionError, LookupError):
    """No lock, state or tmux session exists for that name."""

    exit_code = EXIT_NOT_FOUND
    type = "not_found"


class SessionTimeoutError(SessionError, TimeoutError):
    """Waiting for a session ran out of time."""

    type = "timeout"


class PluginError(LooprunnerError):
    """A plugin could not be loaded, or two plugins claim one name."""

    type = "plugin"


class BackendError(LooprunnerError):
    """The backend (tmux) could not do what was asked, or cannot be reached."""

    type = "backend"


class BackendUnreachableError(BackendError):
    """The tmux server exists but does not answer: health cannot be judged."""

    type = "backend_unreachable"


class ProviderError(LooprunnerError):
    """A provider is unknown, or its program is not installed."""

    exit_code = EXIT_BAD_INPUT
    type = "provider"


class ProgramMissingError(ProviderError):
    """A provider's program is not installed here: a fact of this machine, not of the file.

    ``dry-run`` shows it as a warning (the definition is fine); ``start`` refuses.
    """


class AgentFailed(LooprunnerError):
    """An agent process failed an iteration: it exited non-zero, timed out, or reported badly.

    ``error_type`` is the stable type recorded in ``state.json`` (``provider_exit``,
    ``provider_timeout``, ``status_missing``, ``status_invalid``, ``agent_error``), so a
    stage type that lets this propagate fails its iteration exactly as the built-in
    ``agent`` type does.
    """

    type = "agent_failed"

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


class UnsafeFileError(LooprunnerError):
    """A file of looprunner's under the state folder is a symlink or not a regular file.

    Anyone who can write ``.claude/`` could plant a link there to make looprunner write
    elsewhere, so such a file is never opened; ``looprunner cleanup --fix`` removes it
    (the link itself, never its target). Exit code 1: the operation failed, the
    command's input was fine.

    Attributes
    ----------
    path:
        The file that was refused.
    """

    type = "unsafe_file"

    def __init__(self, path: Path, what: str) -> None:
        super().__init__(
            f"refusing to use {path}: it is {what}, not a regular file "
            "(remove it, or run 'looprunner cleanup --fix')"
        )
        self.path = path
        self.what = what


class WorktreeError(LooprunnerError):
    """A session's git worktree could not be made, reused or removed (git itself failed).

    Attributes
    ----------
    path:
        The worktree (or project) concerned, when known.
    """

    type = "worktree"

    def __init__(self, message: str, *, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


class WorktreeRefusedError(WorktreeError, ValueError):
    """A worktree was asked for where none can be made. Exit code 2.

    The project is in no git repository, git is not installed, the session's branch is
    checked out in another worktree, or something that is not its worktree is in the way.
    """

    exit_code = EXIT_BAD_INPUT
    type = "worktree_refused"


class GitMissingError(WorktreeRefusedError):
    """``git`` is not installed (or not on PATH): a fact of this machine, not of the file.

    ``dry-run`` shows it as a warning; ``start`` refuses.
    """

    type = "git_missing"


class WorktreeDirtyError(WorktreeError):
    """The worktree has uncommitted changes, so it is kept as it is. Exit code 3.

    Attributes
    ----------
    changes:
        How many files ``git status`` lists as changed or untracked.
    """

    exit_code = EXIT_CONFLICT
    type = "worktree_dirty"

    def __init__(self, message: str, *, path: Path | None = None, changes: int = 0) -> None:
        super().__init__(message, path=path)
        self.changes = changes
