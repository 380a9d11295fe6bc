"""A fake coding agent for the ``command`` provider that works a beads queue with ``bd``.

Each iteration, like the ``work`` stage's prompt asks: read the prompt, list the
session's ready beads, claim the first (``bd update ID --status=in_progress``), close it
(``bd close ID``), append a line to the progress file and write a ``continue`` status
(``stop`` when nothing was ready).

``--hang-after-claim`` makes it stop after claiming and wait to be killed (a crash test
kills its engine meanwhile); it gives up by itself after two minutes so that a broken
test cannot leave it behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

HANG_LIMIT = 120.0


def bd(*args: str) -> str:
    return subprocess.run(["bd", *args], check=True, capture_output=True, text=True).stdout


def write_status(decision: str, summary: str) -> None:
    status = {"decision": decision, "reason": summary, "summary": summary}
    Path(os.environ["LOOPRUNNER_STATUS"]).write_text(json.dumps(status), encoding="utf-8")


def main() -> int:
    sys.stdin.read()
    session = os.environ["LOOPRUNNER_SESSION"]
    ready = json.loads(bd("ready", f"--label=pipeline/{session}", "--json"))
    if not ready:
        write_status("stop", "no bead is ready")
        return 0
    bead = ready[0]["id"]
    bd("update", bead, "--status=in_progress")
    print(f"bead agent: claimed {bead}", flush=True)
    if "--hang-after-claim" in sys.argv:
        threading.Event().wait(HANG_LIMIT)
        return 1
    bd("close", bead, "--reason=done by the bead agent")
    with Path(os.environ["LOOPRUNNER_PROGRESS"]).open("a", encoding="utf-8") as progress:
        progress.write(f"- iteration {os.environ['LOOPRUNNER_ITERATION']}: closed {bead}\n")
    write_status("continue", f"closed {bead}")
    print(f"bead agent: closed {bead}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
