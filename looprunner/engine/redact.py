"""Keeps secrets from the environment out of everything looprunner writes.

The engine hands agents the environment they need (API keys included) but never writes
a secret's value to state, events, context files, outputs or logs: each of those passes
through :class:`Redactor` first, which replaces the value of every secret-looking
variable with ``[redacted:NAME]``.
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
        # longest first, so a secret containing another is replaced whole
        self._pattern = (
            re.compile("|".join(re.escape(v) for v in sorted(secrets, key=len, reverse=True)))
            if secrets
            else None
        )

    def __bool__(self) -> bool:
        return self._pattern is not None

    def text(self, value: str) -> str:
        """Return ``value`` with every secret replaced."""
        if self._pattern is None:
            return value
        return self._pattern.sub(lambda m: f"[redacted:{self._names[m.group(0)]}]", value)

    def data(self, value: Any) -> Any:
        """Return plain data (dicts, lists, strings) with every secret replaced."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {k: self.data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(v) for v in value]
        return value
