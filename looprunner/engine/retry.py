"""Trying a rate-limited or overloaded agent again, with exponential backoff and jitter.

A provider that answers 429 or 529 usually answers 200 a little later; one that refuses
a key never will. So only :data:`~looprunner.engine.failures.RETRIED` classes are tried
again, up to the stage's ``retry.attempts`` runs in all, each wait recorded as a
``retry_wait`` event (``tail`` and ``status`` show it) and spent in the runner's
``wait_stop``, so ``kill`` during a wait stops at once. After the last attempt the
failure stands, with its class, and the session can be resumed.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from looprunner.engine.agents import Stopped
from looprunner.engine.failures import RETRIED
from looprunner.engine.process import AgentRunner
from looprunner.errors import AgentFailed
from looprunner.models import AgentRun, Retry
from looprunner.models import events as ev
from looprunner.store.events import EventLog

#: jitter source; a module attribute so that nothing else shares (or reseeds) it
_random = random.SystemRandom()


def with_retries(
    attempt: Callable[[], AgentRun],
    *,
    retry: Retry,
    runner: AgentRunner,
    events: EventLog,
    stage: str,
    iteration: int,
    log: Callable[[str], None],
) -> AgentRun:
    """Run ``attempt`` until it succeeds, fails for good, or the attempts are used up.

    Raises
    ------
    AgentFailed
        The last attempt's failure (or the first one that is not retried).
    Stopped
        The session was stopped during a wait.
    """
    number = 1
    while True:
        try:
            return attempt()
        except AgentFailed as failure:
            if failure.error_type not in RETRIED or number >= retry.attempts:
                raise
            delay = round(retry.delay(number, _random.random()), 3)
            events.append(
                ev.RETRY_WAIT,
                stage=stage,
                iteration=iteration,
                data={
                    "attempt": number,
                    "attempts": retry.attempts,
                    "delay": delay,
                    "class": failure.error_type,
                    "message": failure.message,
                },
            )
            log(
                f"attempt {number}/{retry.attempts} failed ({failure.error_type}); "
                f"trying again in {delay:g}s"
            )
            if runner.wait_stop(delay):
                raise Stopped from None
            number += 1
