"""A session's row in a table and its cost, from its answer: plain data, no model.

The *answer* is what ``looprunner --json status`` prints for a session (state.json's
fields, ``health``, ``resources``, ``branches``, ...). ``list`` prints its table from
answers, whether they were built from models or by the quick look
(:mod:`looprunner.glance`), and the notebook table converts its statuses to the same
shape (:mod:`looprunner.views.display`): one function draws every session table.
"""

from __future__ import annotations

from looprunner.views.clock import age

TYPE_CHECKING = False  # typing itself is not imported: a quick look needs nothing of it
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any

#: the columns of a session table, the same for ``looprunner list``, the notebook and the REPL
COLUMNS = ("NAME", "TYPE", "STAGE", "ITER", "HEALTH", "AGE", "COST")
#: the healths of a session its engine will not run again by itself
FINISHED = ("complete", "failed", "killed")


def current_stage(answer: Mapping[str, Any]) -> Mapping[str, Any]:
    """Return the state of the node the session is on (as ``RunState.current``)."""
    stages = answer["stages"]
    return stages[min(answer["current_stage"], len(stages) - 1)]  # type: ignore[no-any-return]


def row(name: str, answer: Mapping[str, Any]) -> dict[str, str]:
    """Return the cells of session ``name``'s row, by column (see :data:`COLUMNS`).

    ``name`` is the name the session is looked up by (its run folder's, or an earlier
    run's ``NAME.STAMP``), not what its state file calls it.

    ``TYPE`` is ``stage`` for a loop and ``pipeline`` for a pipeline, whose ``STAGE`` adds
    the node's position (and, in a running parallel block, where each provider is);
    ``ITER`` is the iteration most recently started over the current stage's cap.
    """
    if "stages" not in answer:  # no state: only its name and health are known
        return dict.fromkeys(COLUMNS, "-") | {
            "NAME": name,
            "HEALTH": answer["health"],
        }
    current = current_stage(answer)
    loop = answer["type"] == "loop"
    stage = (
        current["id"]
        if loop
        else f"{current['id']} ({answer['current_stage'] + 1}/{len(answer['stages'])})"
    )
    branches = answer.get("branches") or ()
    if branches and answer["health"] not in FINISHED:  # a parallel block: each provider's place
        stage += (
            " ["
            + ", ".join(
                f"{b['name']} {b['stage']} {b['iteration']}/{b['max_iterations']}" for b in branches
            )
            + "]"
        )
    return {
        "NAME": name,
        "TYPE": "stage" if loop else "pipeline",
        "STAGE": stage,
        "ITER": f"{answer['iteration']}/{current['max_iterations']}",
        "HEALTH": answer["health"],
        "AGE": age(answer["started_at"]),
        "COST": cost_text(answer["cost_usd"], answer["usage"]),
    }


def usage_total(usage: Mapping[str, Any]) -> int:
    """Every token counted, input of all kinds and output (as ``TokenUsage.total``)."""
    return int(
        usage["input_tokens"]
        + usage["output_tokens"]
        + usage["cache_read_input_tokens"]
        + usage["cache_creation_input_tokens"]
    )


def cost_text(
    cost_usd: float | None, usage: Mapping[str, Any] | None, *, long: bool = False
) -> str:
    """Say what agents reported a session cost: dollars, else tokens, else ``-``.

    A cost the agents did not report is unknown, never shown as zero. ``long`` adds the
    tokens by kind (for ``status``).
    """
    money = f"${cost_usd:.4f}" if cost_usd is not None else None
    if usage is None:
        return money or "-"
    if long:
        tokens = (
            f"{usage['input_tokens']} in, {usage['output_tokens']} out, "
            f"{usage['cache_read_input_tokens']} cache read, "
            f"{usage['cache_creation_input_tokens']} cache write tokens"
        )
        return f"{money or 'cost unknown'} ({tokens})"
    total = usage_total(usage)
    shown = f"{total / 1000:.1f}k" if total >= 1000 else str(total)
    return money or f"? ({shown} tok)"


def branch_lines(branches: Iterable[Mapping[str, Any]]) -> list[str]:
    """One line per provider of a parallel block: its stage, iterations and decision."""
    rows = list(branches)
    width = max((len(b["name"]) for b in rows), default=0)
    return [
        f"{b['name'].ljust(width)}  stage {b['stage']} ({b['stage_index'] + 1}/{b['stages']})  "
        f"iteration {b['iteration']}/{b['max_iterations']}  {b['decision'] or '-':8}  "
        f"{b['status']}"
        for b in rows
    ]
