"""Sessions: the composition root that wires definitions, plugins, engine, store and backends.

:class:`Session` is the façade; :mod:`.launch`, :mod:`.observe`, :mod:`.control`,
:mod:`.listing` and :mod:`.maintenance` do the work, each one job.
"""

from looprunner.session.facade import Session
from looprunner.session.listing import as_dict, not_found

__all__ = ["Session", "as_dict", "not_found"]
