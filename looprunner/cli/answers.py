"""The JSON answers, built in one place for ``--json`` and the MCP server alike.

``looprunner --json status auth`` and the MCP tool ``status`` must give an agent the same
object: both build it here, from the same library calls, so the shapes cannot drift.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from looprunner.session import as_dict
from looprunner.views import hints

if TYPE_CHECKING:
    from looprunner.definitions.lint import LintReport
    from looprunner.models import CleanupReport, SessionStatus


def session_answer(
    status: SessionStatus, next_steps: list[hints.Hint] | None = None
) -> dict[str, Any]:
    """Return a status object with its ``next`` hints (by default, its health's)."""
    return {
        **as_dict(status),
        "next": hints.for_status(status) if next_steps is None else next_steps,
    }


def cleanup_answer(report: CleanupReport) -> dict[str, Any]:
    """``cleanup --json``: whether it fixed, whether tmux answered, each problem."""
    return {
        "fix": report.fix,
        "tmux_reachable": report.tmux_reachable,
        "problems": [
            {
                "kind": p.kind,
                "session": p.session,
                "detail": p.detail,
                "fixed": p.fixed,
                "action": p.action,
            }
            for p in report.problems
        ],
    }


def lint_answer(report: LintReport) -> dict[str, Any]:
    """``lint --json``: counts, what was checked, every finding with its place."""
    return {
        "errors": report.errors,
        "warnings": report.warnings,
        "checked": list(report.checked),
        "findings": [
            {
                "code": f.code,
                "severity": f.severity,
                "message": f.message,
                "path": f.path,
                "line": f.line,
                "column": f.column,
            }
            for f in report.findings
        ],
    }


def stage_problem(folder: Path, project: Path) -> str | None:
    """Return why a stage folder could not run (unreadable, no prompt, empty prompt)."""
    from looprunner.definitions import catalog
    from looprunner.errors import ConfigError

    try:
        stage = catalog.load_stage(folder, project=project)
    except ConfigError as exc:
        return exc.detail
    if stage.type is None and not stage.prompt.strip():
        return "the prompt is empty"
    return None


def stage_entries(project: Path) -> list[dict[str, Any]]:
    """``stages --json``: every stage folder in search order, its problem, if shadowed."""
    from looprunner.definitions import catalog

    winners = {ref.name: ref for ref in catalog.list_stages(project)}
    return [
        {
            "name": ref.name,
            "path": str(ref.path),
            "origin": ref.origin,
            "problem": ref.problem or stage_problem(ref.path, project),
            "shadowed": winners[ref.name].path != ref.path,
        }
        for ref in catalog.iter_stages(project)
    ]


def pipeline_entries(project: Path) -> list[dict[str, Any]]:
    """``pipelines --json``: every pipeline file found, with where it comes from."""
    from looprunner.definitions.pipelines import list_pipelines

    refs = list_pipelines(project)
    return [{"name": r.name, "path": str(r.path), "origin": r.origin} for r in refs]
