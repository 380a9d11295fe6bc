"""Sessions: the composition root that wires definitions, plugins, engine, store and backends.

:class:`Session` is the façade; :mod:`.launch`, :mod:`.observe`, :mod:`.control`,
:mod:`.listing` and :mod:`.maintenance` do the work, each one job.
The names here load on first use: a command that looks at one session through
:mod:`.observe` does not pay for importing the façade and everything it wires.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from looprunner.session.facade import Session
    from looprunner.session.listing import as_dict, not_found

__all__ = ["Session", "as_dict", "not_found"]

_HOMES = {"Session": "facade", "as_dict": "listing", "not_found": "listing"}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'looprunner.session' has no attribute {name!r}")
    # __import__, not importlib.import_module: ``python -X importtime`` lists only the former
    value = getattr(__import__(f"{__name__}.{home}", fromlist=[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
