"""An earlier run's full name (``NAME.YYYYMMDDTHHMMSS``): accepted exactly, never a path."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pytest

from looprunner.errors import EXIT_BAD_INPUT, InvalidSessionNameError
from looprunner.names import ProjectPaths, split_kept_run, validate_run_name


class KeptCase(NamedTuple):
    test_id: str
    name: str
    session: str
    kept_at: str


KEPT = [
    KeptCase("plain", "auth.20261129T163736", "auth", "2026-11-29T16:37:36Z"),
    KeptCase("same-second", "auth.20261129T163736-2", "auth", "2026-11-29T16:37:36Z"),
    KeptCase("hyphenated", "billing-fix.20250101T000000", "billing-fix", "2025-01-01T00:00:00Z"),
]


class BadCase(NamedTuple):
    test_id: str
    name: str


NOT_KEPT = [
    BadCase("no-stamp", "auth.2026"),
    BadCase("stamp-without-time", "auth.20261129"),
    BadCase("traversal-after", "auth.20261129T163736/../x"),
    BadCase("traversal-before", "../auth.20261129T163736"),
    BadCase("absolute", "/auth.20261129T163736"),
    BadCase("upper-case-session", "Auth.20261129T163736"),
    BadCase("invalid-session", "-auth.20261129T163736"),
    BadCase("zero-suffix", "auth.20261129T163736-0"),
    BadCase("two-dots", "auth..20261129T163736"),
    BadCase("two-stamps", "auth.20261129T163736.20261129T163736"),
    BadCase("trailing-newline", "auth.20261129T163736\n"),
    BadCase("non-ascii-digits", "auth.\u0662\u0660\u0662\u06661129T163736"),
    BadCase("lower-t", "auth.20261129t163736"),
]


@pytest.mark.parametrize("case", KEPT, ids=[c.test_id for c in KEPT])
def test_a_kept_runs_name_is_split_into_session_and_time(case: KeptCase, tmp_path: Path) -> None:
    assert split_kept_run(case.name) == (case.session, case.kept_at)
    assert validate_run_name(case.name) == case.name
    paths = ProjectPaths.of(tmp_path).kept(case.name)
    assert paths.run_dir == paths.root / "pipeline-runs" / case.name
    assert paths.progress_file.name == f"progress-{case.session}.md"


@pytest.mark.parametrize("case", NOT_KEPT, ids=[c.test_id for c in NOT_KEPT])
def test_anything_else_with_a_dot_is_refused(case: BadCase, tmp_path: Path) -> None:
    assert split_kept_run(case.name) is None
    with pytest.raises(InvalidSessionNameError) as caught:
        validate_run_name(case.name)
    assert caught.value.exit_code == EXIT_BAD_INPUT
    with pytest.raises(InvalidSessionNameError):
        ProjectPaths.of(tmp_path).kept(case.name)
    assert list(tmp_path.iterdir()) == []


def test_a_session_name_is_still_a_run_name_and_not_a_kept_one(tmp_path: Path) -> None:
    assert validate_run_name("auth") == "auth"
    assert split_kept_run("auth") is None
    with pytest.raises(InvalidSessionNameError):
        ProjectPaths.of(tmp_path).kept("auth")
