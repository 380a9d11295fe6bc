"""Programs a provider or backend runs: found on PATH, their version, their credentials.

What ``looprunner doctor`` shows of the built-in providers and the tmux backend. A
program is looked up on PATH and asked for its version (``--version``, with a short
timeout, never through a shell); credentials are looked for by variable name and by the
file the program's own login writes. Values of variables are never read into a report.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from looprunner.models import Check

#: seconds a program may take to print its version
VERSION_TIMEOUT = 10.0


def program_version(argv: Sequence[str], env: Mapping[str, str]) -> str | None:
    """Return the first line a program prints for its version, or None if it would not."""
    try:
        done = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            timeout=VERSION_TIMEOUT,
            env=dict(env),
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0][:200] if done.returncode == 0 and lines else None


def program_check(
    *,
    kind: str,
    name: str,
    program: str,
    install: str,
    env: Mapping[str, str],
    version_args: Sequence[str] = ("--version",),
    auth_variables: Sequence[str] = (),
    login_files: Sequence[str] = (),
    login_hint: str = "",
) -> Check:
    """Check one program: on PATH, its version, and whether it has credentials."""
    found = shutil.which(program, path=env.get("PATH"))
    if found is None:
        return Check(kind, name, False, f"{program!r} is not on PATH; install it: {install}")
    version = program_version([found, *version_args], env)
    notes: list[str] = []
    if auth_variables or login_files:
        present = [v for v in auth_variables if env.get(v)]
        home = Path(env.get("HOME") or Path.home())
        logins = [f for f in login_files if (home / f).is_file()]
        if not present and not logins:
            wanted = " or ".join(auth_variables)
            notes.append(f"no credentials found: set {wanted}{login_hint}")
    detail = f"{found}" + ("" if version else " (its version could not be read)")
    if auth_variables:
        present = [v for v in auth_variables if env.get(v)]
        if present:
            detail += f"; credentials from {', '.join(present)}"
    return Check(kind, name, True, detail, version=version, notes=tuple(notes))


def running_as_root() -> bool:
    """Tell whether this process runs as root (containers and CI usually do)."""
    return hasattr(os, "geteuid") and os.geteuid() == 0
