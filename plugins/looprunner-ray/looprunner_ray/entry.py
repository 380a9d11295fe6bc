"""The job's entrypoint on the node: prove the project is shared, then become the engine.

``python -m looprunner_ray.entry PROJECT MARKER TOKEN -- ENGINE-ARGV...``

The launcher wrote ``TOKEN`` into ``MARKER`` (a file in the project) just before it
submitted the job. If this node reads the same token at the same path, the project is
on storage both machines see, so the engine's lock, state and events are the ones every
looprunner command reads: the entrypoint says so by creating ``MARKER.seen`` and
replaces itself with the engine (same pid: Ray's ``stop_job`` reaches it). If not, it
prints why and exits 2 without running anything; the launcher shows that line.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

#: exit status when the project is not visible here (the engine never ran)
NOT_SHARED = 2


def _seen(marker: Path) -> Path:
    return marker.with_name(marker.name + ".seen")


def check_shared(project: Path, marker: Path, token: str) -> str | None:
    """Return why this node cannot run the engine, or None if the project is shared."""
    try:
        found = marker.read_text(encoding="utf-8").strip()
    except OSError as exc:
        found = f"<{exc.strerror or exc}>"
    if found != token:
        return (
            f"looprunner-ray: the project folder {project} is not the launcher's on node "
            f"{socket.gethostname()} (marker {marker.name}: {found or 'empty'}); put the "
            "project on storage every node mounts at the same path"
        )
    return None


def main(argv: list[str]) -> int:
    """Check the marker, acknowledge it, and exec the engine argv (never returns on success)."""
    if len(argv) < 5 or argv[3] != "--":
        print("usage: python -m looprunner_ray.entry PROJECT MARKER TOKEN -- ARGV...")
        return NOT_SHARED
    project, marker, token, engine = Path(argv[0]), Path(argv[1]), argv[2], argv[4:]
    problem = check_shared(project, marker, token)
    if problem is not None:
        print(problem, flush=True)
        return NOT_SHARED
    if not os.access(engine[0], os.X_OK):
        print(
            f"looprunner-ray: {engine[0]} is not installed on node {socket.gethostname()}; "
            "install looprunner at the same path on every node",
            flush=True,
        )
        return NOT_SHARED
    seen = _seen(marker)
    temp = seen.with_name(f".{seen.name}.{os.getpid()}")
    temp.write_text(socket.gethostname(), encoding="utf-8")
    temp.replace(seen)  # atomic: the launcher never reads half a name
    os.chdir(project)
    sys.stdout.flush()
    os.execv(engine[0], engine)  # the argv the launcher built: no shell
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
