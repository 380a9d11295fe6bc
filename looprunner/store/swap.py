"""Putting a new file in place of an old one: exchange the two, then remove the old.

``os.replace`` of a freshly written file over an existing one is what an atomic write
does, and on ext4 it is also what makes the kernel write the new file's data out there
and then (``auto_da_alloc``: a rename over an existing file is taken as "replace via
rename" and its data is flushed, so an application that forgot ``fsync`` keeps its
data after a crash). The engine rewrites ``state.json`` twice an iteration, never with
``fsync`` (the event log is the durable record), and pays that flush each time.

``renameat2(RENAME_EXCHANGE)`` swaps two names in one step instead: readers see the old
file or the new one, as with a rename, and the kernel flushes nothing. The old file,
now under the temporary name, is then removed; a crash in between leaves it under that
name, where :func:`looprunner.store.atomic.sweep_temp_files` removes it. Where the
exchange is not there (not Linux, an old kernel or C library, a file system without
it) :func:`put_in_place` is ``os.replace``.
"""

from __future__ import annotations

import errno
import functools
import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
#: errors that say the exchange itself is not available here (fall back, and remember)
_UNSUPPORTED = frozenset({errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP})


@functools.cache
def _renameat2() -> Callable[..., int] | None:
    """Return the C library's ``renameat2``, or None where there is none."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes  # only a writer needs it: commands that only look never load it

    try:
        function: Callable[..., int] = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    return function


_available = True


def _exchange(first: Path, second: Path) -> bool:
    """Swap the names ``first`` and ``second``; False if this system cannot."""
    global _available
    function = _renameat2() if _available else None
    if function is None:
        return False
    done = function(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE)
    if done == 0:
        return True
    import ctypes

    code = ctypes.get_errno()
    if code in _UNSUPPORTED:
        _available = False
        return False
    if code == errno.ENOENT:  # one of the two went away meanwhile: a rename says which
        return False
    raise OSError(code, os.strerror(code), str(second))


def put_in_place(new: Path, target: Path) -> None:
    """Make ``new`` (a file just written next to ``target``) be ``target``, atomically.

    Exchanges the two when ``target`` is a regular file, then removes the old one;
    otherwise (no such file yet, or the exchange not available) ``os.replace``.
    """
    try:
        is_file = stat.S_ISREG(target.lstat().st_mode)
    except FileNotFoundError:
        is_file = False
    if not is_file or not _exchange(new, target):
        new.replace(target)
        return
    try:
        new.unlink()  # the old file, now under the temporary name
    except IsADirectoryError:  # something put a folder in its place meanwhile: undo
        _exchange(new, target)
        new.replace(target)  # fails as a rename over a folder does, naming it
    except OSError:  # the new file is in place; the old one is swept with the temp files
        pass
