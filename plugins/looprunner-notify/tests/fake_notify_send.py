"""A fake ``notify-send``: appends its arguments (one JSON array a line) to $FAKE_NOTIFY_SEND_LOG.

Installed on PATH as ``notify-send`` by the tests; exits 0 like the real one.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main() -> int:
    with Path(os.environ["FAKE_NOTIFY_SEND_LOG"]).open("a", encoding="utf-8") as log:
        log.write(json.dumps(sys.argv[1:]) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
