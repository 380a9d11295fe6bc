"""loop-agents spellings: read as today's keys with a warning, or refused saying why.

loop-agents changed its file format over its versions (v2 ``completion:``, v3
``termination:``) and its files carry keys its engine read, keys it ignored, and keys of
features it only planned. Each spelling is handled here, once, for stage files, pipeline
nodes and pipeline files alike:

- a spelling whose meaning is clear is rewritten to today's key, and a
  :class:`~looprunner.errors.LegacyPipelineWarning` names the new spelling (lint rule
  LR041);
- a key looprunner cannot honour is refused with lint rule LR040, naming the key, why,
  and what to write instead — never silently dropped, since a key that does nothing
  would let a file promise what the run does not do.

The functions take and return plain mappings (the data before it is structured), so
the converter then checks the rewritten keys exactly as if the user had written them.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from looprunner.convert.yaml import KeyPath, locate
from looprunner.errors import ConfigError, LegacyPipelineWarning

#: loop-agents' termination names, v2 ``completion:`` values and v3 aliases alike
TERMINATION_NAMES = {"plateau": "judgment", "fixed-n": "fixed", "beads-empty": "beads"}
REFUSED = "LR040"
DEPRECATED = "LR041"

_RUNTIME = (
    "is not read: loop-agents only showed it to the agent (context.json "
    "limits.remaining_seconds) and never stopped the loop on it; remove it, or bound each "
    "iteration with 'timeout:' (seconds)"
)
_HOOKS = (
    "is not run: shell-command hooks were a loop-agents plan its engine never ran; "
    "use a plugin's lifecycle hooks (on_session_start, on_iteration, on_complete, "
    "on_error; see docs/plugins/hooks.md)"
)
#: stage.yaml keys refused, with why and what to write instead
STAGE_REFUSED = {
    "output_parse": (
        "is not read: looprunner takes the agent's decision from status.json, not from its "
        "printed output; have the prompt write the decision to ${STATUS} "
        "(docs/agent-contract.md)"
    ),
    "guardrails": _RUNTIME,
    "max_runtime_seconds": _RUNTIME,
    "hooks": _HOOKS,
    "items": (
        "is not read: loop-agents v2 only exported it to the agent as $ITEMS; put the list "
        "in the stage's 'context:' (the prompt's ${CONTEXT})"
    ),
}
#: pipeline node keys refused
NODE_REFUSED = {
    "prompt_path": (
        "is not a pipeline key (loop-agents wrote it into its compiled plan and ignored it "
        "in a pipeline file); name a stage with 'stage:', whose 'prompt:' picks the prompt "
        "file, or give the prompt inline with 'prompt:'"
    ),
    "perspectives": (
        "is not read: loop-agents v3 dropped per-run perspectives (${PERSPECTIVE} was always "
        "empty); give each perspective a node of its own, with its angle in 'context:'"
    ),
    "pipeline": (
        "(a pipeline inside a pipeline) is not run: loop-agents compiled such a node but "
        "its engine never ran one; copy that pipeline's nodes into this file"
    ),
    "failure_mode": (
        "is not read: a parallel block always fails when one of its providers fails, "
        "after stopping the others, and a single node has no providers to fail"
    ),
}
#: keys of a ``parallel:`` block refused
BLOCK_REFUSED = {
    "failure_mode": (
        "is not read: a parallel block always fails when one of its providers fails, "
        "after stopping the others (loop-agents' fail_fast); there is no other mode"
    ),
}
PIPELINE_REFUSED = {"hooks": _HOOKS}
#: pipeline keys read and dropped, with a warning saying what to do instead
PIPELINE_IGNORED = {
    # the pipeline file's key, not a backend: where the engine runs is chosen at start
    "tmux": (
        "is deprecated and ignored (loop-agents read it only to skip its check that tmux "
        "is installed); choose where the engine runs when starting: "
        "'looprunner start --foreground' or '--backend NAME'"
    ),
}


@attrs.frozen
class Spelling:
    """One loop-agents spelling found in a definition, and what becomes of it."""

    keypath: KeyPath
    message: str
    refused: bool = False


def stage_file(data: Mapping[str, Any]) -> tuple[dict[str, Any], list[Spelling]]:
    """Rewrite the loop-agents spellings of a ``stage.yaml`` (its top-level keys)."""
    values = dict(data)
    found = [
        Spelling((key,), f"'{key}' {why}", refused=True)
        for key, why in STAGE_REFUSED.items()
        if key in values
    ]
    for key in STAGE_REFUSED:
        values.pop(key, None)
    if "check_before" in values:
        values.pop("check_before")
        found.append(
            Spelling(
                ("check_before",),
                "'check_before' is deprecated and has no effect: every termination is "
                "checked before each iteration, the first included; remove it",
            )
        )
    found += _termination_spellings(values, ())
    return values, found


def node(data: Mapping[str, Any], where: KeyPath) -> tuple[dict[str, Any], list[Spelling]]:
    """Rewrite the loop-agents spellings of one pipeline node."""
    values = dict(data)
    found = [
        Spelling((*where, key), f"'{key}' {why}", refused=True)
        for key, why in NODE_REFUSED.items()
        if key in values
    ]
    for key in NODE_REFUSED:
        values.pop(key, None)
    found += _termination_spellings(values, where)
    inputs = values.get("inputs")
    if isinstance(inputs, Mapping) and inputs.get("select") == "history":
        values["inputs"] = {**inputs, "select": "all"}
        found.append(
            Spelling(
                (*where, "inputs", "select"),
                "'select: history' is deprecated; write 'select: all' (every iteration's output)",
            )
        )
    return values, found


def pipeline_file(data: Mapping[str, Any]) -> tuple[dict[str, Any], list[Spelling]]:
    """Rewrite the loop-agents spellings of a pipeline file's top-level keys."""
    values = dict(data)
    found = [
        Spelling((key,), f"'{key}' {why}", refused=True)
        for key, why in PIPELINE_REFUSED.items()
        if key in values
    ]
    for key in PIPELINE_REFUSED:
        values.pop(key, None)
    for key, why in PIPELINE_IGNORED.items():
        if key in values:
            values.pop(key)
            found.append(Spelling((key,), f"'{key}:' {why}"))
    return values, found


def _termination_spellings(values: dict[str, Any], where: KeyPath) -> list[Spelling]:
    """Fold v2 ``completion:`` and top-level ``min_iterations`` into ``termination:``."""
    found: list[Spelling] = []
    term = values.get("termination")
    if term is not None and not isinstance(term, Mapping):
        return found  # the converter reports the termination that is not a mapping
    given = term is not None
    merged: dict[str, Any] = dict(term) if isinstance(term, Mapping) else {}
    if "completion" in values:
        completion = values.pop("completion")
        new = TERMINATION_NAMES.get(completion) if isinstance(completion, str) else None
        if new is None:
            found.append(
                Spelling(
                    (*where, "completion"),
                    f"'completion: {completion}' is not a loop-agents completion "
                    f"(it knew {', '.join(TERMINATION_NAMES)}); write "
                    "'termination: {type: fixed | judgment | queue}'",
                    refused=True,
                )
            )
        elif given and "type" in merged:
            found.append(
                Spelling(
                    (*where, "completion"),
                    "give 'termination:' or the legacy 'completion:', not both "
                    "(loop-agents ignored 'completion:' beside a termination type)",
                    refused=True,
                )
            )
        else:
            merged["type"] = new
            found.append(
                Spelling(
                    (*where, "completion"),
                    f"'completion: {completion}' is deprecated; write "
                    f"'termination: {{type: {new}}}'",
                )
            )
    if "min_iterations" in values:
        count = values.pop("min_iterations")
        if "min_iterations" in merged:
            found.append(
                Spelling(
                    (*where, "min_iterations"),
                    "'min_iterations' is given twice, at the top and under 'termination:'; "
                    "keep the one under 'termination:'",
                    refused=True,
                )
            )
        else:
            merged["min_iterations"] = count
            found.append(
                Spelling(
                    (*where, "min_iterations"),
                    "a top-level 'min_iterations' is deprecated; write it under "
                    "'termination:' (termination.min_iterations)",
                )
            )
    kind = merged.get("type")
    if isinstance(kind, str) and kind in TERMINATION_NAMES:
        merged["type"] = TERMINATION_NAMES[kind]
        found.append(
            Spelling(
                (*where, "termination", "type"),
                f"termination type '{kind}' is deprecated; write 'type: {TERMINATION_NAMES[kind]}'",
            )
        )
    if merged or given:
        values["termination"] = merged
    return found


def report(found: list[Spelling], *, doc: Any, path: Path | None) -> list[ConfigError]:
    """Warn about each deprecated spelling; return each refused one as a located error."""
    refused: list[ConfigError] = []
    for spelling in found:
        line, column = locate(doc, spelling.keypath, key=True)
        if spelling.refused:
            refused.append(
                ConfigError(spelling.message, path=path, line=line, column=column, code=REFUSED)
            )
        else:
            warnings.warn(
                LegacyPipelineWarning(spelling.message, path=path, line=line, column=column),
                stacklevel=3,
            )
    return refused
