"""Deriving a session's health from its three resources: lock, state and backend session.

Kept free of I/O so every combination can be tested directly. The verdict is worked out
on plain data — the fields of ``state.json`` it needs, as the file holds them — so the
command line's quick look (:mod:`looprunner.glance`), which reads the file as JSON and
builds no model, reaches every verdict through the same code as :class:`RunState` does.
"""

from __future__ import annotations

from looprunner import procinfo

TYPE_CHECKING = False  # typing itself is not imported: a quick look needs nothing of it
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from looprunner.models import Health, RunError, RunState

#: the error type ``cleanup --fix`` records for a session whose engine died
CRASHED_ERROR = "crashed"
#: the ``state.json`` statuses after which the engine does not run the session again
FINISHED = ("complete", "failed", "killed")


def recorded_facts(state: RunState) -> dict[str, Any]:
    """Return what a verdict needs of a state, with the names and values of state.json."""
    return {
        "status": state.status.value,
        "error": None
        if state.error is None
        else {"type": state.error.type, "message": state.error.message},
        "pid": state.pid,
        "pid_start_time": state.pid_start_time,
        "boot_id": state.boot_id,
        "backend": state.backend,
    }


def derive_health(
    *,
    state: RunState | None,
    lock_held: bool,
    tmux_present: bool | None,
    state_unreadable: bool = False,
    engine_alive: bool = False,
    backend: str | None = None,
    stopped_pid: int | None = None,
    fault: RunError | None = None,
    foreign: str | None = None,
) -> tuple[Health, str | None]:
    """Return the health and, where it needs one, a sentence explaining it.

    ``tmux_present`` says whether the session's backend (``backend``; a tmux session for
    the tmux backend) holds a live session of it; None when the backend could not be
    asked, and a verdict that would depend on it is then ``unknown``, never ``crashed``.
    ``engine_alive`` says whether the engine recorded in state still exists (same pid,
    start time and boot): it only matters when the lock file was deleted from under a
    running engine. ``stopped_pid`` is the engine's pid when it is stopped by a signal
    (state ``T``): still running, but going nowhere until it is continued. ``fault`` is
    how the engine ended the run when only the lock file could take it (a full or
    read-only disk, a deleted run folder): the session is ``failed``, and says why.
    ``foreign`` says who holds the lock file when it is no engine of this session
    (``lock_held`` is then False): the health is what the rest says, and the sentence is
    added to it, as it is what stops ``resume`` or ``kill``.
    """
    from looprunner.models.statuses import Health

    word, detail = verdict(
        state=None if state is None else recorded_facts(state),
        lock_held=lock_held,
        tmux_present=tmux_present,
        state_unreadable=state_unreadable,
        engine_alive=engine_alive,
        backend=backend,
        stopped_pid=stopped_pid,
        fault=None if fault is None else {"type": fault.type, "message": fault.message},
    )
    health = Health(word)
    if foreign is None:
        return health, detail
    return health, f"{detail}; {foreign}" if detail else foreign


def verdict(
    *,
    state: Mapping[str, Any] | None,
    lock_held: bool,
    tmux_present: bool | None,
    state_unreadable: bool,
    engine_alive: bool,
    backend: str | None,
    stopped_pid: int | None,
    fault: Mapping[str, Any] | None,
) -> tuple[str, str | None]:
    """Return the health's word and its sentence from plain data (see :func:`derive_health`).

    The word is a :class:`~looprunner.models.Health` value, as ``--json`` writes it: the
    quick look, which prints words, loads no enum. ``state`` holds state.json's
    ``status``, ``error``, ``pid``, ``pid_start_time``, ``boot_id`` and ``backend``
    (:func:`recorded_facts`); ``fault`` a ``type`` and ``message``. The sentence names
    no ``foreign`` holder: the caller adds it.
    """
    if lock_held:
        return "running", stopped_detail(stopped_pid)
    if fault is not None:
        return "failed", (
            f"{fault['type']}: {fault['message']} (recorded in the session's lock file: "
            "the engine could not write state.json)"
        )
    status = None if state is None else state["status"]
    error = None if state is None else state["error"]
    if status == "failed" and error is not None and error["type"] == CRASHED_ERROR:
        return "crashed", error["message"]
    if state is not None and status in FINISHED:
        return status, None
    if engine_alive and state is not None:
        missing = (
            f"the lock file is missing but the engine (pid {state['pid']}) is alive; "
            "it recreates the lock at its next iteration"
        )
        stopped = stopped_detail(stopped_pid)
        return "running", f"{stopped}; {missing}" if stopped else missing
    backend = backend or (state["backend"] if state is not None else None)
    which = f"the {backend} backend" if backend else "the backend"
    if tmux_present:
        return "orphaned", f"a session of ours on {which} exists but no engine holds the lock"
    if state is not None and status in ("pending", "running"):
        if tmux_present is None:
            return (
                "unknown",
                f"{which} cannot be reached, so the engine's fate is unknown",
            )
        return "crashed", crash_sentence(state)
    if state_unreadable:
        return "unknown", "state.json cannot be read"
    if tmux_present is None:
        return "unknown", f"{which} cannot be reached"
    return "not_found", None


def stopped_detail(pid: int | None) -> str | None:
    """Say that the engine is stopped (SIGSTOP) and how to let it go on."""
    if pid is None:
        return None
    return f"stopped (SIGSTOP): the engine (pid {pid}) waits for SIGCONT (kill -CONT {pid})"


def crash_reason(state: RunState) -> str:
    """Explain why a session whose engine is gone stopped: reboot, or engine death."""
    return crash_sentence(recorded_facts(state))


def crash_sentence(facts: Mapping[str, Any]) -> str:
    """:func:`crash_reason` from plain data (see :func:`recorded_facts`)."""
    pid, boot = facts["pid"], facts["boot_id"]
    current = procinfo.boot_id()
    if boot and current and boot != current:
        return "the machine rebooted since the engine started"
    if pid and procinfo.is_alive(pid, facts["pid_start_time"], boot):
        return f"the engine (pid {pid}) still exists but no longer holds the lock"
    return f"the engine (pid {pid}) died without recording an ending"
