"""Finds stage and pipeline definitions and says where each comes from.

Stages are folders holding ``stage.yaml`` (and ``prompt.md``), searched in this order:

1. ``PROJECT/.looprunner/stages/NAME/``
2. ``PROJECT/scripts/stages/NAME/`` (the loop-agents layout, read unchanged)
3. stages shipped inside looprunner (``looprunner/builtin/stages/NAME/``)

The first folder found wins, so a project can override a shipped stage.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

import attrs

from looprunner import convert
from looprunner.errors import ConfigError
from looprunner.models import Stage

BUILTIN_STAGES = Path(__file__).parent.parent / "builtin" / "stages"
STAGE_FILE = "stage.yaml"


@attrs.frozen
class StageRef:
    """A stage folder found on disk; ``problem`` says why it is not a usable stage."""

    name: str
    path: Path
    origin: str
    problem: str | None = None


def stage_roots(project: Path) -> list[tuple[str, Path]]:
    """Return the folders searched for stages, with a label for each, in search order."""
    return [
        ("project", project / ".looprunner" / "stages"),
        ("loop-agents", project / "scripts" / "stages"),
        ("builtin", BUILTIN_STAGES),
        *plugin_stage_roots(),
    ]


@functools.cache
def plugin_stage_roots() -> tuple[tuple[str, Path], ...]:
    """Stage folders shipped by installed plugins (``register_stage_folders``)."""
    from looprunner.plugins.manager import registries

    return tuple(
        (f"plugin {owner}", folder) for owner, folder in registries().stage_folders.folders()
    )


def iter_stages(project: Path) -> Iterator[StageRef]:
    """Yield every stage folder, shadowed ones included, in search order."""
    for origin, root in stage_roots(project):
        if not root.is_dir():
            continue
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            if folder.name.startswith((".", "_")):
                continue
            problem = None if (folder / STAGE_FILE).is_file() else f"no {STAGE_FILE}: not a stage"
            yield StageRef(name=folder.name, path=folder, origin=origin, problem=problem)


def list_stages(project: Path) -> list[StageRef]:
    """Return the stages a name can refer to: the first of each name, in search order."""
    seen: dict[str, StageRef] = {}
    for ref in iter_stages(project):
        if ref.name not in seen or (seen[ref.name].problem and not ref.problem):
            seen[ref.name] = ref
    return sorted(seen.values(), key=lambda ref: ref.name)


def find_stage(name: str, project: Path) -> Path:
    """Return the folder of stage ``name``, or raise naming the stages that exist."""
    not_a_stage: Path | None = None
    for ref in iter_stages(project):
        if ref.name != name:
            continue
        if ref.problem is None:
            return ref.path
        not_a_stage = not_a_stage or ref.path
    if not_a_stage is not None:
        raise ConfigError(
            f"stage {name!r}: {not_a_stage} has no {STAGE_FILE}, so it is not a stage",
            code="LR011",
        )
    known = [ref.name for ref in list_stages(project) if ref.problem is None]
    hint = f"; available: {', '.join(known)}" if known else "; no stages found"
    where = ", ".join(str(root) for _, root in stage_roots(project)[:2])
    raise ConfigError(
        f"unknown stage {name!r} (searched {where} and the built-ins){hint}", code="LR010"
    )


def load_stage(name_or_path: str | Path, *, project: Path) -> Stage:
    """Load a stage given by name or by the path of its folder (or its stage.yaml)."""
    project = project.expanduser().resolve()
    text = str(name_or_path)
    candidate = Path(text).expanduser()
    if "/" in text or text.endswith(".yaml") or (candidate.is_dir() and text in (".", "..")):
        if not candidate.is_absolute():
            candidate = project / candidate
        folder = candidate.parent if candidate.name == STAGE_FILE else candidate
        if not (folder / STAGE_FILE).is_file():
            raise ConfigError(f"no {STAGE_FILE} in {folder}")
        return convert.load_stage_file(folder / STAGE_FILE, default_name=folder.name)
    folder = find_stage(text, project)
    return convert.load_stage_file(folder / STAGE_FILE, default_name=text)
