"""A scriptable fake agent for the ``command`` provider (see ``lr_fake_agent``).

Usage: ``python fake_agent.py SCRIPT.json``. Reads its prompt on stdin like a real
agent, then does what the script says for ``$LOOPRUNNER_ITERATION`` (or ``default``):
``{"decision": ..., "reason": ..., "summary": ...}`` is written to ``$LOOPRUNNER_STATUS``;
``{"exit": N}`` exits with N and writes nothing; ``{"sleep": S}`` waits S seconds
first; ``{"no_status": true}`` exits 0 without a status. Every call is appended to
``SCRIPT.calls.jsonl`` (iteration, prompt) so a test can see what the agent got.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def main() -> int:
    """Act out one iteration of the script."""
    script_file = Path(sys.argv[1])
    script = json.loads(script_file.read_text())
    iteration = os.environ.get("LOOPRUNNER_ITERATION", "1")
    prompt = sys.stdin.read()
    with script_file.with_suffix(".calls.jsonl").open("a") as calls:
        calls.write(json.dumps({"iteration": int(iteration), "prompt": prompt}) + "\n")
    step = script.get(iteration, script.get("default", {"decision": "continue"}))
    print(f"fake agent: iteration {iteration}: {json.dumps(step)}", flush=True)
    if step.get("sleep"):
        time.sleep(float(step["sleep"]))
    if "exit" in step:
        return int(step["exit"])
    if step.get("no_status"):
        return 0
    status = {
        k: v for k, v in step.items() if k in ("decision", "reason", "summary", "work", "errors")
    }
    Path(os.environ["LOOPRUNNER_STATUS"]).write_text(json.dumps(status))
    return 0


if __name__ == "__main__":
    sys.exit(main())
