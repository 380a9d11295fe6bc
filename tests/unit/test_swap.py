"""Putting a rewritten file in place: readers see the old one or the new one, nothing else."""

from __future__ import annotations

import threading

import pytest

from looprunner.store.atomic import write_atomic
from looprunner.store.swap import put_in_place


def test_a_file_rewritten_in_place_is_never_missing_or_partial_for_a_reader(tmp_path):
    target = tmp_path / "state.json"
    versions = [f'{{"n": {n}, "pad": "{"x" * (n % 7) * 300}"}}\n' for n in range(400)]
    write_atomic(target, versions[0], durable=False)
    seen: list[str] = []
    problems: list[BaseException] = []
    done, reading = threading.Event(), threading.Event()

    def read() -> None:
        while not done.is_set():
            try:
                seen.append(target.read_text())
            except BaseException as exc:  # a missing file is what must never happen
                problems.append(exc)
                return
            finally:
                reading.set()

    reader = threading.Thread(target=read)
    reader.start()
    assert reading.wait(30), "the reader never read"
    try:
        for text in versions[1:]:
            write_atomic(target, text, durable=False)
    finally:
        done.set()
        reader.join(30)
    assert problems == []
    assert seen and set(seen) <= set(versions)
    assert target.read_text() == versions[-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]  # no temp file left


def test_an_open_reader_keeps_the_version_it_opened(tmp_path):
    target = tmp_path / "state.json"
    target.write_text("old\n")
    with target.open() as before:
        write_atomic(target, "new\n", durable=False)
        assert before.read() == "old\n"
    assert target.read_text() == "new\n"


def test_a_symlink_in_place_of_the_file_is_replaced_and_what_it_points_at_is_untouched(
    tmp_path,
):
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("keep me\n")
    target = tmp_path / "state.json"
    target.symlink_to(elsewhere)
    write_atomic(target, "new\n", durable=False)
    assert not target.is_symlink() and target.read_text() == "new\n"
    assert elsewhere.read_text() == "keep me\n"


def test_a_folder_in_place_of_the_file_is_refused_and_left_as_it_was(tmp_path):
    target = tmp_path / "state.json"
    target.mkdir()
    (target / "inside").write_text("x")
    with pytest.raises(OSError, match=str(target)):
        write_atomic(target, "new\n", durable=False)
    assert (target / "inside").read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_put_in_place_creates_the_file_when_there_is_none(tmp_path):
    new = tmp_path / ".tmp-x"
    new.write_text("first\n")
    put_in_place(new, tmp_path / "x")
    assert (tmp_path / "x").read_text() == "first\n" and not new.exists()
    assert (tmp_path / "x").stat().st_nlink == 1
