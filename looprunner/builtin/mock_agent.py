"""The mock agent: a real process that replays fixtures (see ``MockProvider``).

Run as ``python -m looprunner.builtin.mock_agent`` with the ``LOOPRUNNER_*`` variables
set. Imports nothing from looprunner, so it starts fast.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def _pick(folder: Path | None, specific: str, fallback: str) -> Path | None:
    """Return the iteration's own fixture file, else the fallback, else None."""
    if folder is None:
        return None
    for candidate in (folder / specific, folder / fallback):
        if candidate.is_file():
            return candidate
    return None


def main() -> int:
    """Print the iteration's output, wait the mock delay, write its status."""
    iteration = int(os.environ.get("LOOPRUNNER_ITERATION", "1"))
    status_path = Path(os.environ["LOOPRUNNER_STATUS"])
    fixtures_env = os.environ.get("LOOPRUNNER_MOCK_FIXTURES")
    folder = Path(fixtures_env) if fixtures_env else None
    delay = float(os.environ.get("LOOPRUNNER_MOCK_DELAY") or 0)
    sys.stdin.read()  # take the prompt, as a real agent would

    output = _pick(folder, f"iteration-{iteration}.txt", "default.txt")
    text = output.read_text(encoding="utf-8") if output else f"mock agent: iteration {iteration}\n"
    sys.stdout.write(text)
    sys.stdout.flush()
    if delay > 0:
        time.sleep(delay)

    status_file = _pick(folder, f"status-{iteration}.json", "status.json")
    if status_file is not None:
        raw = status_file.read_text(encoding="utf-8")
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and parsed.get("crash"):
            sys.stderr.write(f"mock agent: crashing on iteration {iteration} as the fixture says\n")
            return 1
    else:
        raw = json.dumps(
            {"decision": "continue", "reason": "mock", "summary": f"mock iteration {iteration}"}
        )
    status_path.write_text(raw, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
