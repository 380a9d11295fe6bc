"""Answers for ``status NAME`` and ``list`` from plain data, or a polite refusal.

Each answer is built as :func:`looprunner.cli.answers.session_answer` builds it from a
:class:`~looprunner.models.SessionStatus`: state.json's fields, then ``health``,
``resources``, ``detail``, ``branches``, ``lock_info`` and ``next``, with the health
from the same verdict (:func:`looprunner.health.verdict`) and the hints from the same
table (:mod:`looprunner.views.hints`). Every function returns None where it declines:
the caller then asks the models, which answer every case.
"""

from __future__ import annotations

import os

from looprunner import procinfo
from looprunner.builtin.defaults import BACKEND as DEFAULT_BACKEND
from looprunner.glance import files, shape
from looprunner.glance.backends import BUILTIN
from looprunner.health import FINISHED, verdict
from looprunner.naming import is_valid_session_name
from looprunner.views.hints import for_health

TYPE_CHECKING = False  # typing itself is not imported: a quick look needs nothing of it
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

#: built-in terminations that keep no queue: ``status`` shows no ``queue_remaining``
#: for them (``tests/unit/test_glance_shape.py`` checks this against the built-ins)
QUEUELESS_TERMINATIONS = frozenset({"fixed", "judgment"})
#: a file in the run folder that means the session's backend was set with options
BACKEND_OPTIONS_FILE = "backend-options.json"


class Live:
    """What each built-in backend answered about its live sessions, asked once each.

    :meth:`ask` starts a question without waiting for it: a listing asks the default
    backend first and reads its sessions' files while tmux answers. :meth:`close`
    collects a question nobody waited for.
    """

    def __init__(self, project: str) -> None:
        self.project = project
        self.answers: dict[str, Any] = {}
        self.asked: dict[str, Callable[[], Any]] = {}

    def ask(self, backend: str) -> None:
        """Start asking built-in ``backend`` for its live sessions, unless asked already."""
        if backend in BUILTIN and backend not in self.answers and backend not in self.asked:
            self.asked[backend] = BUILTIN[backend][0](self.project)

    def of(self, backend: str) -> Any:
        """Return ``backend``'s live sessions (None: unreachable), or DECLINE."""
        if backend not in BUILTIN:
            return files.DECLINE
        if backend not in self.answers:
            self.ask(backend)
            self.answers[backend] = self.asked.pop(backend)()
        return self.answers[backend]

    def close(self) -> None:
        """Wait for the questions still open (their programs are reaped)."""
        for backend in list(self.asked):
            self.of(backend)


def answer(project: files.ProjectFiles, name: str, live: Live) -> dict[str, Any] | None:
    """Return session ``name``'s answer, or None to leave it to the models."""
    found = read(project, name)
    return None if found is None else judge(name, *found, live)


def read(project: files.ProjectFiles, name: str) -> tuple[Any, dict[str, Any]] | None:
    """Return session ``name``'s lock metadata and state, or None to leave it to the models.

    Everything that comes from the session's files, read and checked before any backend
    is waited for.
    """
    if not is_valid_session_name(name):  # an earlier run kept aside, or no name at all
        return None
    run_dir = project.run_dir(name)
    meta = files.read_lock(project.lock_file(name))
    state = files.read_json(f"{run_dir}/state.json")
    if (
        meta is files.DECLINE
        or (meta is not None and "launch" in meta)
        or state is None
        or state is files.DECLINE
        or not shape.conforms(state, shape.STATE)
        or files.exists(f"{run_dir}/{BACKEND_OPTIONS_FILE}")
        or _behind_log(state, f"{run_dir}/events.jsonl")
        or files.exists(_block_dir(run_dir, state))
    ):
        return None
    return meta, state


def judge(name: str, meta: Any, state: dict[str, Any], live: Live) -> dict[str, Any] | None:
    """Return the answer from what :func:`read` gave and the backend's live sessions."""
    held = meta is not None
    lock: dict[str, Any] = meta or {}
    pid = lock.get("pid")
    if held and not _engine_holds(lock):
        return None  # held, but not by the engine it names: the models look for a stranger
    present = live.of(state["backend"])
    if present is files.DECLINE:
        return None
    tmux = None if present is None else name in present
    engine_alive = (
        not held
        and state["status"] not in FINISHED
        and procinfo.is_alive(state["pid"], state["pid_start_time"], state["boot_id"])
    )
    engine_pid = pid if held and pid else state["pid"]
    health, detail = verdict(
        state=state,
        lock_held=held,
        tmux_present=tmux,
        state_unreadable=False,
        engine_alive=engine_alive,
        backend=state["backend"],
        stopped_pid=engine_pid
        if (held or engine_alive) and procinfo.is_stopped(engine_pid)
        else None,
        fault=None,
    )
    lock_info = {
        "present": held,
        "held": held,
        "pid": pid,
        "pid_alive": True if pid else None,
        "host": lock.get("host"),
        "started_at": lock.get("started_at"),
        "foreign": False,
        "foreign_pid": None,
        "foreign_user": None,
    }
    return {
        **state,
        "health": health,
        "resources": {"lock": held, "state": True, "tmux": tmux},
        "detail": detail,
        "branches": [],
        "lock_info": lock_info,
        "next": for_health(name, health),
    }


def _engine_holds(meta: dict[str, Any]) -> bool:
    """Tell whether the lock's metadata names a live engine, in the types it writes."""
    pid, started, boot = meta.get("pid"), meta.get("pid_start_time"), meta.get("boot_id")
    return (
        type(pid) is int
        and pid > 0
        and type(started) is int
        and type(boot) is str
        and procinfo.is_alive(pid, started, boot)
    )


def _behind_log(state: dict[str, Any], events_file: str) -> bool:
    """Tell whether the log records a change after the state file (or cannot say)."""
    if state["seq"] is None:  # an older version's state: taken as it is, as the models do
        return False
    last = files.last_events(events_file, 1)
    return last is files.DECLINE or bool(last and last[0]["seq"] > state["seq"])


def _block_dir(run_dir: str, state: dict[str, Any]) -> str:
    """Where the current node's parallel block keeps its branches (if it is one)."""
    index = state["current_stage"]
    current = state["stages"][min(index, len(state["stages"]) - 1)]
    return f"{run_dir}/parallel-{index:02d}-{current['id']}"


def queue_remaining(project: files.ProjectFiles, name: str, state: dict[str, Any]) -> Any:
    """Return None when the current node's termination keeps no queue, else DECLINE."""
    pipeline = files.read_json(f"{project.run_dir(name)}/pipeline.yaml")
    if pipeline is None:  # no pipeline file: no queue to count
        return None
    try:
        nodes = pipeline["nodes"]
        node = nodes[min(state["current_stage"], len(nodes) - 1)]
        kind = node["stage"]["termination"]["type"]
    except (TypeError, KeyError, IndexError):
        return files.DECLINE
    return None if kind in QUEUELESS_TERMINATIONS else files.DECLINE


def status_answer(project_dir: str, name: str) -> dict[str, Any] | None:
    """Return ``status --json NAME``'s object, or None to leave it to the models."""
    project = files.ProjectFiles(project_dir)
    found = answer(project, name, Live(project_dir))  # asks and waits at once: none left
    if found is None:
        return None
    queue = queue_remaining(project, name, found)
    if queue is files.DECLINE:
        return None
    found["queue_remaining"] = queue
    return found


def list_answers(project_dir: str) -> list[tuple[str, dict[str, Any]]] | None:
    """Return each session's name and answer (``list --json``'s objects) by name.

    None leaves the whole list to the models. The default backend, asked by every
    listing, answers while the sessions' files are read.
    """
    live = Live(project_dir)
    live.ask(DEFAULT_BACKEND)  # asked by every listing, whatever sessions use
    try:
        return _listing(files.ProjectFiles(project_dir), live)
    finally:
        live.close()


def _listing(project: files.ProjectFiles, live: Live) -> list[tuple[str, dict[str, Any]]] | None:
    names = set()
    for folder, suffix in ((project.runs, ""), (project.locks, ".lock")):
        try:
            entries = os.listdir(folder)
        except FileNotFoundError:
            continue
        except OSError:
            return None
        for entry in entries:  # as ``session.listing.names_on_disk`` finds them
            stem = entry[: len(entry) - len(suffix)] if entry.endswith(suffix) else None
            if stem is not None and is_valid_session_name(stem):
                names.add(stem)
    found = []
    for name in sorted(names):
        files_read = read(project, name)
        if files_read is None:
            return None
        found.append((name, files_read))
    answers: list[tuple[str, dict[str, Any]]] = []
    for name, (meta, state) in found:
        judged = judge(name, meta, state, live)
        if judged is None:
            return None
        answers.append((name, judged))
    if live.of(DEFAULT_BACKEND) is files.DECLINE:
        return None
    for present in live.answers.values():
        if present and not present <= names:  # a backend's session with nothing on disk
            return None
    return answers


def page_parts(project_dir: str, name: str, answer: dict[str, Any]) -> dict[str, Any] | None:
    """Return what ``status``'s text shows besides the answer, or None for the models.

    The run folder, how the backend names the session, and the log's last 50 events as
    recorded (None when the log's end is not whole events: the models skip such lines).
    """
    run_dir = files.ProjectFiles(project_dir).run_dir(name)
    events = files.last_events(f"{run_dir}/events.jsonl", 50)
    if events is files.DECLINE:
        return None
    return {"run_dir": run_dir, "where": BUILTIN[answer["backend"]][1](name), "events": events}
