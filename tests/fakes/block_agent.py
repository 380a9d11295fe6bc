"""An agent for parallel-block tests, run by the ``command`` provider.

It learns which provider (branch) runs it from its status path
(``.../parallel-NN-BLOCK/BRANCH/stage-...``) and does what ``$BLOCK_AGENT_SCRIPT`` (a
JSON object) says for ``BRANCH`` — ``{"BRANCH/STAGE": ACTION, "BRANCH": ACTION,
"default": ACTION}``, the first that applies — where an action may combine, in this
order:

* ``{"after": PATH}``: wait until PATH exists (at most 60 s, then exit 9);
* ``{"touch": PATH}``: create PATH;
* ``{"meet": N}``: announce itself, then wait until N agents of the same stage and
  iteration have announced themselves; exit 7 if they do not within 30 s. N agents that
  all get past this point were running at the same time.
* ``{"wait_file": PATH}``: wait until PATH exists (at most 120 s, then exit 8).
* ``{"exit": CODE}``: exit with CODE without writing a status.

Every run first records ``{pid, branch, stage, iteration}`` in
``$BLOCK_AGENT_LOG/BRANCH-STAGE-ITERATION-PID.json``; a run that gets to the end writes
``BRANCH STAGE ITERATION`` to its output and a ``continue`` status.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def branch_of(status: Path) -> str:
    """Return the folder name that follows ``parallel-NN-BLOCK`` in the status path."""
    parts = status.parts
    for index, part in enumerate(parts):
        if part.startswith("parallel-") and index + 1 < len(parts):
            return parts[index + 1]
    return "-"


def wait_for(check: object, seconds: float) -> bool:
    """Poll ``check()`` every 20 ms until it is true or ``seconds`` passed."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def main() -> int:
    sys.stdin.read()
    status = Path(os.environ["LOOPRUNNER_STATUS"])
    stage = os.environ.get("LOOPRUNNER_STAGE", "-")
    iteration = os.environ.get("LOOPRUNNER_ITERATION", "0")
    branch = branch_of(status)
    log = Path(os.environ["BLOCK_AGENT_LOG"])
    record = {"pid": os.getpid(), "branch": branch, "stage": stage, "iteration": int(iteration)}
    (log / f"{branch}-{stage}-{iteration}-{os.getpid()}.json").write_text(json.dumps(record))
    script = json.loads(Path(os.environ["BLOCK_AGENT_SCRIPT"]).read_text())
    action = script.get(f"{branch}/{stage}", script.get(branch, script.get("default", {})))
    if "after" in action and not wait_for(lambda: Path(action["after"]).exists(), 60):
        return 9
    if "touch" in action:
        Path(action["touch"]).touch()
    if "meet" in action:
        here = log / "meet" / f"{stage}-{iteration}"
        here.mkdir(parents=True, exist_ok=True)
        (here / branch).touch()
        if not wait_for(lambda: len(list(here.iterdir())) >= action["meet"], 30):
            print(f"{branch}: the other providers never ran beside me", flush=True)
            return 7
    if "wait_file" in action and not wait_for(lambda: Path(action["wait_file"]).exists(), 120):
        return 8
    if "exit" in action:
        print(f"{branch}: exiting {action['exit']} as told", flush=True)
        return int(action["exit"])
    Path(os.environ["LOOPRUNNER_OUTPUT"]).write_text(f"{branch} {stage} {iteration}\n")
    status.write_text(json.dumps({"decision": "continue", "summary": f"{branch} {stage}"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
