"""Keeps secrets from the environment out of everything looprunner writes.

The engine hands agents the environment they need (API keys included) but never writes
a secret's value to state, events, context files, outputs or logs: each of those passes
through :class:`Redactor` first, which replaces the value of every secret-looking
variable with ``[redacted:NAME]``. What agents print arrives in chunks, so it passes
through a :class:`StreamRedactor`, which also catches a secret split across chunks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_SECRET_NAME = re.compile(
    r"(API_?KEY|TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|CREDENTIAL|PRIVATE_?KEY|AUTH(?!OR))",
    re.IGNORECASE,
)
#: values shorter than this are not treated as secrets (they would match everywhere)
MIN_SECRET_LENGTH = 8


def secret_values(env: Mapping[str, str]) -> dict[str, str]:
    """Return ``{value: name}`` for every variable that looks like a secret."""
    return {
        value: name
        for name, value in env.items()
        if _SECRET_NAME.search(name) and len(value) >= MIN_SECRET_LENGTH
    }


class Redactor:
    """Replaces secret values in text and nested data."""

    def __init__(self, env: Mapping[str, str]) -> None:
        secrets = secret_values(env)
        self._names = secrets
        #: the secret values, for :class:`StreamRedactor`
        self.secrets = tuple(secrets)
        # longest first, so a secret containing another is replaced whole
        self.pattern = (
            re.compile("|".join(re.escape(v) for v in sorted(secrets, key=len, reverse=True)))
            if secrets
            else None
        )

        #: the longest secret's length: a stream holds back at most one less than this
        self.longest = max(map(len, secrets), default=0)

    def __bool__(self) -> bool:
        return self.pattern is not None

    def marker(self, secret: str) -> str:
        """Return what replaces ``secret``: ``[redacted:NAME]``."""
        return f"[redacted:{self._names[secret]}]"

    def text(self, value: str) -> str:
        """Return ``value`` with every secret replaced."""
        if self.pattern is None:
            return value
        return self.pattern.sub(lambda m: self.marker(m.group(0)), value)

    def data(self, value: Any) -> Any:
        """Return plain data (dicts, lists, strings) with every secret replaced."""
        if self.pattern is None:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {k: self.data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(v) for v in value]
        return value


class StreamRedactor:
    """Redacts a stream of text that arrives in chunks, secrets split over chunks included.

    Each :meth:`feed` returns what is safe to show now and holds back the shortest tail
    that could be the start of a secret (so at most the longest secret's length minus
    one character, and usually nothing), until the next chunk decides it. :meth:`flush`
    returns the held tail, redacted, once the stream ends (the end of an agent's run).
    """

    def __init__(self, redactor: Redactor) -> None:
        self._redactor = redactor
        self._secrets = tuple(redactor.secrets)
        self._held = ""

    def _hold_from(self, buffer: str, start: int) -> int:
        """Return the first index from ``start`` whose rest could be a secret cut short."""
        first = max(start, len(buffer) - self._redactor.longest + 1)
        for index in range(first, len(buffer)):
            rest = buffer[index:]
            if any(len(s) > len(rest) and s.startswith(rest) for s in self._secrets):
                return index
        return len(buffer)

    def feed(self, text: str) -> str:
        """Take the next chunk; return the redacted text that can be shown now."""
        pattern = self._redactor.pattern
        if pattern is None:
            return text
        buffer = self._held + text
        shown: list[str] = []
        position = 0
        while True:
            hold = self._hold_from(buffer, position)
            # a match starting before `hold` is final (it may end past it): no longer
            # secret, cut short by the end of the buffer, can start at or before it
            match = pattern.search(buffer, position)
            if match is None or match.start() >= hold:
                break
            shown += (buffer[position : match.start()], self._redactor.marker(match.group(0)))
            position = match.end()
        # nothing in [position, hold) starts a secret, whole or cut short
        shown.append(buffer[position:hold])
        self._held = buffer[hold:]
        return "".join(shown)

    def flush(self) -> str:
        """Return the held tail, redacted; the next chunk starts a new stream."""
        held, self._held = self._held, ""
        return self._redactor.text(held)
