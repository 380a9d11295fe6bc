"""``looprunner doctor``: programs and versions, credentials by name, stages that cannot run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.integration.conftest import FAKES_BIN, write_stage

SECRET = "sk-doctor-test-value-9f3a"


def by_name(report: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in report["checks"] if c["kind"] == kind}


def test_doctor_reports_programs_versions_and_credential_names(
    project: Path, fake_agents: Any, cli: Any
) -> None:
    write_stage(project, "work", provider="claude")
    # the built-ins alone: an installed plugin's backend (Ray's needs a running cluster)
    # would make the verdict this machine's, not the programs' under test
    quiet = {"ANTHROPIC_API_KEY": SECRET, "LOOPRUNNER_DISABLE_PLUGIN_AUTOLOAD": "1"}
    result = cli("--json", "doctor", env=quiet)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    providers = by_name(report, "provider")
    assert providers["claude"]["ok"] and providers["claude"]["version"] == "2.1.0 (Claude Code)"
    assert str(FAKES_BIN / "claude") in providers["claude"]["detail"]
    assert "ANTHROPIC_API_KEY" in providers["claude"]["detail"]
    assert SECRET not in result.stdout + result.stderr
    assert by_name(report, "backend")["tmux"]["version"].startswith("tmux ")
    assert by_name(report, "stage")["work"]["ok"] is True
    assert "looprunner.builtin" in by_name(report, "plugin")


def test_doctor_exits_1_naming_a_stage_whose_program_is_missing(
    project: Path, cli: Any, tmp_path: Path
) -> None:
    write_stage(project, "needs-codex", provider="codex")
    write_stage(project, "fine", provider="mock")
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    result = cli("doctor", env={"PATH": f"{empty}:/usr/bin:/bin"})
    assert result.returncode == 1, result.stdout + result.stderr
    assert "NO  needs-codex: provider 'codex' needs the 'codex' program" in result.stdout
    assert "ok  fine:" in result.stdout
    assert "NO  codex: 'codex' is not on PATH; install it: npm install -g @openai/codex" in (
        result.stdout
    )
    assert "cannot run here" in result.stdout
