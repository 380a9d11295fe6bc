"""Deriving a session's health from its three resources: lock, state and tmux session.

Kept free of I/O so every combination can be tested directly.
"""

from __future__ import annotations

from looprunner import procinfo
from looprunner.models import Health, RunState, RunStatus


def derive_health(
    *,
    state: RunState | None,
    lock_held: bool,
    tmux_present: bool | None,
    state_unreadable: bool = False,
) -> tuple[Health, str | None]:
    """Return the health and, where it needs one, a sentence explaining it.

    ``tmux_present`` is None when the tmux server could not be asked; a verdict that
    would depend on it is then ``unknown``, never ``crashed``.
    """
    if lock_held:
        return Health.RUNNING, None
    if state is not None and state.status.finished:
        return Health(state.status.value), None
    if tmux_present:
        return Health.ORPHANED, "a tmux session of ours exists but no engine holds the lock"
    if state is not None and state.status in (RunStatus.PENDING, RunStatus.RUNNING):
        if tmux_present is None and state.backend == "tmux":
            return (
                Health.UNKNOWN,
                "the tmux server cannot be reached, so the engine's fate is unknown",
            )
        return Health.CRASHED, crash_reason(state)
    if state_unreadable:
        return Health.UNKNOWN, "state.json cannot be read"
    if tmux_present is None:
        return Health.UNKNOWN, "the tmux server cannot be reached"
    return Health.NOT_FOUND, None


def crash_reason(state: RunState) -> str:
    """Explain why a session whose engine is gone stopped: reboot, or engine death."""
    current = procinfo.boot_id()
    if state.boot_id and current and state.boot_id != current:
        return "the machine rebooted since the engine started"
    if state.pid and procinfo.is_alive(state.pid, state.pid_start_time, state.boot_id):
        return f"the engine (pid {state.pid}) still exists but no longer holds the lock"
    return f"the engine (pid {state.pid}) died without recording an ending"
