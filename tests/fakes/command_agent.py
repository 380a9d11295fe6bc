"""An agent for the ``command`` provider: records any argv, then follows the fake script.

Run as ``python command_agent.py ARG...``; see :mod:`fake_agent` for the log and script.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fake_agent import act, base_record

if __name__ == "__main__":
    prompt = sys.stdin.read()
    iteration = os.environ.get("LOOPRUNNER_ITERATION", "0")
    sys.exit(act("command", iteration, base_record("command", prompt)))
