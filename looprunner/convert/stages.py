"""Stage files: ``stage.yaml`` and its prompt, read into a :class:`Stage`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from looprunner.convert.converter import BadValue, split_command, structure_from
from looprunner.convert.yaml import KeyPath, describe, dotted, expect_mapping, locate, read_yaml
from looprunner.errors import ConfigError
from looprunner.models import Stage, Termination
from looprunner.models.pipeline import NODE_ID

STAGE_KEYS = frozenset(
    {
        "name",
        "description",
        "provider",
        "model",
        "termination",
        "delay",
        "context",
        "output_path",
        "prompt",
        "fixtures",
        "mock_delay",
        "timeout",
        "command",
        "type",
        "options",
    }
)


def load_stage_file(stage_yaml: Path, *, default_name: str) -> Stage:
    """Read ``stage.yaml`` and its prompt file into a :class:`Stage`.

    The prompt is ``prompt.md`` beside the file, or the file the ``prompt:`` key names
    (relative to the stage's folder). ``fixtures:`` is relative to the folder too.
    """
    folder = stage_yaml.parent
    doc = read_yaml(stage_yaml)
    if doc is None:
        doc = {}
    data = expect_mapping(doc, path=stage_yaml, what="a stage file")
    for key in data:
        if key not in STAGE_KEYS:
            line, col = locate(doc, (key,), key=True)
            raise ConfigError(
                f"unknown key {key!r} (known: {', '.join(sorted(STAGE_KEYS))})",
                path=stage_yaml,
                line=line,
                column=col,
            )
    values = dict(data)
    prompt_name = values.pop("prompt", None)
    if prompt_name is not None and not isinstance(prompt_name, str):
        line, col = locate(doc, ("prompt",))
        raise ConfigError(
            f"expected a prompt file name, got {describe(prompt_name)}",
            path=stage_yaml,
            line=line,
            column=col,
            field="prompt",
        )
    values.setdefault("name", default_name)
    name = values["name"]
    if not isinstance(name, str) or not NODE_ID.fullmatch(name):
        line, col = locate(doc, ("name",))
        raise ConfigError(
            f"invalid stage name {name!r}: use letters, digits, '-' and '_' (at most 64)",
            path=stage_yaml,
            line=line,
            column=col,
            field="name",
        )
    split_commands(values, doc=doc, path=stage_yaml)
    stage = structure_from(values, Stage, path=stage_yaml, doc=doc)
    prompt_file = folder / (prompt_name or "prompt.md")
    try:
        prompt = prompt_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        line, col = locate(doc, ("prompt",)) if prompt_name else (None, None)
        raise ConfigError(
            f"prompt file {prompt_file} not found",
            path=stage_yaml,
            line=line,
            column=col,
            code="LR012",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read prompt file {prompt_file}: {exc}", path=stage_yaml) from exc
    fixtures = stage.fixtures
    if fixtures is not None and not fixtures.is_absolute():
        fixtures = folder / fixtures
    elif fixtures is None and (folder / "fixtures").is_dir():
        fixtures = folder / "fixtures"
    check_termination(stage.termination, path=stage_yaml, doc=doc, prefix=("termination",))
    return attrs.evolve(
        stage,
        prompt=prompt,
        fixtures=fixtures.resolve() if fixtures else None,
        source=folder.resolve(),
    )


def split_commands(values: dict[str, Any], *, doc: Any, path: Path, prefix: KeyPath = ()) -> None:
    """Split string-valued ``command`` and ``termination.queue_command`` into argvs in place."""
    targets: list[tuple[dict[str, Any], str, KeyPath]] = [(values, "command", (*prefix, "command"))]
    term = values.get("termination")
    if isinstance(term, Mapping):
        term = dict(term)
        values["termination"] = term
        targets.append((term, "queue_command", (*prefix, "termination", "queue_command")))
    for mapping, key, keypath in targets:
        if key in mapping:
            try:
                mapping[key] = split_command(mapping[key])
            except BadValue as exc:
                line, col = locate(doc, keypath)
                raise ConfigError(
                    str(exc), path=path, line=line, column=col, field=dotted(keypath)
                ) from None


def check_termination(term: Termination, *, path: Path | None, doc: Any, prefix: KeyPath) -> None:
    """Reject counts that make no sense; a plugin's termination type is checked when it runs."""
    for field in ("iterations", "max", "min_iterations", "consensus"):
        value = getattr(term, field)
        if value is not None and value < 1:
            line, col = locate(doc, (*prefix, field))
            raise ConfigError(
                f"must be at least 1, got {value}",
                path=path,
                line=line,
                column=col,
                field=dotted((*prefix, field)),
            )
