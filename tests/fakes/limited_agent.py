"""An agent for the ``command`` provider that fails the way the real CLIs do when limited.

Run as ``python limited_agent.py SCRIPT.json``. The script maps an iteration number (or
``default``) to a list of actions, one per attempt (the last repeats): ``{"print": TEXT,
"exit": N}`` prints the line a CLI prints and exits N; ``{"status": {...}}`` writes
status.json (with ``cost_usd``/``usage`` if given) and exits 0; ``{"hang": true}``
prints nothing and waits to be stopped. Each run appends a line ``ITERATION`` to
``calls.log`` beside the script, so a test can count attempts.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

if __name__ == "__main__":
    sys.stdin.read()
    script_file = Path(sys.argv[1])
    iteration = os.environ["LOOPRUNNER_ITERATION"]
    calls = script_file.with_name("calls.log")
    with calls.open("a", encoding="utf-8") as log:
        log.write(iteration + "\n")
    attempt = sum(1 for line in calls.read_text().splitlines() if line == iteration)
    script = json.loads(script_file.read_text(encoding="utf-8"))
    actions = script.get(iteration, script.get("default"))
    action = actions[min(attempt, len(actions)) - 1]
    if action.get("hang"):
        deadline = time.monotonic() + 300  # bounded: the engine stops it long before
        while time.monotonic() < deadline:
            time.sleep(0.2)
        sys.exit(0)
    if "print" in action:
        print(action["print"], flush=True)
        sys.exit(action.get("exit", 1))
    Path(os.environ["LOOPRUNNER_STATUS"]).write_text(json.dumps(action["status"]))
    print(f"iteration {iteration} done", flush=True)
