"""The loader behind :meth:`Stage.load` and :meth:`Pipeline.load` (see models.loading)."""

from __future__ import annotations

from pathlib import Path

from looprunner.definitions.catalog import load_stage
from looprunner.definitions.pipelines import load_pipeline
from looprunner.models import Pipeline, Stage


class DefinitionFiles:
    """Reads definitions from the project's stage folders and pipeline files."""

    def load_stage(self, name_or_path: str | Path, project: Path) -> Stage:
        """Load a stage by name or folder path, as :func:`catalog.load_stage` does."""
        return load_stage(name_or_path, project=project)

    def load_pipeline(self, name_or_path: str | Path, project: Path) -> Pipeline:
        """Load and resolve a pipeline by name or file path."""
        return load_pipeline(name_or_path, project=project)
