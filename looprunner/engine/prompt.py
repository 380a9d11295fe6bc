"""Prompt rendering: ``${NAME}`` template variables, legacy aliases included.

Only the variables below are replaced; anything else that looks like a variable
(``${CURRENT_BRANCH}`` in a bash snippet of the prompt) is left exactly as written, so
prompts can show shell code to the agent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

VARIABLES = (
    "CTX",
    "STATUS",
    "PROGRESS",
    "OUTPUT",
    "ITERATION",
    "SESSION_NAME",
    "CONTEXT",
)
#: other loop-agents names, still understood: the legacy aliases, and the names of its
#: result-file prompts (``${RESULT}`` is the status file, ``${OUTPUT_PATH}`` the stage's
#: ``output_path``, or the iteration's output file when the stage sets none)
LEGACY_ALIASES = {
    "SESSION": "SESSION_NAME",
    "PROGRESS_FILE": "PROGRESS",
    "INDEX": None,
    "RESULT": "STATUS",
    "OUTPUT_PATH": "OUTPUT",
}

_VARIABLE = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)\}")


def template_values(
    *,
    ctx: str,
    status: str,
    progress: str,
    output: str,
    iteration: int,
    session: str,
    context: str,
) -> dict[str, str]:
    """Return the value of every variable, legacy aliases included."""
    values = {
        "CTX": ctx,
        "STATUS": status,
        "PROGRESS": progress,
        "OUTPUT": output,
        "ITERATION": str(iteration),
        "SESSION_NAME": session,
        "CONTEXT": context,
        "SESSION": session,
        "PROGRESS_FILE": progress,
        "INDEX": str(iteration - 1),  # loop-agents' 0-based iteration
        "RESULT": status,
        "OUTPUT_PATH": output,
    }
    return values


def render(template: str, values: Mapping[str, str]) -> str:
    """Replace known ``${NAME}`` variables in ``template``; leave the rest untouched.

    Replacement is a single pass, so a value that itself contains ``${...}`` (a user's
    context text) is never expanded again.
    """
    return _VARIABLE.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def unknown_variables(template: str) -> list[str]:
    """Return variables in ``template`` that rendering would leave as they are."""
    known = set(VARIABLES) | set(LEGACY_ALIASES)
    return sorted({m.group(1) for m in _VARIABLE.finditer(template)} - known)
