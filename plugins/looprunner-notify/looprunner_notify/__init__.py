"""Tells you when a looprunner session ends.

When a session completes (``on_complete``) or fails (``on_error``), in the engine
process:

1. a desktop notification, where the platform has one (``notify-send``, or
   ``osascript`` on macOS); skipped silently otherwise, or with
   ``LOOPRUNNER_NOTIFY_DESKTOP=0``;
2. an entry appended to the completion log, ``<project>/.claude/loop-completions.json``
   (loop-agents' file; ``LOOPRUNNER_STATE_DIR`` moves it with the rest of the state);
3. if ``LOOPRUNNER_NOTIFY_WEBHOOK`` is set, the same entry POSTed there as JSON.

The three are independent: one failing does not stop the others. Notification and
webhook failures are logged; a log file that cannot be written raises, which looprunner
records as a ``hook_error`` event — the session's own outcome never changes.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from looprunner.plugin import hookimpl

from looprunner_notify import completions, desktop, webhook
from looprunner_notify._version import __version__

if TYPE_CHECKING:
    from looprunner.plugin import RunError, RunState
    from looprunner.plugin import SessionView as Session

__all__ = ["__version__", "entry", "on_complete", "on_error"]

TITLE = "looprunner"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def entry(
    session: Session, state: RunState | None, *, status: str, error: RunError | None = None
) -> dict[str, Any]:
    """Return the completion-log entry of a session that ended.

    ``session``, ``type`` (the pipeline or stage it ran), ``status`` (``complete`` or
    ``failed``) and ``completed_at`` are loop-agents' fields; ``reason`` (why it
    completed), ``error`` (``type`` and ``message`` of a failure), ``iterations`` (over
    all stages) and ``project`` are looprunner's. Nothing from the environment is included.
    """
    return {
        "session": session.name,
        "type": state.pipeline if state is not None else None,
        "status": status,
        "completed_at": (state.finished_at if state is not None else None) or _now(),
        "reason": state.completion_reason if state is not None and error is None else None,
        "error": {"type": error.type, "message": error.message} if error is not None else None,
        "iterations": sum(s.iterations_completed for s in state.stages) if state else 0,
        "project": str(session.paths.project),
    }


def _message(data: dict[str, Any]) -> str:
    what = f"{data['type']} {data['session']}" if data["type"] else str(data["session"])
    if data["error"] is not None:
        return f"{what}: failed ({data['error']['type']}): {data['error']['message']}"
    reason = f" ({data['reason']})" if data["reason"] else ""
    return f"{what}: {data['status']}{reason}"


def announce(session: Session, data: dict[str, Any]) -> None:
    """Send ``data`` everywhere it goes: desktop, completion log, webhook."""
    desktop.notify(TITLE, _message(data))
    failure: BaseException | None = None
    try:
        completions.append_completion(completions.completions_file(session.state_root), data)
    except Exception as exc:  # still send the webhook; looprunner reports the raise
        failure = exc
    url = os.environ.get(webhook.WEBHOOK_ENV, "").strip()
    if url:
        webhook.post(url, data)
    if failure is not None:
        raise failure


@hookimpl
def on_complete(session: Session, state: RunState) -> None:
    """Announce a completed session."""
    announce(session, entry(session, state, status="complete"))


@hookimpl
def on_error(session: Session, error: RunError) -> None:
    """Announce a failed session (its final state is read back for the details)."""
    state = session.status().state
    announce(session, entry(session, state, status="failed", error=error))
