"""An optional webhook: the completion entry, POSTed as JSON to ``LOOPRUNNER_NOTIFY_WEBHOOK``.

Only ``http`` and ``https`` URLs are used. The request carries the entry and nothing
else (no environment, no headers from it), waits at most a few seconds, and a failure
is logged, never raised: an unreachable receiver does not fail the session. Log
messages name only the scheme, host and port, because a webhook URL's path or query
often holds a secret token.
"""

from __future__ import annotations

import http.client
import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from looprunner_notify._version import __version__

log = logging.getLogger("looprunner_notify")

WEBHOOK_ENV = "LOOPRUNNER_NOTIFY_WEBHOOK"
#: seconds to connect and get an answer
TIMEOUT = 5.0
USER_AGENT = f"looprunner-notify/{__version__}"


def _where(parts: urllib.parse.SplitResult) -> str:
    """Return the URL without credentials, path or query: safe to print."""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or '?'}{port}"


def post(url: str, payload: Mapping[str, Any], *, timeout: float = TIMEOUT) -> bool:
    """POST ``payload`` as JSON to ``url``; return whether the receiver answered 2xx."""
    try:
        parts = urllib.parse.urlsplit(url)
        where = _where(parts)
    except ValueError:
        log.warning("looprunner-notify: %s is not a valid URL; no webhook sent", WEBHOOK_ENV)
        return False
    if parts.scheme not in ("http", "https") or not parts.hostname:
        log.warning(
            "looprunner-notify: %s must be an http(s) URL (got %s); no webhook sent",
            WEBHOOK_ENV,
            f"{parts.scheme}:" if parts.scheme else "no scheme",
        )
        return False
    request = urllib.request.Request(
        url,
        data=json.dumps(dict(payload)).encode("utf-8"),
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": USER_AGENT},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        log.warning("looprunner-notify: webhook %s answered %s %s", where, exc.code, exc.reason)
        return False
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        log.warning("looprunner-notify: webhook %s failed: %s", where, reason)
        return False
    return 200 <= status < 300
