"""The completion log: ``.claude/loop-completions.json``, one entry per finished session.

The file is loop-agents' completion log: a JSON array of objects, one appended each time
a session ends (loop-agents wrote ``session``, ``type``, ``status`` and ``completed_at``;
looprunner-notify writes those and more, see :func:`looprunner_notify.entry`). It lives in
the project's state folder (``.claude``, or ``LOOPRUNNER_STATE_DIR``).

Several sessions may end at once, so an append holds an exclusive lock on
``loop-completions.json.lock`` while it reads the array, adds the entry and writes the
result to a temporary file that replaces the log (``os.replace``): no entry is lost, and
a reader that does not lock never sees a half-written file.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import portalocker

FILE_NAME = "loop-completions.json"
#: seconds to wait for another session's append to finish
LOCK_TIMEOUT = 30.0
#: permissions of a new log (a log that exists keeps its own)
NEW_FILE_MODE = 0o644


def completions_file(state_root: Path) -> Path:
    """Return the completion log of the project whose state folder is ``state_root``."""
    return state_root / FILE_NAME


def read_completions(path: Path) -> list[Any]:
    """Return the entries in the log (an empty list if there is none).

    A log that is not a JSON array (hand-edited, or damaged) is not silently replaced:
    that raises ``ValueError``, naming the file.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    if not text.strip():
        return []
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{path}: not JSON ({exc}); move it aside to start a new log") from exc
    if not isinstance(data, list):
        # TRY004: a log holding the wrong JSON value is bad data (ValueError), not a bad argument
        raise ValueError(  # noqa: TRY004
            f"{path}: expected a JSON array of entries, found {type(data).__name__}"
        )
    return data


def _write_atomic(path: Path, text: str) -> None:
    try:
        mode = path.stat().st_mode & 0o777  # keep the log's permissions
    except FileNotFoundError:
        mode = NEW_FILE_MODE
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)  # mkstemp creates 0600
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        Path(tmp).replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            Path(tmp).unlink()
        raise


def append_completion(path: Path, entry: Mapping[str, Any]) -> None:
    """Append ``entry`` to the log at ``path``, under its lock, replacing the file atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.with_name(path.name + ".lock")
    # portalocker retries a non-blocking exclusive lock until the timeout
    with portalocker.Lock(lock_path, mode="a", timeout=LOCK_TIMEOUT, check_interval=0.02):
        entries = read_completions(path)
        entries.append(dict(entry))
        _write_atomic(path, json.dumps(entries, indent=2) + "\n")
