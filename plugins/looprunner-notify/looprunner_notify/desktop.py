"""Desktop notifications where the platform has them: ``osascript`` on macOS, ``notify-send``.

The program is run as an argument list, never through a shell; on macOS the title and
message are handed to the AppleScript as arguments (``on run argv``), so no quoting of
them is ever needed. Where there is no notifier, or it fails, nothing happens: a
notification is a courtesy and never fails a session.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys

log = logging.getLogger("looprunner_notify")

#: set to 0 / false / no / off to never show desktop notifications
DESKTOP_ENV = "LOOPRUNNER_NOTIFY_DESKTOP"
#: seconds a notifier may take
TIMEOUT = 10.0
MAX_MESSAGE = 240

_APPLESCRIPT = (
    "-e",
    "on run argv",
    "-e",
    "display notification (item 2 of argv) with title (item 1 of argv)",
    "-e",
    "end run",
)


def enabled() -> bool:
    """Tell whether desktop notifications are wanted (``LOOPRUNNER_NOTIFY_DESKTOP``)."""
    value = os.environ.get(DESKTOP_ENV, "").strip().lower()
    return value not in ("0", "false", "no", "off")


def notifier_argv(title: str, message: str) -> list[str] | None:
    """Return the argv that shows the notification here, or None if there is no notifier."""
    if len(message) > MAX_MESSAGE:
        message = message[: MAX_MESSAGE - 1] + "…"
    if sys.platform == "darwin":
        osascript = shutil.which("osascript")
        return [osascript, *_APPLESCRIPT, title, message] if osascript else None
    notify_send = shutil.which("notify-send")
    # "--": a message starting with "-" is still the message, not an option
    return [notify_send, "--", title, message] if notify_send else None


def notify(title: str, message: str) -> bool:
    """Show a desktop notification if this machine can; return whether one was sent."""
    if not enabled():
        return False
    argv = notifier_argv(title, message)
    if argv is None:
        return False
    try:
        result = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        log.info("looprunner-notify: %s could not show a notification: %s", argv[0], exc)
        return False
    if result.returncode != 0:
        log.info("looprunner-notify: %s exited with status %s", argv[0], result.returncode)
        return False
    return True
