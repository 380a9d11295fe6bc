"""The shape of a node id, apart from the pipeline models that use it.

Session paths (:mod:`looprunner.names`) check node ids too; reading a session's files
must not build every pipeline model to get one regular expression.
"""

from __future__ import annotations

import re

#: a node id becomes part of a folder name: letters, digits, '-' and '_' only
NODE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
