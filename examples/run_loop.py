"""Run the ``hello`` example stage from Python and print what happened.

    python examples/run_loop.py            # in tmux when it is installed, else in this process
    python examples/run_loop.py --inline   # always in this process (the inline backend)
    python examples/run_loop.py --keep     # keep the temporary project to look around

It creates a temporary project, copies ``examples/stages/hello`` into its
``.looprunner/stages/`` and ``examples/agents/hello_agent.py`` into its ``agents/``, starts
session ``hello``, waits for it, and prints every event of the session's log.

With tmux the engine runs in the tmux session ``pipeline-hello`` on the server that
``LOOPRUNNER_TMUX_SOCKET`` names (unset: your default tmux server); the session closes
by itself when the loop ends. With the inline backend ``Session.start`` runs the whole
loop before it returns and the engine's output appears in this terminal.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from looprunner import Health, Session, Stage

EXAMPLES = Path(__file__).resolve().parent


def make_project(project: Path) -> None:
    """Copy the hello stage and its agent into ``project``."""
    shutil.copytree(EXAMPLES / "stages" / "hello", project / ".looprunner" / "stages" / "hello")
    (project / "agents").mkdir()
    shutil.copy(EXAMPLES / "agents" / "hello_agent.py", project / "agents" / "hello_agent.py")


def run(project: Path, backend: str) -> int:
    make_project(project)
    stage = Stage.load("hello", project=project)
    print(f"project: {project}\nbackend: {backend}")

    session = Session.start("hello", stage.loop(iterations=5), project=project, backend=backend)
    final = session.wait(timeout=120)

    print(f"\nsession {session.name}: {final.health.value}")
    for event in session.events():
        where = f"{event.stage} #{event.iteration}" if event.iteration else (event.stage or "-")
        print(f"  {event.seq:>2} {event.type:<20} {where:<10} {event.data}")
    print(f"\n{session.paths.progress_file.name}:")
    print(session.paths.progress_file.read_text(encoding="utf-8"))
    return 0 if final.health is Health.COMPLETE else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inline", action="store_true", help="run in this process, not tmux")
    parser.add_argument("--keep", action="store_true", help="keep the temporary project")
    args = parser.parse_args(argv)
    backend = "inline" if args.inline or shutil.which("tmux") is None else "tmux"

    project = Path(tempfile.mkdtemp(prefix="looprunner-example-"))
    try:
        return run(project, backend)
    finally:
        if args.keep:
            print(f"kept {project}")
        else:
            shutil.rmtree(project, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
