"""A backend's own settings (``--ray-address``): which apply, and which a session ran with.

A backend declares its options (:class:`~looprunner.protocols.BackendOption`: a name,
the flag ``start`` accepts, the environment variable that also sets it). For a launch
the value of each comes from, first to last: the command (``--FLAG`` or
``--backend-option NAME=VALUE``, ``Session.start(backend_options=...)``), the
environment variable, the pipeline file's ``backends:``, the project's
``.looprunner/config.yaml``. ``resume`` and
``restart`` put what the session last ran with between the command and the variable,
so the session returns to the same cluster in a shell that names another.

What a launch used is recorded in the run directory (``backend-options.json``), so every
later command about the session (``status``, ``kill``, ``monitor``, ``attach``,
``cleanup``) asks the backend as it was set then, without the flag. The values are
stored in plain text: an option is where to run, never a credential.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from looprunner.backend_settings import BackendOption, options_of
from looprunner.errors import UsageError
from looprunner.protocols import Backend
from looprunner.store.atomic import write_atomic

if TYPE_CHECKING:
    from looprunner.models import Pipeline

#: the file in the run directory that records the options a session was launched with
OPTIONS_FILE = "backend-options.json"


def unknown(backend: Backend | type, name: str, origin: str) -> UsageError:
    """Build the error for an option ``backend`` does not have (exit 2, naming its own)."""
    known = ", ".join(option.name for option in options_of(backend)) or "none"
    return UsageError(
        f"{origin}: backend {getattr(backend, 'name', '?')!r} has no option {name!r} "
        f"(its options: {known})"
    )


def resolve(
    backend: Backend,
    project: Path,
    given: Mapping[str, str] | None,
    env: Mapping[str, str],
    recorded: Mapping[str, str] | None = None,
    pipeline: Pipeline | None = None,
) -> dict[str, str]:
    """Return the options a launch on ``backend`` uses (only those that are set).

    Raises :class:`UsageError` (exit 2) for an option name ``backend`` does not declare,
    given, in the pipeline file or in the project's config file (naming its line),
    before anything changes.
    """
    from looprunner.convert.project_config import read_project_config  # only to launch

    declared: dict[str, BackendOption] = {o.name: o for o in options_of(backend)}
    for name in given or {}:
        if name not in declared:
            raise unknown(backend, name, "--backend-option")
    from_pipeline: dict[str, str] = {}
    if pipeline is not None:
        from_pipeline = dict(pipeline.backends.get(backend.name, {}))
        for name in from_pipeline:
            if name not in declared:
                raise unknown(backend, name, _pipeline_place(pipeline, backend.name, name))
    config = read_project_config(project)
    from_config = dict(config.backends.get(backend.name, {}))
    for name in from_config:
        if name not in declared:
            raise unknown(backend, name, config.place(backend.name, name))
    chosen: dict[str, str] = {}
    for name, option in declared.items():
        layers = [
            (given or {}).get(name),
            (recorded or {}).get(name),
            env.get(option.env) if option.env else None,
            from_pipeline.get(name),
            from_config.get(name),
        ]
        value = next((v for v in layers if v), None)
        if value is not None:
            _refuse_credential(backend, name, value)
            chosen[name] = value
    return chosen


def _pipeline_place(pipeline: Pipeline, backend: str, option: str) -> str:
    """Return where the pipeline file sets ``backends.BACKEND.OPTION`` (``FILE:LINE``).

    Looked up only for an error: the file is read again for its lines.
    """
    source = pipeline.source
    if source is None:
        return f"pipeline {pipeline.name!r}"
    from looprunner.convert.project_config import read_backend_settings
    from looprunner.convert.yaml import read_yaml

    try:
        doc = read_yaml(source)
        _, places = read_backend_settings(doc, source) if isinstance(doc, Mapping) else ({}, {})
    except (OSError, ValueError):
        places = {}
    return places.get((backend, option), str(source))


def _refuse_credential(backend: Backend, name: str, value: str) -> None:
    """Refuse a URL with a password: options are recorded in plain text."""
    try:
        password = urlsplit(value).password
    except ValueError:
        return
    if password:
        raise UsageError(
            f"backend {backend.name!r} option {name!r}: the value holds a password, and "
            "options are recorded with the session in plain text; give the credential "
            "to the backend another way"
        )


def recorded(run_dir: Path) -> dict[str, str]:
    """Return the options the session's last launch recorded (none if it recorded none)."""
    try:
        data = json.loads((run_dir / OPTIONS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): str(v) for k, v in data.items() if isinstance(v, str)}


def record(run_dir: Path, options: Mapping[str, str]) -> None:
    """Record the options of this launch (remove an earlier record when there are none)."""
    path = run_dir / OPTIONS_FILE
    if options:
        write_atomic(path, json.dumps(dict(options), indent=2, sort_keys=True) + "\n")
    else:
        path.unlink(missing_ok=True)
