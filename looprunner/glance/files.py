"""The files of a session as plain data: its lock, its state, the end of its event log.

Paths are strings joined with :mod:`os.path` (pathlib is not imported), laid out as
:class:`looprunner.names.SessionPaths` lays them out; ``tests/unit/test_glance_files.py``
checks the two agree. Every reader returns :data:`DECLINE` for anything it cannot read
exactly as the models would, and the command goes the models' way.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat

from looprunner.jsontext import loads
from looprunner.naming import DEFAULT_STATE_DIR, STATE_DIR_ENV

TYPE_CHECKING = False  # typing itself is not imported: a quick look needs nothing of it
if TYPE_CHECKING:
    from typing import Any

#: what a reader returns for something only the models read right
DECLINE: Any = object()
#: how much of the event log's end is read at a time, going back from its end
TAIL_BYTES = 4096
#: an event line's fields, in order, with their JSON types (``looprunner.models.Event``)
EVENT_FIELDS: dict[str, Any] = {
    "ts": (str,),
    "seq": (int,),
    "type": (str,),
    "session": (str,),
    "stage": (str, type(None)),
    "iteration": (int, type(None)),
    "data": (dict,),
    "state": (dict, type(None)),  # left out of a line when the event changed no state
}
_EVENT_KEYS = list(EVENT_FIELDS)


class ProjectFiles:
    """Where a project keeps its locks and run folders, as strings."""

    def __init__(self, project: str) -> None:
        self.project = project
        override = os.environ.get(STATE_DIR_ENV)
        if override:
            root = os.path.expanduser(override)
            self.root = root if os.path.isabs(root) else os.path.join(project, root)
        else:
            self.root = os.path.join(project, DEFAULT_STATE_DIR)
        self.locks = os.path.join(self.root, "locks")
        self.runs = os.path.join(self.root, "pipeline-runs")

    def run_dir(self, name: str) -> str:
        """Return session ``name``'s run folder (``runs`` never ends in a slash)."""
        return f"{self.runs}/{name}"

    def lock_file(self, name: str) -> str:
        """Return session ``name``'s lock file."""
        return f"{self.locks}/{name}.lock"


def read_lock(path: str) -> Any:
    """Return the lock's metadata if an engine holds it, None if there is no lock file.

    :data:`DECLINE` for a lock file nobody holds (stale, or a stranger's shared lock:
    the models ask ``/proc/locks``) and for anything that is not a plain file.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError:
        return DECLINE
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return DECLINE
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                return DECLINE
        else:  # nobody holds it
            return DECLINE
        raw = handle.read()
    metadata = _parsed(raw or b"{}")
    return metadata if type(metadata) is dict else DECLINE


def read_json(path: str) -> Any:
    """Return the JSON value in ``path``; None if there is no such file; or DECLINE."""
    try:
        raw = _read(path)
    except FileNotFoundError:
        return None
    except OSError:
        return DECLINE
    return _parsed(raw)


def _parsed(raw: bytes) -> Any:
    """Return the JSON value of ``raw``, or DECLINE for text that is not one.

    Not UTF-8, not JSON, or nested deeper than the parser goes (a hostile agent can
    write that): the models' to say what is wrong, never a crash of the quick look.
    """
    try:
        return loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        return DECLINE


def _read(path: str) -> bytes:
    """Read a whole file without a buffered file object (a listing reads hundreds)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.fstat(fd).st_size
        chunks = [os.read(fd, size + 1)]
        if len(chunks[0]) <= size:  # the end, read in one call
            return chunks[0]
        while chunks[-1]:  # a file that grew since fstat
            chunks.append(os.read(fd, 65536))
        return b"".join(chunks)
    finally:
        os.close(fd)


def exists(path: str) -> bool:
    """Tell whether anything is at ``path`` (a dangling symlink included)."""
    return os.path.lexists(path)


def last_events(path: str, count: int) -> Any:
    """Return the log's last ``count`` events as recorded, oldest first ([] if no log).

    Reads from the end, a block at a time, only as far back as those events go.
    :data:`DECLINE` if that end is anything but whole event lines: a line cut by a crash
    or one that is not an event is the models' to skip.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return []
    except OSError:
        return DECLINE
    try:
        start, tail = os.fstat(fd).st_size, b""
        while start > 0 and tail.count(b"\n") <= count:
            step = min(start, max(TAIL_BYTES, len(tail)))
            start -= step
            tail = os.pread(fd, step, start) + tail
    except OSError:
        return DECLINE
    finally:
        os.close(fd)
    if tail and not tail.endswith(b"\n"):
        return DECLINE
    if not count:
        return []
    pieces = tail.rsplit(b"\n", count + 1)  # split only the lines asked for
    # more pieces than lines asked: the first is a line not asked for, or one cut where
    # the read began; fewer: the read began at the file's start, every line is whole
    lines = pieces[1:-1] if len(pieces) == count + 2 else pieces[:-1]
    found = []
    for raw in lines:
        event = _parsed(raw)
        if event is DECLINE or not is_event(event):
            return DECLINE
        found.append(event)
    return found


def is_event(event: Any) -> bool:
    """Tell whether a parsed line is an event as the engine writes it."""
    if type(event) is not dict:
        return False
    keys = list(event)
    return keys in (_EVENT_KEYS, _EVENT_KEYS[:-1]) and all(
        type(event[key]) in EVENT_FIELDS[key] for key in keys
    )
