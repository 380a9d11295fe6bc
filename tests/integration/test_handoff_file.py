"""A backend that asks for the ``file`` handoff gets the environment through a 0600 file.

The backend is tmux with ``handoff = "file"`` (what a backend whose engines run on other
machines declares): real engines in a private tmux server, a real ``command`` agent that
reports a hash of the secret it was given. The file must be gone once the launch is
over; a stale one is replaced; a symbolic link in its place refuses the launch.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import ClassVar

import pytest

from looprunner import Session, Stage
from looprunner.backends.tmux import TmuxBackend
from looprunner.errors import UnsafeFileError
from looprunner.names import ProjectPaths
from looprunner.testing import (
    ENV_PROBE_AGENT,
    iteration_summaries,
    wait_until,
    write_env_probe_stage,
)

pytestmark = pytest.mark.tmux

SECRET = "sk-file-handoff-fake-secret-4711"


class FileHandoffTmux(TmuxBackend):
    """tmux, declaring that its engines may run on another machine."""

    handoff: ClassVar[str] = "file"


def write_probe_stage(project: Path, *, iterations: int) -> Stage:
    write_env_probe_stage(project, iterations=iterations)
    return Stage.load("probe", project=project)


def summaries(project: Path, name: str) -> list[str]:
    return iteration_summaries(ProjectPaths.of(project).session(name).events_file)


def engine_argvs(project: Path) -> list[list[str]]:
    """The command lines of this project's engine processes now running."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [part.decode(errors="replace") for part in argv if part]
        if words[1:3] == ["-m", "looprunner"] and "engine" in words and str(project) in words:
            found.append(words)
    return found


def test_the_environment_reaches_the_agent_through_a_file_that_is_gone_after_start(
    project: Path,
) -> None:
    stage = write_probe_stage(project, iterations=200)
    run_dir = ProjectPaths.of(project).session("filed").run_dir
    env = {**os.environ, "EXAMPLE_API_KEY": SECRET}
    session = Session.start("filed", stage, project, backend=FileHandoffTmux(), env=env)
    try:
        assert not list(run_dir.glob(".env-handoff*")), "the handoff outlived the launch"
        (argv,) = engine_argvs(project)
        assert "--env-file" in argv and "--env-fifo" not in argv, argv
        assert SECRET not in " ".join(argv)
        wait_until(lambda: summaries(project, "filed"), timeout=60, what="an iteration")
        assert summaries(project, "filed")[0] == hashlib.sha256(SECRET.encode()).hexdigest()
    finally:
        session.kill()


def failed_once(project: Path, name: str) -> tuple[Session, Stage]:
    """A session whose first agent exits non-zero: failed, resumable."""
    stage = write_probe_stage(project, iterations=1)
    agent = project / "probe_agent.py"
    agent.write_text("import sys\nsys.exit(7)\n")
    session = Session.start(name, stage, project, backend=FileHandoffTmux())
    session.wait(timeout=60)
    assert session.status().health.value == "failed"
    backend = FileHandoffTmux()
    wait_until(
        lambda: (live := backend.sessions(project)) is not None and name not in live,
        timeout=30,
        what="the engine's tmux session to end",
    )
    agent.write_text(ENV_PROBE_AGENT)
    return session, stage


def test_a_stale_handoff_file_is_replaced_by_the_next_launch(project: Path) -> None:
    session, _ = failed_once(project, "stale")
    run_dir = ProjectPaths.of(project).session("stale").run_dir
    stale = run_dir / ".env-handoff.json"
    stale.write_text(json.dumps({"EXAMPLE_API_KEY": "left by a launcher that died"}))
    env = {**os.environ, "EXAMPLE_API_KEY": SECRET}
    session.resume(backend=FileHandoffTmux(), env=env)
    session.wait(timeout=60)
    assert session.status().health.value == "complete"
    assert summaries(project, "stale") == [hashlib.sha256(SECRET.encode()).hexdigest()]
    assert not os.path.lexists(stale)


def test_a_symlink_in_place_of_the_handoff_file_refuses_the_launch(project: Path) -> None:
    session, _ = failed_once(project, "linked")
    run_dir = ProjectPaths.of(project).session("linked").run_dir
    target = project / "elsewhere.json"
    (run_dir / ".env-handoff.json").symlink_to(target)
    env = {**os.environ, "EXAMPLE_API_KEY": SECRET}
    with pytest.raises(UnsafeFileError, match="symbolic link"):
        session.resume(backend=FileHandoffTmux(), env=env)
    assert not target.exists()  # nothing was written through the link
    assert session.status().health.value == "failed"  # and nothing ran
    assert not engine_argvs(project)


def test_cleanup_reports_and_removes_the_environment_a_dead_launch_left(project: Path) -> None:
    from looprunner import cleanup
    from looprunner.handoff import write_file

    failed_once(project, "dead")
    run_dir = ProjectPaths.of(project).session("dead").run_dir
    left = write_file(run_dir, {"EXAMPLE_API_KEY": SECRET})  # as a launcher killed mid-launch
    found = [(p.kind, p.session, p.path) for p in cleanup(project).problems]
    assert ("stale_handoff", "dead", str(left)) in found
    assert left.exists(), "reporting changes nothing"
    done = cleanup(project, fix=True, kinds=("stale_handoff",))
    (repaired,) = [p for p in done.problems if p.kind == "stale_handoff"]
    assert (repaired.fixed, repaired.action) == (True, "removed the environment file")
    assert not os.path.lexists(left)
    assert not [p for p in cleanup(project).problems if p.kind == "stale_handoff"]


def test_cleanup_leaves_the_handoff_of_a_running_session_alone(project: Path) -> None:
    from looprunner import cleanup

    stage = write_probe_stage(project, iterations=200)
    session = Session.start("busy", stage, project, backend=FileHandoffTmux())
    try:
        run_dir = ProjectPaths.of(project).session("busy").run_dir
        planted = run_dir / ".env-handoff.json"  # what a launch under way would have there
        planted.write_text("{}")
        assert not [p for p in cleanup(project).problems if p.kind == "stale_handoff"]
        assert planted.exists()
    finally:
        session.kill()
