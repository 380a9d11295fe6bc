"""A ``claude`` that reports what it cost, as Claude Code's stream-json ``result`` does.

Each iteration writes a ``continue`` status (``stop`` on iteration ``FAKE_STOP_AT``,
default 3) and prints an ``init`` and a ``result`` event whose ``total_cost_usd`` is
``FAKE_COST`` (default 0.25), so the engine records the cost in ``state.json``.
Install it on PATH with :func:`install`.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def install(folder: Path) -> Path:
    """Write an executable ``claude`` into ``folder`` that runs this file; return the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    program = folder / "claude"
    program.write_text(f'#!/bin/sh\nexec {sys.executable} {Path(__file__).resolve()} "$@"\n')
    program.chmod(0o755)
    return folder


def main() -> None:
    sys.stdin.read()
    iteration = int(os.environ["LOOPRUNNER_ITERATION"])
    decision = "stop" if iteration == int(os.environ.get("FAKE_STOP_AT", "3")) else "continue"
    status = {"decision": decision, "reason": "as scripted", "summary": f"iteration {iteration}"}
    Path(os.environ["LOOPRUNNER_STATUS"]).write_text(json.dumps(status), encoding="utf-8")
    cost = float(os.environ.get("FAKE_COST", "0.25"))
    for event in (
        {"type": "system", "subtype": "init", "session_id": "c1", "claude_code_version": "2.0"},
        {"type": "result", "result": "ok", "total_cost_usd": cost, "num_turns": 1},
    ):
        print(json.dumps(event), flush=True)


if __name__ == "__main__":
    main()
