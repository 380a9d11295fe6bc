"""What went wrong with an agent that failed: a class a user (and the retry) can act on.

Claude Code and Codex exit 1 for every failure; what tells a rate limit from a bad key
is the line they print last. The patterns here are the lines both CLIs print (Claude
Code's ``API Error: 429 {... "rate_limit_error" ...}``, ``API Error: 529 {...
"overloaded_error" ...}``, ``Invalid API key · Please run /login``; Codex's ``exceeded
retry limit, last status: 429 Too Many Requests``, ``401 Unauthorized``), matched
against the end of what the agent printed. A provider may know better: its
``classify(exit_code, output)`` (:class:`~looprunner.protocols.FailureClassifying`) is
asked first.
"""

from __future__ import annotations

import re

#: failures the engine retries, with backoff, before the iteration fails
RETRIED = frozenset({"provider_rate_limited", "provider_overloaded"})

#: every class a failed agent run may get; a provider's own answer must be one of them
CLASSES = frozenset(
    {
        "provider_rate_limited",
        "provider_overloaded",
        "provider_auth",
        "provider_timeout",
        "provider_stalled",
        "provider_exit",
    }
)

#: how much of the end of the output is searched: the CLIs print their error last
TAIL = 8192

_PATTERNS = (
    (
        "provider_auth",
        re.compile(
            r"authentication_error|invalid (?:x-)?api[ _-]?key|missing api key|"
            r"please run /login|run /login|not logged in|\b401\b|unauthorized|"
            r"could not resolve authentication",
            re.IGNORECASE,
        ),
    ),
    (
        "provider_overloaded",
        re.compile(r"overloaded_error|\boverloaded\b|\b529\b", re.IGNORECASE),
    ),
    (
        "provider_rate_limited",
        re.compile(
            r"rate_limit_error|rate[ _-]?limit|too many requests|\b429\b|usage limit|"
            r"hit your (?:usage )?limit",
            re.IGNORECASE,
        ),
    ),
)


def classify_output(output: str) -> str:
    """Return the class of a failed run from what it printed (``provider_exit`` if none)."""
    tail = output[-TAIL:]
    for error_type, pattern in _PATTERNS:
        if pattern.search(tail):
            return error_type
    return "provider_exit"


_MESSAGES = {
    "provider_rate_limited": "the provider refused the agent for its rate or usage limit",
    "provider_overloaded": "the provider was overloaded",
    "provider_auth": "the agent could not authenticate with its provider",
}


def describe(error_type: str, exit_code: int | None, output: str, hint: str | None) -> str:
    """Return the message of a failure: what it is, the agent's own last line, a hint."""
    last = next(
        (line.strip() for line in reversed(output[-TAIL:].splitlines()) if line.strip()), ""
    )
    what = _MESSAGES.get(error_type, "the agent failed")
    message = f"{what} (exit {exit_code})"
    if last:
        message += f": {last[:300]}"
    if hint:
        message += f"; {hint}"
    return message
