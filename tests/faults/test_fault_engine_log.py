"""``engine.log`` is rotated at a size, and read across the rotation (issue 10, item 5).

Every agent's output is mirrored to ``engine.log``, which grew without bound (500 MB in
the issue's run). Now it is renamed ``engine.log.1`` past ``LOOPRUNNER_MAX_ENGINE_LOG_BYTES``
(default 64 MiB) and a new one begun, and ``monitor`` (the last lines, and ``--follow``)
reads the two as one stream, so the latest lines show across the boundary.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from looprunner.names import ProjectPaths
from looprunner.store.logs import follow, last_lines
from tests.faults.faultkit import no_traceback

#: prints ``lines`` numbered lines of about 1 kB each, then writes its status
CHATTY = r"""
import json, os, sys
sys.stdin.read()
iteration = os.environ["LOOPRUNNER_ITERATION"]
for n in range(int(sys.argv[1])):
    print(f"iteration {iteration} line {n} " + "x" * 970, flush=n % 7 == 0)
with open(os.environ["LOOPRUNNER_STATUS"], "w") as handle:
    json.dump({"decision": "continue", "summary": f"chatted {iteration}"}, handle)
"""

LIMIT = 100_000


def rotated(log: Path) -> Path:
    return log.with_name(log.name + ".1")


def test_engine_log_is_rotated_at_the_limit_and_monitor_reads_across_it(project, tmp_path, cli):
    script = tmp_path / "chatty.py"
    script.write_text(CHATTY)
    folder = project / ".looprunner" / "stages" / "talk"
    folder.mkdir(parents=True)
    argv = [sys.executable, str(script), "40"]
    (folder / "stage.yaml").write_text(
        f"name: talk\nprovider: command\ncommand: {json.dumps(argv)}\n"
        "termination:\n  type: fixed\n  iterations: 6\n"
    )
    (folder / "prompt.md").write_text("Talk.\n")
    env = {"LOOPRUNNER_MAX_ENGINE_LOG_BYTES": str(LIMIT)}
    run = cli("start", "talk", "--stage", "talk", "--foreground", env=env)
    no_traceback(run)
    assert run.returncode == 0, run.stderr

    log = ProjectPaths.of(project).session("talk").engine_log
    previous = rotated(log)
    assert log.stat().st_size <= LIMIT, log.stat().st_size
    assert previous.exists() and previous.stat().st_size <= LIMIT
    assert not log.with_name("engine.log.2").exists(), "one previous file is kept, no more"
    whole = (previous.read_bytes() + log.read_bytes()).decode()
    assert "iteration 1 line 0 " not in whole, "the oldest output was not let go"
    assert "iteration 6 line 39 " in log.read_text()

    # more lines than the current file holds: the look back goes on into engine.log.1
    wanted = len(log.read_text().splitlines()) + 5
    shown = cli("monitor", "talk", "-n", str(wanted))
    no_traceback(shown)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[-wanted:] == whole.splitlines()[-wanted:]


def test_a_line_cut_by_the_rotation_is_read_whole(tmp_path: Path) -> None:
    log = tmp_path / "engine.log"
    rotated(log).write_bytes(b"one\ntwo\nthree is cut he")
    log.write_bytes(b"re by the rotation\nfour\n")
    assert last_lines(log, 3, previous=rotated(log)) == [
        "two",
        "three is cut here by the rotation",
        "four",
    ]
    assert last_lines(log, 10, previous=rotated(log))[0] == "one"
    assert last_lines(log, 1, previous=rotated(log)) == ["four"]
    log.write_bytes(b"")  # just rotated: everything is in the previous part
    assert last_lines(log, 2, previous=rotated(log)) == ["two", "three is cut he"]


def test_follow_reads_what_was_written_before_the_rotation_then_the_new_log(
    tmp_path: Path,
) -> None:
    """What ``monitor --follow`` reads: nothing lost or repeated across a rotation."""
    log = tmp_path / "engine.log"

    def write(piece: bytes) -> None:
        """Append as engine.log's writer does: past 1000 bytes, rotate first."""
        if log.exists() and log.stat().st_size + len(piece) > 1000:
            log.replace(rotated(log))
        with log.open("ab") as handle:
            handle.write(piece)

    pieces = [f"piece {n} ".encode() + b"y" * 300 + b"\n" for n in range(12)]
    # at most one rotation between two looks (at the 64 MiB default and a look every
    # 0.25 s, an agent would have to print 256 MiB a second to rotate twice)
    steps = [pieces[0:2], pieces[2:5], pieces[5:6], pieces[6:8], pieces[8:10], [], pieces[10:]]

    def done() -> bool:
        """Called before each look: write the next step, so writes and looks alternate."""
        if not steps:
            return True
        for piece in steps.pop(0):
            write(piece)
        return False

    followed = b"".join(follow(log, offset=0, done=done, interval=0))
    assert followed == b"".join(pieces)
    assert rotated(log).exists(), "the log was rotated while it was followed"


def test_the_writer_rotates_and_keeps_one_previous_file(tmp_path: Path) -> None:
    from looprunner.store.enginelog import LogWriter

    log = tmp_path / "engine.log"
    writer = LogWriter(log, limit=1000)
    writer.open()
    pieces = [f"piece {n} ".encode() + b"y" * 300 + b"\n" for n in range(12)]
    for piece in pieces:
        writer.write(piece)
    writer.close()
    assert log.stat().st_size <= 1000 and rotated(log).stat().st_size <= 1000
    kept = rotated(log).read_bytes() + log.read_bytes()
    assert b"".join(pieces).endswith(kept) and kept.startswith(b"piece "), kept[:40]
    assert len(kept) > 1000, "the previous part is kept"
    assert last_lines(log, 6, previous=rotated(log)) == [p.decode().strip() for p in pieces[-6:]]


def test_the_size_limit_reads_like_every_other_limit(monkeypatch) -> None:
    from looprunner.store.enginelog import MAX_LOG_BYTES, max_log_bytes

    assert MAX_LOG_BYTES == 64 * 1024 * 1024
    for value, expected in (("2048", 2048), ("nonsense", MAX_LOG_BYTES), ("0", MAX_LOG_BYTES)):
        monkeypatch.setenv("LOOPRUNNER_MAX_ENGINE_LOG_BYTES", value)
        assert max_log_bytes() == expected
