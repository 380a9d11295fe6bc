"""Shared tools of the fault-injection suite.

* :class:`Gate`: a ``command``-provider agent that, each iteration, records its pid and
  then blocks until the test releases it, so a test knows exactly where the engine is
  (idle, waiting for its agent) without sleeping;
* process inspection through ``/proc``: live (non-zombie) processes, members of a process
  group, the engines of a session;
* :func:`no_traceback` and :func:`snapshot` for the "never crash, write nothing" checks.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from looprunner.testing import wait_until

GATED_AGENT = r"""
import json, os, sys, time
from pathlib import Path

sys.stdin.read()
gate = Path(sys.argv[1])
session = os.environ["LOOPRUNNER_SESSION"]
iteration = os.environ["LOOPRUNNER_ITERATION"]
mine = f"{session}-{iteration}"
(gate / f"started-{mine}.tmp").write_text(str(os.getpid()))
(gate / f"started-{mine}.tmp").replace(gate / f"started-{mine}")
print(f"gated agent {mine} waiting", flush=True)
deadline = time.monotonic() + 120  # never outlive a test that forgot us
while not ((gate / f"go-{mine}").exists() or (gate / f"go-{session}").exists()):
    if time.monotonic() > deadline:
        sys.exit(9)
    time.sleep(0.02)
Path(os.environ["LOOPRUNNER_STATUS"]).write_text(json.dumps(
    {"decision": "continue", "reason": "released", "summary": f"released {mine}"}
))
print(f"gated agent {mine} released", flush=True)
"""


class Gate:
    """A gated agent for the ``command`` provider and the folder it is released through."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.script = folder / "gated_agent.py"
        self.script.write_text(GATED_AGENT)

    def argv(self) -> list[str]:
        return [sys.executable, str(self.script), str(self.folder)]

    def stage(self, project: Path, name: str = "work", *, iterations: int = 1) -> Path:
        """Write stage NAME into the project, running this gate's agent."""
        folder = project / ".looprunner" / "stages" / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "stage.yaml").write_text(
            f"name: {name}\nprovider: command\ncommand: {json.dumps(self.argv())}\n"
            f"termination:\n  type: fixed\n  iterations: {iterations}\n"
        )
        (folder / "prompt.md").write_text("Iteration ${ITERATION}: write ${STATUS}.\n")
        return folder

    def agent_pid(self, session: str, iteration: int) -> int | None:
        """The pid of the agent of that iteration, once it has started."""
        try:
            return int((self.folder / f"started-{session}-{iteration}").read_text())
        except FileNotFoundError:
            return None

    def wait_started(self, session: str, iteration: int, timeout: float = 60) -> int:
        return wait_until(
            lambda: self.agent_pid(session, iteration),
            timeout=timeout,
            what=f"the agent of {session} iteration {iteration} to start",
        )

    def release(self, session: str, iteration: int | None = None) -> None:
        """Let that iteration's agent (or every iteration's, without one) finish."""
        suffix = session if iteration is None else f"{session}-{iteration}"
        (self.folder / f"go-{suffix}").write_text("go")


# --------------------------------------------------------------------------- processes


def stat_fields(pid: int) -> list[bytes] | None:
    """Fields 3 onwards of /proc/PID/stat (state, ppid, pgrp, ...), None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return raw[raw.rfind(b")") + 2 :].split()


def is_live(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    fields = stat_fields(pid)
    return fields is not None and fields[0] != b"Z"


def all_pids() -> Iterator[int]:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            yield int(entry.name)


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of process group ``pgid``."""
    found = []
    for pid in all_pids():
        fields = stat_fields(pid)
        if fields is not None and fields[0] != b"Z" and int(fields[2]) == pgid:
            found.append(pid)
    return found


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]


def engine_pids(project: Path, session: str) -> list[int]:
    """Live engine processes (``python -m looprunner ... engine --session NAME``) of a session."""
    found = []
    for pid in all_pids():
        argv = cmdline(pid)
        if (
            argv[1:3] == ["-m", "looprunner"]  # not the tmux server, whose argv names it too
            and "engine" in argv
            and "--session" in argv
            and argv[argv.index("--session") + 1 : argv.index("--session") + 2] == [session]
            and str(project) in argv
            and is_live(pid)
        ):
            found.append(pid)
    return found


def kill_if_live(pid: int, sig: int = signal.SIGKILL) -> None:
    """Signal ``pid`` (one this test started) if it still lives."""
    if is_live(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


# --------------------------------------------------------------------------- checks


def no_traceback(result: Any) -> None:
    """A command never shows a Python traceback, whatever it was given."""
    text = (result.stdout or "") + (result.stderr or "")
    assert "Traceback" not in text, text[-3000:]
    assert "internal error" not in text, text[-3000:]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes."""
    if not folder.exists():
        return {}
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }
