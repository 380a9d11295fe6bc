"""Names of the built-ins that stand in when a definition names none.

Only ``builtin/`` may name a built-in (DESIGN.md: the built-ins are plugins); the rest
of the package imports the name from here, e.g. to show which type a stage runs.
"""

from __future__ import annotations

from typing import Final

#: the stage type of a stage whose ``type:`` is unset (``Stage.type is None``)
STAGE_TYPE: Final = "agent"
