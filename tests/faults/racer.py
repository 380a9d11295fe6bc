"""Run ``looprunner start`` in N processes released at the same instant (a helper, not a test).

Usage: ``python racer.py PROJECT N OUTDIR``; then, on stdin, one JSON argv per line
(``["start", "dup-3", "--stage", "work"]``). For each line the racer forks N children
that each block on one shared pipe, closes the pipe's write end so that all of them
wake together, and each child runs the real command line, ``looprunner.cli.main`` —
exactly what ``python -m looprunner`` runs — with its stdout and stderr in files of
its own. It answers with one JSON line: ``[{"code", "stdout", "stderr"}, ...]``.

A line may instead be a JSON array of objects, ``[{"argv": [...], "delay": 0.12}, ...]``:
one child per object (N is then ignored), each running its own command line ``delay``
seconds after the common release — different commands racing at chosen offsets — in
PROJECT or in the object's own ``"project"``.

Why fork: ``python -m looprunner`` spends ~0.3 s of CPU importing itself, so 1,000
real interpreters would take minutes of CPU. Forking one interpreter that has already
imported looprunner gives real, separate processes at a fraction of the cost, and they
reach the lock within microseconds of each other instead of spread over the import
time. The racer is single-threaded, so forking it is safe.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import looprunner.backends.tmux
import looprunner.convert
import looprunner.definitions
import looprunner.handoff
import looprunner.session  # noqa: F401 - imported before forking, so children start warm
from looprunner.cli import main
from looprunner.plugins.manager import make_plugin_manager


def child(
    read_end: int, argv: list[str], out: Path, err: Path, delay: float = 0.0
) -> None:  # pragma: no cover
    os.read(read_end, 1)  # blocks until every sibling is ready and the pipe is closed
    if delay > 0:
        time.sleep(delay)  # the offset between racing commands is what is being tested
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), 1)
    os.dup2(os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), 2)
    code = 1
    try:
        main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException as exc:  # a crash must show up as a failure, not hang the racer
        print(f"Traceback (racer child): {type(exc).__name__}: {exc}", file=sys.stderr)
        code = 99
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def race(jobs: list[tuple[list[str], float]], outdir: Path, round_no: int) -> list[dict]:
    """Fork one child per (argv, delay), release them together, collect what each did."""
    read_end, write_end = os.pipe()
    children = []
    for n, (argv, delay) in enumerate(jobs):
        out = outdir / f"{round_no}-{n}.out"
        err = outdir / f"{round_no}-{n}.err"
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            os.close(write_end)
            child(read_end, argv, out, err, delay)
        children.append((pid, out, err))
    os.close(read_end)
    os.close(write_end)  # go
    results = []
    for pid, out, err in children:
        _, status = os.waitpid(pid, 0)
        results.append(
            {
                "pid": pid,
                "code": os.waitstatus_to_exitcode(status),
                "stdout": out.read_text(errors="replace"),
                "stderr": err.read_text(errors="replace"),
            }
        )
    return results


def run() -> None:
    project, count, outdir = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    outdir.mkdir(parents=True, exist_ok=True)
    make_plugin_manager()  # load entry points once, before forking
    print("ready", flush=True)
    for round_no, line in enumerate(sys.stdin):
        request = json.loads(line)
        if request and isinstance(request[0], dict):
            jobs = [
                (["--project", job.get("project", project), *job["argv"]], job.get("delay", 0.0))
                for job in request
            ]
        else:
            jobs = [(["--project", project, *request], 0.0)] * count
        print(json.dumps(race(jobs, outdir, round_no)), flush=True)


if __name__ == "__main__":
    run()
