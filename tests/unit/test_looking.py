"""``list`` pauses the cyclic garbage collector while it lists, and only then."""

from __future__ import annotations

import gc
import json
import os

import pytest

from looprunner.cli.looking import show_list


@pytest.fixture
def empty_project(tmp_path, monkeypatch):
    monkeypatch.setenv("LOOPRUNNER_TMUX_SOCKET", f"lr-none-{os.getpid()}")  # no server
    return tmp_path


@pytest.mark.parametrize("collecting", [True, False])
def test_a_listing_leaves_the_collector_as_it_found_it(empty_project, capsys, collecting):
    was = gc.isenabled()
    (gc.enable if collecting else gc.disable)()
    try:
        assert show_list(empty_project, True) == 0
        assert gc.isenabled() is collecting
    finally:
        (gc.enable if was else gc.disable)()
    assert json.loads(capsys.readouterr().out) == []


def test_a_listing_that_fails_leaves_the_collector_on(empty_project):
    assert gc.isenabled()
    with pytest.raises(Exception, match="since"):
        show_list(empty_project, True, since="not-a-duration")
    assert gc.isenabled()
