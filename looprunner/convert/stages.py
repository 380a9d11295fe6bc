"""Stage files: ``stage.yaml`` and its prompt, read into a :class:`Stage`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from looprunner.convert import legacy
from looprunner.convert.converter import BadValue, split_command, structure_from
from looprunner.convert.yaml import KeyPath, describe, dotted, expect_mapping, locate, read_yaml
from looprunner.errors import ConfigError, combine_problems
from looprunner.models import Budget, Retry, Stage, Termination
from looprunner.models.budget import check_budget, check_retry
from looprunner.models.ids import NODE_ID

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
        "session_mode",
        "timeout",
        "command",
        "type",
        "options",
        "budget",
        "retry",
        "idle_timeout",
        "worktree",
    }
)

#: keys whose ``none`` (or an empty value) turns a limit off rather than leaving it unset
NONE_KEYS = ("timeout", "idle_timeout")


def load_stage_file(stage_yaml: Path, *, default_name: str) -> Stage:
    """Read ``stage.yaml`` and its prompt file into a :class:`Stage`.

    The prompt is the file the ``prompt:`` key names (see :func:`prompt_candidates`), or
    ``prompt.md`` beside the file, or ``prompts/prompt.md``. ``fixtures:`` is relative to
    the folder too. Every problem of the file is reported at once, each at its line.
    """
    folder = stage_yaml.parent
    doc = read_yaml(stage_yaml)
    if doc is None:
        doc = {}
    data = expect_mapping(doc, path=stage_yaml, what="a stage file")
    values, spellings = legacy.stage_file(data)
    problems: list[ConfigError] = legacy.report(spellings, doc=doc, path=stage_yaml)
    for key in list(values):
        if key not in STAGE_KEYS:
            line, col = locate(doc, (key,), key=True)
            problems.append(
                ConfigError(
                    f"unknown key {key!r} (known: {', '.join(sorted(STAGE_KEYS))})",
                    path=stage_yaml,
                    line=line,
                    column=col,
                )
            )
            del values[key]
    prompt_name = values.pop("prompt", None)
    if prompt_name is not None and not isinstance(prompt_name, str):
        line, col = locate(doc, ("prompt",))
        problems.append(
            ConfigError(
                f"expected a prompt file name, got {describe(prompt_name)}",
                path=stage_yaml,
                line=line,
                column=col,
                field="prompt",
            )
        )
        prompt_name = None
    values.setdefault("name", default_name)
    name = values["name"]
    if not isinstance(name, str) or not NODE_ID.fullmatch(name):
        line, col = locate(doc, ("name",))
        problems.append(
            ConfigError(
                f"invalid stage name {name!r}: use letters, digits, '-' and '_' (at most 64)",
                path=stage_yaml,
                line=line,
                column=col,
                field="name",
            )
        )
        values["name"] = default_name
    prompt: str | None = None
    try:
        prompt = read_prompt(folder, prompt_name, stage_yaml=stage_yaml, doc=doc)
    except ConfigError as exc:
        problems.append(exc)
    stage: Stage | None = None
    try:
        split_commands(values, doc=doc, path=stage_yaml)
        for key in take_none(values, NONE_KEYS):
            values[key] = None
        stage = structure_from(values, Stage, path=stage_yaml, doc=doc)
        check_termination(stage.termination, path=stage_yaml, doc=doc, prefix=("termination",))
        check_limits(stage, path=stage_yaml, doc=doc, prefix=())
    except ConfigError as exc:
        problems.append(exc)
    combined = combine_problems(problems)
    if combined is not None:
        raise combined
    assert stage is not None and prompt is not None
    fixtures = stage.fixtures
    if fixtures is not None and not fixtures.is_absolute():
        fixtures = folder / fixtures
    elif fixtures is None and (folder / "fixtures").is_dir():
        fixtures = folder / "fixtures"
    return attrs.evolve(
        stage,
        prompt=prompt,
        fixtures=fixtures.resolve() if fixtures else None,
        source=folder.resolve(),
    )


def prompt_candidates(folder: Path, prompt_name: str | None) -> list[Path]:
    """Return the files a stage's prompt may be, in the order they are tried.

    ``prompt: NAME`` is tried as written and with ``.md`` added, beside ``stage.yaml`` and,
    for a bare name, in ``prompts/`` (as loop-agents looked); an absolute path is used as
    it is. Without ``prompt:``, ``prompt.md`` and then loop-agents' ``prompts/prompt.md``.
    """
    if prompt_name is None:
        return [folder / "prompt.md", folder / "prompts" / "prompt.md"]
    name = prompt_name.removeprefix("./")
    names = [name] if name.endswith(".md") else [name, f"{name}.md"]
    if Path(name).is_absolute():
        return [Path(n) for n in names]
    bases = [folder] if "/" in name else [folder, folder / "prompts"]
    return [base / n for base in bases for n in names]


def read_prompt(folder: Path, prompt_name: str | None, *, stage_yaml: Path, doc: Any) -> str:
    """Read the stage's prompt: the first of :func:`prompt_candidates` that is a file."""
    candidates = prompt_candidates(folder, prompt_name)
    found = next((c for c in candidates if c.is_file()), None)
    if found is None:
        line, col = locate(doc, ("prompt",)) if prompt_name else (None, None)
        also = ", ".join(str(c) for c in candidates[1:])
        raise ConfigError(
            f"prompt file {candidates[0]} not found" + (f" (also tried {also})" if also else ""),
            path=stage_yaml,
            line=line,
            column=col,
            code="LR012",
        )
    try:
        return found.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read prompt file {found}: {exc}", path=stage_yaml) from exc


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
    problems = []
    for field in ("iterations", "max", "min_iterations", "consensus"):
        value = getattr(term, field)
        if value is not None and value < 1:
            line, col = locate(doc, (*prefix, field))
            problems.append(
                ConfigError(
                    f"must be at least 1, got {value}",
                    path=path,
                    line=line,
                    column=col,
                    field=dotted((*prefix, field)),
                )
            )
    combined = combine_problems(problems)
    if combined is not None:
        raise combined


def take_none(values: dict[str, Any], keys: tuple[str, ...]) -> list[str]:
    """Remove the ``keys`` set to ``none`` (or left empty) from ``values``; return them.

    ``timeout: none`` turns the default timeout off; the caller sets those keys to None
    itself, which the converter would otherwise refuse as "none" is not a number.
    """
    found = []
    for key in keys:
        if key in values and (
            values[key] is None
            or (isinstance(values[key], str) and values[key].strip().lower() == "none")
        ):
            del values[key]
            found.append(key)
    return found


def check_limits(
    stage: Stage | None,
    *,
    path: Path | None,
    doc: Any,
    prefix: KeyPath,
    budget: Budget | None = None,
    retry: Retry | None = None,
) -> None:
    """Refuse timeouts, budgets and retry settings that cannot be meant, each at its line."""
    problems = []
    checks: list[tuple[KeyPath, Any]] = []
    if stage is not None:
        budget, retry = stage.budget, stage.retry
        for key in NONE_KEYS:
            value = getattr(stage, key)
            if value is not None and value <= 0:
                line, col = locate(doc, (*prefix, key))
                problems.append(
                    ConfigError(
                        f"must be more than 0 seconds (or none), got {value}",
                        path=path,
                        line=line,
                        column=col,
                        field=dotted((*prefix, key)),
                    )
                )
    if budget is not None:
        checks.append(((*prefix, "budget"), lambda: check_budget(budget)))
    if retry is not None:
        checks.append(((*prefix, "retry"), lambda: check_retry(retry)))
    for where, check in checks:
        try:
            check()
        except ConfigError as exc:
            keypath = (*prefix, *(exc.field or "").split("."))
            line, col = locate(doc, keypath)
            if line is None:
                line, col = locate(doc, where)
            problems.append(
                ConfigError(exc.detail, path=path, line=line, column=col, field=dotted(keypath))
            )
    combined = combine_problems(problems)
    if combined is not None:
        raise combined
