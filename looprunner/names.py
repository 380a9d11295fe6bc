"""Session-name validation and every name or path derived from a session name.

A session name ends up in file paths and tmux targets, so it is checked here, once,
before anything else sees it. tmux silently rewrites ``.`` and ``:`` in session names and
macOS file systems ignore case, so only lower-case letters, digits and single hyphens
are allowed.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

import attrs

from looprunner.errors import ConfigError, InvalidSessionNameError
from looprunner.models.ids import NODE_ID
from looprunner.naming import (
    DEFAULT_STATE_DIR,
    MAX_SESSION_NAME,
    STATE_DIR_ENV,
    TMUX_PREFIX,
    is_valid_session_name,
    session_from_tmux_name,
)

__all__ = [
    "DEFAULT_STATE_DIR",
    "MAX_SESSION_NAME",
    "STATE_DIR_ENV",
    "TMUX_PREFIX",
    "is_valid_session_name",
    "session_from_tmux_name",
]
#: what ``start --force`` appends to a session's name when it moves its run aside: the
#: UTC time, and ``-N`` when several runs were moved aside within one second
_KEPT_SUFFIX = re.compile(
    r"([0-9]{4})([0-9]{2})([0-9]{2})T([0-9]{2})([0-9]{2})([0-9]{2})(?:-[1-9][0-9]{0,5})?"
)


def validate_session_name(name: str) -> str:
    """Return ``name`` if it is a valid session name, else raise.

    Raises
    ------
    InvalidSessionNameError
        With a message that shows the name and the rule it breaks.
    """
    if not isinstance(name, str) or not name:
        raise InvalidSessionNameError("session name is empty", session=None)
    if len(name) > MAX_SESSION_NAME:
        raise InvalidSessionNameError(
            f"invalid session name {name[:60]!r}: longer than {MAX_SESSION_NAME} characters"
        )
    if not is_valid_session_name(name):
        raise InvalidSessionNameError(
            f"invalid session name {name!r}: use lower-case letters, digits and single "
            "hyphens, starting and ending with a letter or digit (e.g. 'billing-refactor')"
        )
    return name


def split_kept_run(name: str) -> tuple[str, str] | None:
    """Return (session, kept_at) if ``name`` is an earlier run's full name, else None.

    An earlier run kept aside by ``start --force`` is named ``SESSION.YYYYMMDDTHHMMSS``
    (``-N`` appended when two were moved aside in one second). Both parts are checked
    strictly (a session name, then the time stamp), so a name that passes can never
    reach outside the project's run folder. ``kept_at`` is the ISO-8601 UTC time.
    """
    if not isinstance(name, str):
        return None
    session, dot, suffix = name.partition(".")
    if not dot or not is_valid_session_name(session):
        return None
    match = _KEPT_SUFFIX.fullmatch(suffix)
    if match is None:
        return None
    year, month, day, hour, minute, second = match.groups()
    return session, f"{year}-{month}-{day}T{hour}:{minute}:{second}Z"


def validate_run_name(name: str) -> str:
    """Return ``name`` if it names a session or an earlier run of one, else raise.

    Raises
    ------
    InvalidSessionNameError
        The session-name rules' message, or, for a name with a dot, what an earlier
        run's name looks like.
    """
    if isinstance(name, str) and "." in name and split_kept_run(name) is None:
        raise InvalidSessionNameError(
            f"invalid session name {name[:60]!r}: use lower-case letters, digits and single "
            "hyphens (e.g. 'billing-refactor'), or an earlier run's full name as "
            "'looprunner runs' lists it (e.g. 'auth.20261129T163736')"
        )
    return name if split_kept_run(name) is not None else validate_session_name(name)


def validate_node_id(node_id: str, *, where: str = "id") -> str:
    """Return a pipeline node id if it is safe to use as part of a folder name."""
    if not isinstance(node_id, str) or not NODE_ID.fullmatch(node_id):
        raise ConfigError(
            f"invalid id {node_id!r}: use letters, digits, '-' and '_' (at most 64)",
            field=where,
        )
    return node_id


def tmux_session_name(session: str) -> str:
    """Return the tmux session name that runs ``session``."""
    return TMUX_PREFIX + validate_session_name(session)


def state_root(project: Path) -> Path:
    """Return the state directory of a project (``.claude`` unless overridden)."""
    override = os.environ.get(STATE_DIR_ENV)
    if override:
        path = Path(override).expanduser()
        return path if path.is_absolute() else project / path
    return project / DEFAULT_STATE_DIR


@attrs.frozen
class ProjectPaths:
    """Where a project keeps its locks and run directories."""

    project: Path
    root: Path

    @classmethod
    def of(cls, project: Path | str) -> ProjectPaths:
        """Return the paths of the project at ``project`` (made absolute)."""
        base = Path(project).expanduser().resolve()
        return cls(project=base, root=state_root(base))

    @property
    def locks(self) -> Path:
        """Folder of the lock files."""
        return self.root / "locks"

    @property
    def runs(self) -> Path:
        """Folder of the run directories."""
        return self.root / "pipeline-runs"

    def session(self, name: str) -> SessionPaths:
        """Return the paths of session ``name`` (validated first)."""
        validate_session_name(name)
        return SessionPaths(project=self.project, name=name, root=self.root)

    def kept(self, name: str) -> KeptRunPaths:
        """Return the paths of the earlier run ``name`` (``SESSION.YYYYMMDDTHHMMSS``)."""
        split = split_kept_run(name)
        if split is None:
            validate_run_name(name)  # raises, saying what such a name looks like
            raise InvalidSessionNameError(f"{name!r} is not the name of an earlier run")
        return KeptRunPaths(
            project=self.project, name=name, root=self.root, session=split[0], kept_at=split[1]
        )


@attrs.frozen
class SessionPaths:
    """Every path of one session: its lock and its run directory's files.

    ``workdir`` is where the session's agents work when it is not the project itself
    (the session's git worktree); :attr:`agent_dir` is the folder either way.

    The files' paths are worked out once per object (``cached_property``): the engine
    asks for them several times an iteration, and joining paths is not free.
    """

    project: Path
    name: str
    root: Path
    workdir: Path | None = attrs.field(default=None, kw_only=True)

    @property
    def agent_dir(self) -> Path:
        """The agents' working directory: the session's worktree, or the project."""
        return self.workdir if self.workdir is not None else self.project

    @functools.cached_property
    def lock_file(self) -> Path:
        """The lock held by the engine for its whole life."""
        return self.root / "locks" / f"{self.name}.lock"

    @functools.cached_property
    def run_dir(self) -> Path:
        """The run directory."""
        return self.root / "pipeline-runs" / self.name

    @functools.cached_property
    def state_file(self) -> Path:
        """``state.json``, written only by the engine."""
        return self.run_dir / "state.json"

    @functools.cached_property
    def events_file(self) -> Path:
        """``events.jsonl``, the append-only history."""
        return self.run_dir / "events.jsonl"

    @functools.cached_property
    def pipeline_file(self) -> Path:
        """The resolved pipeline the session runs (resume reads it)."""
        return self.run_dir / "pipeline.yaml"

    @functools.cached_property
    def progress_file(self) -> Path:
        """Accumulated context passed to every iteration."""
        return self.run_dir / f"progress-{self.name}.md"

    @functools.cached_property
    def engine_log(self) -> Path:
        """What the engine printed."""
        return self.run_dir / "engine.log"

    @property
    def tmux_name(self) -> str:
        """The tmux session that runs this session."""
        return TMUX_PREFIX + self.name

    def stage_dir(self, index: int, node_id: str) -> Path:
        """Folder of pipeline node ``index`` (0-based)."""
        return self.run_dir / f"stage-{index:02d}-{node_id}"

    def iteration_dir(self, index: int, node_id: str, iteration: int) -> Path:
        """Folder of one iteration (1-based) of node ``index``."""
        return self.stage_dir(index, node_id) / "iterations" / f"{iteration:03d}"

    def block_dir(self, index: int, node_id: str) -> Path:
        """Folder of node ``index``'s branches (a parallel block's providers) and manifest."""
        return self.run_dir / f"parallel-{index:02d}-{node_id}"

    def branch(self, index: int, node_id: str, name: str) -> BranchPaths:
        """Return the paths of branch ``name`` of node ``index`` (validated first)."""
        validate_node_id(name, where="provider")
        return BranchPaths(
            project=self.project,
            name=self.name,
            root=self.root,
            folder=self.block_dir(index, node_id) / name,
            workdir=self.workdir,
        )


@attrs.frozen
class KeptRunPaths(SessionPaths):
    """An earlier run of ``session``, moved aside by ``start --force`` as ``name``.

    Its run folder is ``pipeline-runs/NAME``; it has no lock and no backend session of
    its own (the lock path it names never exists), and its files keep the names the
    session gave them.
    """

    session: str
    kept_at: str

    @property
    def progress_file(self) -> Path:
        """The progress file, named after the session that wrote it."""
        return self.run_dir / f"progress-{self.session}.md"


@attrs.frozen
class BranchPaths(SessionPaths):
    """One branch of a block, laid out as a run folder of its own inside the block.

    Its stages, iterations, progress file and ``state.json`` live under ``folder``; the
    lock, the event log and ``engine.log`` stay the session's.
    """

    folder: Path

    @property
    def run_dir(self) -> Path:
        """The branch's folder, where its stage folders go."""
        return self.folder

    @property
    def progress_file(self) -> Path:
        """The branch's own accumulated context."""
        return self.folder / "progress.md"

    @property
    def events_file(self) -> Path:
        """The session's event log (events of a branch name it)."""
        return self.root / "pipeline-runs" / self.name / "events.jsonl"

    @property
    def engine_log(self) -> Path:
        """The session's engine.log."""
        return self.root / "pipeline-runs" / self.name / "engine.log"
