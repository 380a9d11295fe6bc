"""The plain functions behind the pytest fixtures (usable without pytest)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

FAKE_AGENT = Path(__file__).with_name("fake_agent.py")


def wait_until(
    predicate: Callable[[], T],
    *,
    timeout: float = 30.0,
    interval: float = 0.05,
    what: str = "condition",
) -> T:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def write_stage(
    project: Path,
    name: str = "work",
    *,
    provider: str = "mock",
    termination: Mapping[str, Any] | None = None,
    statuses: Mapping[Any, Any] | None = None,
    outputs: Mapping[Any, str] | None = None,
    prompt: str = "Iteration ${ITERATION} of ${SESSION_NAME}. Write ${STATUS}.\n",
    extra: str = "",
) -> Path:
    """Write ``PROJECT/.looprunner/stages/NAME`` (stage.yaml, prompt.md, mock fixtures).

    ``statuses`` and ``outputs`` map an iteration number, or ``"default"``, to the
    status document and output text the mock agent gives for it.
    """
    folder = project / ".looprunner" / "stages" / name
    fixtures = folder / "fixtures"
    fixtures.mkdir(parents=True, exist_ok=True)
    term = dict(termination or {"type": "fixed", "iterations": 3})
    lines = [f"name: {name}", f"provider: {provider}", "termination:"]
    lines += [f"  {key}: {json.dumps(value)}" for key, value in term.items()]
    (folder / "stage.yaml").write_text("\n".join(lines) + "\n" + extra)
    (folder / "prompt.md").write_text(prompt)
    default_status = {"decision": "continue", "reason": "more", "summary": "did one"}
    for key, status in (statuses or {"default": default_status}).items():
        target = "status.json" if key == "default" else f"status-{key}.json"
        (fixtures / target).write_text(json.dumps(status))
    for key, text in (outputs or {}).items():
        target = "default.txt" if key == "default" else f"iteration-{key}.txt"
        (fixtures / target).write_text(text)
    return folder


def tmux_socket_path(name: str) -> Path:
    """Where tmux keeps the socket of ``tmux -L NAME`` (to tell whether a server started)."""
    base = os.environ.get("TMUX_TMPDIR", "/tmp")
    return Path(base) / f"tmux-{os.getuid()}" / name


def install_plugin(source: Path, target: Path) -> Path:
    """Install the plugin distribution at ``source`` into folder ``target`` with pip.

    No dependencies and no build isolation (offline, fast). Put ``target`` on
    ``PYTHONPATH`` (see :func:`plugin_path_env`) and every looprunner process a test
    starts loads the plugin through its entry point, exactly as after ``pip install``.
    """
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    return target


def plugin_path_env(site: Path) -> str:
    """Return ``PYTHONPATH`` with ``site`` first (for a plugin installed by install_plugin)."""
    return os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))


def fake_agent_argv(script_file: Path) -> list[str]:
    """Return the argv of the scriptable fake agent reading ``script_file``."""
    return [sys.executable, str(FAKE_AGENT), str(script_file)]


#: a ``command`` agent that reports, as its summary, a SHA-256 of ``EXAMPLE_API_KEY`` as it
#: received it ("missing" without it): a test learns whether a secret reached the agent
#: without the secret itself being written anywhere
ENV_PROBE_AGENT = r"""
import hashlib, json, os, sys
from pathlib import Path

sys.stdin.read()
seen = os.environ.get("EXAMPLE_API_KEY")
Path(os.environ["LOOPRUNNER_STATUS"]).write_text(json.dumps({
    "decision": "continue",
    "reason": "probe",
    "summary": hashlib.sha256(seen.encode()).hexdigest() if seen else "missing",
}))
"""


def write_env_probe_stage(project: Path, *, iterations: int) -> Path:
    """Write stage ``probe`` running :data:`ENV_PROBE_AGENT` (``PROJECT/probe_agent.py``).

    Returns the stage folder; the agent's file may be rewritten to change what it does.
    """
    agent = project / "probe_agent.py"
    agent.write_text(ENV_PROBE_AGENT)
    folder = project / ".looprunner" / "stages" / "probe"
    folder.mkdir(parents=True)
    (folder / "stage.yaml").write_text(
        "name: probe\nprovider: command\n"
        f"command: {json.dumps([sys.executable, str(agent)])}\n"
        f"termination:\n  type: fixed\n  iterations: {iterations}\n"
    )
    (folder / "prompt.md").write_text("Iteration ${ITERATION}: write ${STATUS}.\n")
    return folder


def iteration_summaries(events_file: Path) -> list[str]:
    """Return each ``iteration_complete`` event's summary, in order (none without a log)."""
    if not events_file.exists():
        return []
    rows = [json.loads(line) for line in events_file.read_text().splitlines() if line.strip()]
    return [row["data"]["summary"] for row in rows if row["type"] == "iteration_complete"]
