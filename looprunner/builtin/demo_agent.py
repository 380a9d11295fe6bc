"""The demo agent: a real program that resolves one TODO item per iteration.

It behaves as a coding agent is asked to: reads its prompt on stdin and its context
from ``LOOPRUNNER_CTX``, does one unit of work (the first unchecked item of
``TODO.md``), writes the result under ``results/``, ticks the item, appends what it did
to the progress file, and writes ``status.json`` — ``stop`` once nothing is left.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

_ITEM = re.compile(r"^- \[ \] (?P<task>[\w-]+) (?P<arg>\S+)\s*$")


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def count_words(text: str) -> str:
    """Count the file's words."""
    return f"{len(_words(text))} words\n"


def top_words(text: str) -> str:
    """List the five most common words."""
    return "".join(f"{word} {n}\n" for word, n in Counter(_words(text)).most_common(5))


def sort_lines(text: str) -> str:
    """Sort the file's lines."""
    return "".join(sorted(line + "\n" for line in text.splitlines() if line.strip()))


def checksum(text: str) -> str:
    """Hash the file with SHA-256."""
    return hashlib.sha256(text.encode()).hexdigest() + "\n"


TASKS: dict[str, Callable[[str], str]] = {
    "count-words": count_words,
    "top-words": top_words,
    "sort-lines": sort_lines,
    "checksum": checksum,
}


def main(argv: list[str] | None = None) -> int:
    """Resolve one TODO item and report it in status.json."""
    parser = argparse.ArgumentParser(prog="looprunner-demo-agent")
    parser.add_argument("--pace", type=float, default=0.0, help="seconds to 'think' per task")
    args = parser.parse_args(argv)
    sys.stdin.read()  # the rendered prompt; this agent knows its job already
    context = json.loads(Path(os.environ["LOOPRUNNER_CTX"]).read_text())
    project = Path(context["paths"]["project"])
    status_path = Path(os.environ["LOOPRUNNER_STATUS"])
    progress = Path(os.environ["LOOPRUNNER_PROGRESS"])
    iteration = context["iteration"]
    todo = project / "TODO.md"
    lines = todo.read_text().splitlines()
    pending = [(i, m) for i, line in enumerate(lines) if (m := _ITEM.match(line))]
    if not pending:
        print("Nothing left to do in TODO.md.")
        _write_status(status_path, "stop", "all TODO items are done", "nothing left", [])
        return 0
    index, match = pending[0]
    task, arg = match["task"], match["arg"]
    print(f"Iteration {iteration}: working on '{task} {arg}'")
    if args.pace > 0:
        time.sleep(args.pace)
    handler = TASKS.get(task)
    if handler is None:
        _write_status(status_path, "error", f"unknown task {task!r} in TODO.md", "", [])
        return 0
    result = handler((project / arg).read_text())
    out = project / "results" / f"{task}.txt"
    out.parent.mkdir(exist_ok=True)
    out.write_text(result)
    lines[index] = lines[index].replace("- [ ]", "- [x]", 1)
    todo.write_text("\n".join(lines) + "\n")
    with progress.open("a") as handle:
        handle.write(f"## Iteration {iteration}\n- {task} {arg} -> {out.relative_to(project)}\n\n")
    print(result, end="")
    left = len(pending) - 1
    decision = "stop" if left == 0 else "continue"
    reason = "all TODO items are done" if left == 0 else f"{left} item(s) left"
    _write_status(
        status_path, decision, reason, f"{task} {arg} -> {out.relative_to(project)}", [str(out)]
    )
    return 0


def _write_status(path: Path, decision: str, reason: str, summary: str, files: list[str]) -> None:
    document = {
        "decision": decision,
        "reason": reason,
        "summary": summary,
        "work": {"items_completed": [summary] if files else [], "files_touched": files},
        "errors": [],
    }
    path.write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
