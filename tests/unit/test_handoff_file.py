"""The file transport of the environment handoff, for engines on another machine.

A backend whose engines may run elsewhere gets the launcher's environment through a 0600
file in the run directory that the engine removes first thing; these prove its two ends
on real files: what is written, what replaces what, what is refused.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from looprunner import handoff
from looprunner.errors import UnsafeFileError

SECRET = "sk-handoff-file-test-0123456789"


def test_the_file_is_created_0600_and_holds_the_environment_without_the_terminal(
    tmp_path: Path,
) -> None:
    path = handoff.write_file(tmp_path, {"EXAMPLE_API_KEY": SECRET, "TMUX": "/tmp/x,1,0"})
    assert path == tmp_path / handoff.FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0
    assert handoff.read_file(path, timeout=1) == {"EXAMPLE_API_KEY": SECRET}


def test_the_engine_removes_the_file_when_it_reads_it(tmp_path: Path) -> None:
    path = handoff.write_file(tmp_path, {"A": "1"})
    assert handoff.read_file(path, timeout=1) == {"A": "1"}
    assert not path.exists()


def test_a_stale_file_from_a_launch_that_died_is_replaced(tmp_path: Path) -> None:
    stale = tmp_path / handoff.FILE_NAME
    stale.write_text('{"OLD": "value of a launch that died"}')
    stale.chmod(0o644)
    path = handoff.write_file(tmp_path, {"NEW": "2"})
    assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0
    assert handoff.read_file(path, timeout=1) == {"NEW": "2"}


def test_a_symlink_in_its_place_is_refused_and_its_target_never_written(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.txt"
    target.write_text("untouched")
    (tmp_path / handoff.FILE_NAME).symlink_to(target)
    with pytest.raises(UnsafeFileError, match=r"\.env-handoff\.json: it is a symbolic link"):
        handoff.write_file(tmp_path, {"EXAMPLE_API_KEY": SECRET})
    assert target.read_text() == "untouched"
    dangling = tmp_path / "run2"
    dangling.mkdir()
    (dangling / handoff.FILE_NAME).symlink_to(dangling / "created-through-the-link")
    with pytest.raises(UnsafeFileError):
        handoff.write_file(dangling, {"EXAMPLE_API_KEY": SECRET})
    assert not (dangling / "created-through-the-link").exists()


def test_the_engine_reads_no_symlink_and_no_file_of_another_kind(tmp_path: Path) -> None:
    target = tmp_path / "planted.json"
    target.write_text('{"PATH": "/attacker/bin"}')
    link = tmp_path / handoff.FILE_NAME
    link.symlink_to(target)
    assert handoff.read_file(link, timeout=0.2) is None
    assert target.exists()
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert handoff.read_file(fifo, timeout=0.2) is None


def test_the_engine_gives_up_when_no_file_comes(tmp_path: Path) -> None:
    assert handoff.read_file(tmp_path / handoff.FILE_NAME, timeout=0.2) is None


def test_the_launcher_removes_a_file_the_engine_never_took(tmp_path: Path) -> None:
    path = handoff.write_file(tmp_path, {"EXAMPLE_API_KEY": SECRET})
    assert handoff.deliver(handoff.FILE, path, {}, timeout=0.2) is False
    assert not os.path.lexists(path)
