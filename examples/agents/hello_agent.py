"""A tiny agent for the ``command`` provider: one greeting per iteration, stop after 3.

looprunner runs it once per iteration, in the project folder, with the rendered prompt
on stdin and the iteration's files in environment variables. Like a real coding agent it
reads ``context.json``, does one unit of work (here: appends a line to the progress
file), prints what it did (looprunner captures that into the iteration's ``output.md``)
and writes its decision to ``status.json``.

Standard library only, so it runs with any ``python3``.
"""

import json
import os
import sys
from pathlib import Path

STOP_AFTER = 3


def main() -> int:
    prompt = sys.stdin.read()  # the rendered prompt.md; this agent knows its job already
    context = json.loads(Path(os.environ["LOOPRUNNER_CTX"]).read_text(encoding="utf-8"))
    iteration = int(os.environ["LOOPRUNNER_ITERATION"])
    progress = Path(os.environ["LOOPRUNNER_PROGRESS"])

    greeting = f"hello #{iteration} from session {context['session']}"
    with progress.open("a", encoding="utf-8") as handle:
        handle.write(f"- iteration {iteration}: {greeting}\n")

    previous = context["previous"]
    print(f"Iteration {iteration} of at most {context['max_iterations']}: {greeting}")
    print(f"The prompt was {len(prompt.splitlines())} line(s) long.")
    if previous is not None:
        print(f"Iteration {previous['iteration']} said: {previous['summary']}")

    done = iteration >= STOP_AFTER
    status = {
        "decision": "stop" if done else "continue",
        "reason": f"{STOP_AFTER} greetings written" if done else f"{iteration} of {STOP_AFTER}",
        "summary": greeting,
        "work": {"items_completed": [greeting], "files_touched": [str(progress)]},
        "errors": [],
    }
    Path(os.environ["LOOPRUNNER_STATUS"]).write_text(
        json.dumps(status, indent=2) + "\n", encoding="utf-8"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
