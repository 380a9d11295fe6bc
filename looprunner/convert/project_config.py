"""The project's own settings file, ``.looprunner/config.yaml``: settings of backends.

Only ``backends:`` is read: for each backend name, a mapping of its option names to
values (``backends: {ray: {address: http://head:8265}}``), so a team sets where its
sessions run once, in the repository, instead of in every shell. Values are written as
text (a number is taken as its text); every problem names the file and line.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from looprunner.convert.yaml import describe, locate, read_yaml
from looprunner.errors import ConfigError

#: where the project's settings live, relative to the project folder
CONFIG_FILE = Path(".looprunner") / "config.yaml"
KNOWN_KEYS = ("backends",)


@attrs.frozen
class ProjectConfig:
    """What ``.looprunner/config.yaml`` says (empty when there is no such file)."""

    path: Path | None = None
    backends: Mapping[str, Mapping[str, str]] = attrs.field(factory=dict)
    #: ``FILE:LINE`` of each backend's option, for error messages
    places: Mapping[tuple[str, str], str] = attrs.field(factory=dict)

    def place(self, backend: str, option: str) -> str:
        """Return where ``backends.BACKEND.OPTION`` is written (``FILE:LINE``)."""
        return self.places.get((backend, option), str(self.path))


def read_project_config(project: Path) -> ProjectConfig:
    """Read ``PROJECT/.looprunner/config.yaml``; raise :class:`ConfigError` where it is wrong."""
    path = project / CONFIG_FILE
    if not path.is_file():
        return ProjectConfig()
    doc = read_yaml(path)
    if doc is None:
        return ProjectConfig(path)
    if not isinstance(doc, Mapping):
        raise _error(doc, path, f"expected a mapping (backends: ...), got {describe(doc)}")
    for key in doc:
        if key not in KNOWN_KEYS:
            raise _error(
                doc,
                path,
                f"unknown setting {key!r} (known: {', '.join(KNOWN_KEYS)})",
                key,
                key=True,
            )
    backends, places = read_backend_settings(doc, path)
    return ProjectConfig(path, backends, places)


def _error(doc: Any, path: Path, message: str, *keys: str | int, key: bool = False) -> ConfigError:
    line, column = locate(doc, keys, key=key)
    return ConfigError(
        message, path=path, line=line, column=column, field=".".join(map(str, keys)) or None
    )


def read_backend_settings(
    doc: Mapping[str, Any], path: Path
) -> tuple[dict[str, dict[str, str]], dict[tuple[str, str], str]]:
    """Read the ``backends:`` key of a YAML document (the project's settings, a pipeline).

    Return each backend's options as text, and the ``FILE:LINE`` each is written at; a
    value that is not a mapping of mappings of text is a :class:`ConfigError` at its line.
    """
    raw: Any = doc.get("backends") or {}
    if not isinstance(raw, Mapping):
        raise _error(
            doc, path, f"expected a mapping of backend names, got {describe(raw)}", "backends"
        )
    backends: dict[str, dict[str, str]] = {}
    places: dict[tuple[str, str], str] = {}
    for name, options in raw.items():
        if not isinstance(options, Mapping):
            raise _error(
                doc,
                path,
                f"expected a mapping of option names to values, got {describe(options)}",
                "backends",
                str(name),
            )
        backends[str(name)] = {}
        for option, value in options.items():
            if not isinstance(value, str | int | float) or isinstance(value, bool):
                raise _error(
                    doc,
                    path,
                    f"expected a text value, got {describe(value)}",
                    "backends",
                    str(name),
                    str(option),
                )
            backends[str(name)][str(option)] = str(value)
            line, _ = locate(doc, ("backends", name, option), key=True)
            places[(str(name), str(option))] = f"{path}:{line}" if line else str(path)
    return backends, places
