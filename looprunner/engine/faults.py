"""Named crash points for fault-injection tests.

Setting ``LOOPRUNNER_CRASH_AT=POINT:ITERATION`` (for example ``state_written:2``) makes
the engine SIGKILL itself when it reaches that point of that iteration, so tests can
prove that a crash at any phase of an iteration loses nothing and repeats nothing.
Unset (always, outside tests) it costs one dictionary lookup per point.

Points: ``before_agent``, ``agent_running``, ``after_agent``, ``state_written``,
``stage_complete_saved``, and ``ending_written`` (the session's ending in its state, not
yet in its log; ITERATION is the last iteration started).
"""

from __future__ import annotations

import os
import signal

ENV = "LOOPRUNNER_CRASH_AT"


def checkpoint(point: str, iteration: int) -> None:
    """SIGKILL this process if the environment asks for a crash here."""
    wanted = os.environ.get(ENV)
    if wanted and wanted == f"{point}:{iteration}":
        os.kill(os.getpid(), signal.SIGKILL)
