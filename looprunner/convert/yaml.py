"""Reading YAML with positions, and pointing at the line where something is wrong.

Files are parsed with ruamel.yaml's round-trip loader, which remembers where every key
and value stands; :func:`locate` turns a key path into the 1-based line and column the
error messages show. ruamel.yaml is imported only when a YAML file is read: reading run
state and events never needs a YAML parser.

Definition files are input a user (or an agent) may have written, so parsing is bounded:
a file larger than :data:`MAX_DEFINITION_BYTES` (env ``LOOPRUNNER_MAX_DEFINITION_BYTES``)
is refused before it is parsed — ruamel's handling of comments grows faster than the
file, 4 MB of comments took 13.5 s — and one nested deeper than
:data:`MAX_DEFINITION_DEPTH` (env ``LOOPRUNNER_MAX_DEFINITION_DEPTH``) while it is
parsed, instead of exhausting the interpreter's recursion limit.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from looprunner.errors import ConfigError, LooprunnerError
from looprunner.limits import env_limit

#: the largest definition file read, in bytes (1 MiB); env LOOPRUNNER_MAX_DEFINITION_BYTES
MAX_DEFINITION_BYTES = 1 << 20
#: the deepest nesting of mappings and lists in a definition file;
#: env LOOPRUNNER_MAX_DEFINITION_DEPTH
MAX_DEFINITION_DEPTH = 64
BYTES_VARIABLE = "LOOPRUNNER_MAX_DEFINITION_BYTES"
DEPTH_VARIABLE = "LOOPRUNNER_MAX_DEFINITION_DEPTH"

#: where a value sits in a document: mapping keys and list indexes, outermost first
KeyPath = tuple[str | int, ...]


def describe(value: object) -> str:
    """Name a value the way an error message shows it (``'five'``, ``a list``)."""
    if isinstance(value, str):
        return repr(value)
    if value is None:
        return "nothing"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return repr(value)


def dotted(path: KeyPath) -> str:
    """Write a key path as the user reads it: ``nodes[2].termination.max``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def plain_data(value: Any) -> Any:
    """Return ``value`` with ruamel's commented mappings and lists made plain dicts and lists.

    Keys become strings, as JSON has them, so free-form data survives a round trip
    through the run directory unchanged.
    """
    if isinstance(value, Mapping):
        return {str(k): plain_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_data(v) for v in value]
    return value


def max_definition_bytes() -> int:
    """Return the size limit of a definition file: ``LOOPRUNNER_MAX_DEFINITION_BYTES`` or 1 MiB."""
    return env_limit(BYTES_VARIABLE, MAX_DEFINITION_BYTES)


def max_definition_depth() -> int:
    """Return the nesting limit of a definition file: ``LOOPRUNNER_MAX_DEFINITION_DEPTH`` or 64."""
    return env_limit(DEPTH_VARIABLE, MAX_DEFINITION_DEPTH)


def _too_big(path: Path, size: int, limit: int) -> ConfigError:
    return ConfigError(
        f"file is {size} bytes, more than the limit of {limit} bytes"
        f" (raise it with {BYTES_VARIABLE})",
        code="LR001",
        path=path,
    )


def _yaml(depth: int) -> Any:
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    # ruamel counts every node from the document's root, a scalar leaf included: a
    # scalar inside ``depth`` nested mappings and lists is at node depth ``depth + 1``
    yaml.max_depth = depth + 1
    return yaml


def read_yaml(path: Path) -> Any:
    """Parse a YAML file, keeping positions; a syntax error names its line and column.

    A file over the size limit is refused before it is parsed, and at most one byte more
    than the limit is ever read (a file growing, or something that is not a file).
    """
    limit = max_definition_bytes()
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > limit:
                raise _too_big(path, size, limit)
            raw = handle.read(limit + 1)
        if len(raw) > limit:
            raise _too_big(path, len(raw), limit)
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", path=path, code="LR001") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read file: {exc}", path=path) from exc
    return parse_yaml(text, path)


def parse_yaml(text: str, path: Path) -> Any:
    """Parse YAML text read from ``path`` (used only to name it in errors).

    The text is held to the same size and nesting limits as :func:`read_yaml`.
    """
    from ruamel.yaml.composer import MaxDepthExceededError
    from ruamel.yaml.error import MarkedYAMLError, YAMLError
    from ruamel.yaml.reader import ReaderError

    limit = max_definition_bytes()
    if len(text) > limit and len(text.encode("utf-8", "surrogatepass")) > limit:
        raise _too_big(path, len(text.encode("utf-8", "surrogatepass")), limit)
    depth = max_definition_depth()
    try:
        return _yaml(depth).load(text)
    except ReaderError as exc:  # a character YAML does not allow (NUL, other controls)
        position = exc.position if isinstance(exc.position, int) else 0
        line = text.count("\n", 0, position) + 1
        column = position - (text.rfind("\n", 0, position) + 1) + 1
        character = chr(exc.character) if isinstance(exc.character, int) else exc.character
        raise ConfigError(
            f"invalid YAML: character {character!r} is not allowed",
            code="LR001",
            path=path,
            line=line,
            column=column,
        ) from None
    except MaxDepthExceededError as exc:
        mark = exc.problem_mark
        raise ConfigError(
            f"mappings and lists nested deeper than {depth} (raise it with {DEPTH_VARIABLE})",
            code="LR001",
            path=path,
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
        ) from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(
            f"invalid YAML: {problem}",
            code="LR001",
            path=path,
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
        ) from None
    except YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", path=path, code="LR001") from None
    except RecursionError:  # a depth limit raised beyond what the interpreter can nest
        raise ConfigError(
            f"mappings and lists nested too deep for the parser (lower {DEPTH_VARIABLE})",
            code="LR001",
            path=path,
        ) from None


def locate(doc: Any, keypath: KeyPath, *, key: bool = False) -> tuple[int | None, int | None]:
    """Return the 1-based line and column of the value (or ``key``) at ``keypath``.

    Where the path leaves the document, the position of the deepest part found is
    returned; a document that was not read from YAML (``doc=None``) has no positions.
    """
    node = doc
    position: tuple[int | None, int | None] = (None, None)
    for depth, part in enumerate(keypath):
        last = depth == len(keypath) - 1
        try:
            if isinstance(node, Mapping) and hasattr(node, "lc") and part in node:
                line, col = node.lc.key(part) if (last and key) else node.lc.value(part)
                position = (line + 1, col + 1)
                node = node[part]
            elif (
                isinstance(node, list)
                and hasattr(node, "lc")
                and isinstance(part, int)
                and part < len(node)
            ):
                line, col = node.lc.item(part)
                position = (line + 1, col + 1)
                node = node[part]
            else:
                break
        except (KeyError, IndexError, TypeError, AttributeError):
            break
    if position == (None, None) and hasattr(doc, "lc"):
        position = (doc.lc.line + 1, doc.lc.col + 1)
    return position


def expect_mapping(data: Any, *, path: Path, what: str) -> Any:
    """Return ``data`` if it is a mapping, else raise naming the file."""
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"{what} must be a mapping of keys to values, got {describe(data)}", path=path, line=1
        )
    return data


@contextlib.contextmanager
def located(stage_folder: Path | None, keypath: KeyPath) -> Iterator[None]:
    """Give an error raised inside the block the file and line of ``keypath`` in stage.yaml.

    For checks that happen after loading (is this provider registered?), so the user
    still learns where the bad name is written. Keeps the error's class and exit code.
    """
    try:
        yield
    except LooprunnerError as exc:
        stage_yaml = stage_folder / "stage.yaml" if stage_folder else None
        if (
            stage_yaml is None
            or not stage_yaml.is_file()
            or (isinstance(exc, ConfigError) and exc.path)
        ):
            raise
        try:
            doc = read_yaml(stage_yaml)
        except ConfigError:
            raise exc from None
        if not isinstance(doc, Mapping) or keypath[0] not in doc:
            raise
        line, col = locate(doc, keypath)
        where = f"{stage_yaml}:{line}:{col}: " if line else f"{stage_yaml}: "
        exc.message = where + exc.message
        exc.args = (exc.message,)
        raise
