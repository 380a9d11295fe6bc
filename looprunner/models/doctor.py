"""What ``looprunner doctor`` finds: one check per thing a session needs of this machine."""

from __future__ import annotations

import attrs


@attrs.frozen
class Check:
    """One thing looked at: whether it is usable, and a line saying what was seen.

    ``kind`` groups checks (``backend``, ``provider``, ``stage``, ``pipeline``,
    ``machine``); ``notes`` are warnings that do not make it unusable (no credentials
    found, running as root); ``version`` is the program's own version line, if any.
    """

    kind: str
    name: str
    ok: bool
    detail: str
    version: str | None = None
    notes: tuple[str, ...] = ()
