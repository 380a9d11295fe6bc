"""Single key presses from a terminal, for ``looprunner top``.

rich draws but does not read keys, so the terminal is put in cbreak mode (each key
arrives at once, unechoed; Ctrl-C still interrupts) for as long as the view runs, and
restored on the way out, whatever ends it. Arrow keys arrive as the three bytes a
terminal sends for them and are read as ``"up"`` and ``"down"``.
"""

from __future__ import annotations

import os
import select
import termios
import tty
from types import TracebackType
from typing import Any

#: what a terminal sends for the arrow keys, in its normal and its application mode
ARROWS = {
    b"\x1b[A": "up",
    b"\x1b[B": "down",
    b"\x1bOA": "up",
    b"\x1bOB": "down",
}


class Keys:
    """A terminal's keys, one at a time (use as a context manager around the view)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._saved: list[Any] | None = None
        self._pending = b""

    def __enter__(self) -> Keys:
        self.enter()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.leave()

    def enter(self) -> None:
        """Put the terminal in cbreak mode (again, after :meth:`leave`)."""
        if self._saved is None:
            self._saved = termios.tcgetattr(self.fd)
        tty.setcbreak(self.fd)

    def leave(self) -> None:
        """Give the terminal back as it was (before running another program on it)."""
        if self._saved is not None:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)

    def read(self, timeout: float) -> str | None:
        """Wait up to ``timeout`` seconds for a key; return it, or None if none came."""
        if not self._pending:
            ready, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
            if not ready:
                return None
            self._pending = os.read(self.fd, 64)
            if not self._pending:
                return "eof"  # the terminal went away
        for sequence, name in ARROWS.items():
            if self._pending.startswith(sequence):
                self._pending = self._pending[len(sequence) :]
                return name
        if self._pending.startswith(b"\x1b["):  # another key's sequence: skip it whole
            self._pending = b""
            return None
        first, self._pending = self._pending[:1], self._pending[1:]
        return "escape" if first == b"\x1b" else first.decode("latin-1")
