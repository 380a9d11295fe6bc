"""Finding and resolving stage and pipeline definitions.

- :mod:`~looprunner.definitions.catalog`: where stage folders are found, by name
- :mod:`~looprunner.definitions.pipelines`: pipeline files, resolved into a Pipeline
- :mod:`~looprunner.definitions.build`: what ``start`` was asked to run, overrides applied
- :mod:`~looprunner.definitions.lint`, :mod:`~looprunner.definitions.dryrun`: checking a
  definition and showing what a start would do (imported on their own: they need the
  plugins and the prompt renderer, which loading a definition does not)

Importing this package installs :class:`~looprunner.definitions.loader.DefinitionFiles`
as the loader :meth:`Stage.load` and :meth:`Pipeline.load` use: models cannot import the
file readers themselves without an import cycle (see :mod:`looprunner.models.loading`).
"""

from looprunner.definitions.build import build_pipeline
from looprunner.definitions.catalog import (
    STAGE_FILE,
    StageRef,
    find_stage,
    iter_stages,
    list_stages,
    load_stage,
    stage_roots,
)
from looprunner.definitions.loader import DefinitionFiles
from looprunner.definitions.pipelines import (
    PipelineRef,
    find_pipeline,
    list_pipelines,
    load_pipeline,
    pipeline_roots,
)
from looprunner.errors import LegacyPipelineWarning
from looprunner.models.loading import install_loader

install_loader(DefinitionFiles())

__all__ = [
    "STAGE_FILE",
    "DefinitionFiles",
    "LegacyPipelineWarning",
    "PipelineRef",
    "StageRef",
    "build_pipeline",
    "find_pipeline",
    "find_stage",
    "iter_stages",
    "list_pipelines",
    "list_stages",
    "load_pipeline",
    "load_stage",
    "pipeline_roots",
    "stage_roots",
]
