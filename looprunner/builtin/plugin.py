"""The built-ins' hook implementations: registered exactly as a third-party plugin's.

The functions live in :mod:`looprunner.builtin.catalog`; this module marks them.
"""

from __future__ import annotations

from looprunner.builtin import catalog
from looprunner.plugins.hookspecs import hookimpl

register_providers = hookimpl(catalog.register_providers)
register_terminations = hookimpl(catalog.register_terminations)
register_backends = hookimpl(catalog.register_backends)
register_stage_types = hookimpl(catalog.register_stage_types)
