"""Creates the demo project that ``looprunner demo`` runs a loop in."""

from __future__ import annotations

import json
import sys
from pathlib import Path

NOTES = """\
A loop runs a fresh agent each iteration.
Context carries over through files, not memory.
The agent decides to continue or stop in status.json.
The engine records every iteration and survives crashes.
A fresh agent reads the progress file and picks the next task.
"""

TODO = """\
# Demo TODO list (the demo agent resolves one item per iteration)

- [ ] count-words notes.txt
- [ ] top-words notes.txt
- [ ] sort-lines notes.txt
- [ ] checksum notes.txt
"""

PROMPT = """\
# Demo agent

Session ${SESSION_NAME}, iteration ${ITERATION}.
Read your context from ${CTX} and the progress so far from ${PROGRESS}.

Resolve the first unchecked item in TODO.md, write its result under results/,
tick the item, append what you did to ${PROGRESS}, and write your decision to
${STATUS}: "stop" when no item is left, else "continue".
"""


def create(project: Path, *, pace: float) -> int:
    """Write the demo project into ``project``; return how many TODO items it has."""
    project.mkdir(parents=True, exist_ok=True)
    (project / "notes.txt").write_text(NOTES)
    (project / "TODO.md").write_text(TODO)
    stage = project / ".looprunner" / "stages" / "demo"
    stage.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "looprunner.builtin.demo_agent", "--pace", str(pace)]
    (stage / "stage.yaml").write_text(
        "name: demo\n"
        "description: Resolve one TODO item per iteration (the looprunner demo agent)\n"
        "provider: command\n"
        f"command: {json.dumps(command)}\n"
        "termination:\n"
        "  type: fixed\n"
        "  iterations: 10\n"
    )
    (stage / "prompt.md").write_text(PROMPT)
    return TODO.count("- [ ]")
