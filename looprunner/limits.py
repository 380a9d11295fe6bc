"""Size limits a user may change through the environment.

Every limit reads the same way: a positive whole number from its variable, or the
default when the variable is unset or not one (as docs/operations.md promises for every
numeric variable: a bad value is ignored, never fatal).
"""

from __future__ import annotations

import os


def env_limit(variable: str, default: int) -> int:
    """Return the positive whole number ``variable`` holds, else ``default``."""
    try:
        value = int(os.environ.get(variable, ""))
    except ValueError:
        return default
    return value if value > 0 else default
