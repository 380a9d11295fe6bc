"""The resolved pipeline a session runs: written to its run directory, read on resume."""

from __future__ import annotations

import json
from pathlib import Path

from looprunner.convert.converter import converter, structure_from
from looprunner.convert.yaml import expect_mapping, plain_data, read_yaml
from looprunner.errors import ConfigError
from looprunner.models import Pipeline

FORMAT = "looprunner/resolved-pipeline/1"


def dump_pipeline(pipeline: Pipeline) -> str:
    """Serialise a resolved pipeline for the run directory (prompts included).

    Written as JSON, which is also YAML: every character of a prompt survives the round
    trip exactly (YAML would fold some line-break characters), and reading it back on
    resume needs no YAML parser.
    """
    data = {"format": FORMAT, **converter.unstructure(pipeline)}
    return json.dumps(plain_data(data), indent=2) + "\n"


def load_resolved_pipeline(path: Path) -> Pipeline:
    """Read back the pipeline a session was started with."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("file not found", path=path, code="LR001") from None
    except ValueError:
        data = None  # written by hand, or by an older version: read it as YAML
    if isinstance(data, dict):
        data.pop("format", None)
        return structure_from(data, Pipeline, path=path, doc=None)
    doc = read_yaml(path)
    data = dict(expect_mapping(doc, path=path, what="a resolved pipeline"))
    data.pop("format", None)
    return structure_from(data, Pipeline, path=path, doc=doc)
