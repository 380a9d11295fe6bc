"""Reading and writing looprunner's files: the only importer of ruamel.yaml and cattrs.

Definition files are parsed with ruamel.yaml's round-trip loader, which remembers where
every key and value stands, and structured into models with one cattrs converter in
detailed-validation mode. A bad value becomes one :class:`ConfigError` that names the
file, line, column and key path: ``stage.yaml:4:15: termination.iterations: expected an
integer, got 'five'``.
"""

from __future__ import annotations

import contextlib
import enum
import json
import shlex
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.errors import (
    AttributeValidationNote,
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)
from cattrs.gen import make_dict_structure_fn

from looprunner.errors import ConfigError, LooprunnerError
from looprunner.models import (
    AgentStatus,
    Decision,
    Event,
    Health,
    JudgeSpec,
    Node,
    NodeInputs,
    Pipeline,
    RunState,
    RunStatus,
    Stage,
    Termination,
    WorkDone,
)
from looprunner.models.pipeline import NODE_ID

T = TypeVar("T")
KeyPath = tuple[str | int, ...]


class _BadValue(ValueError):
    """A value of the wrong type; its message is shown to the user as it is."""


def _describe(value: object) -> str:
    if isinstance(value, str):
        return repr(value)
    if value is None:
        return "nothing"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return repr(value)


def _structure_int(value: object, _: type) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _BadValue(f"expected an integer, got {_describe(value)}")
    return value


def _structure_float(value: object, _: type) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _BadValue(f"expected a number, got {_describe(value)}")
    return float(value)


def _structure_str(value: object, _: type) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _BadValue(f"expected a string, got {_describe(value)}")
    return str(value)


def _structure_bool(value: object, _: type) -> bool:
    if not isinstance(value, bool):
        raise _BadValue(f"expected true or false, got {_describe(value)}")
    return value


def _structure_strings(value: object, _: type) -> tuple[str, ...]:
    if isinstance(value, list | tuple) and all(
        isinstance(v, str | int | float) and not isinstance(v, bool) for v in value
    ):
        return tuple(str(v) for v in value)
    raise _BadValue(f"expected a list of strings, got {_describe(value)}")


def split_command(value: object) -> object:
    """Turn a command given as one string into an argv, split as a shell would.

    The result is only ever executed as an argv, never through a shell. Anything that is
    not a string is returned unchanged for the converter to judge.
    """
    if not isinstance(value, str):
        return value
    try:
        parts = shlex.split(value)
    except ValueError as exc:
        raise _BadValue(f"cannot split command {value!r}: {exc}") from exc
    if not parts:
        raise _BadValue("the command is empty")
    return parts


def _structure_path(value: object, _: type) -> Path:
    if not isinstance(value, str):
        raise _BadValue(f"expected a path, got {_describe(value)}")
    return Path(value)


def _structure_decision(value: object, _: type) -> Decision:
    try:
        return Decision(str(value))
    except ValueError:
        choices = ", ".join(d.value for d in Decision)
        raise _BadValue(f"expected one of {choices}, got {_describe(value)}") from None


def _structure_enum(value: object, cls: type[enum.Enum]) -> enum.Enum:
    try:
        return cls(value)
    except ValueError:
        choices = ", ".join(str(m.value) for m in cls)
        raise _BadValue(f"expected one of {choices}, got {_describe(value)}") from None


def _mapping_only(hook: Callable[[Any, Any], T]) -> Callable[[Any, Any], T]:
    """Wrap a class hook so a scalar or list gets a plain "expected a mapping" error."""

    def structure(value: Any, cls: Any) -> T:
        if not isinstance(value, Mapping):
            raise _BadValue(f"expected a mapping, got {_describe(value)}")
        return hook(value, cls)

    return structure


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(detailed_validation=True, forbid_extra_keys=False)
    conv.register_structure_hook(int, _structure_int)
    conv.register_structure_hook(float, _structure_float)
    conv.register_structure_hook(str, _structure_str)
    conv.register_structure_hook(bool, _structure_bool)
    conv.register_structure_hook(Path, _structure_path)
    conv.register_unstructure_hook(Path, str)
    conv.register_structure_hook_func(lambda t: t == tuple[str, ...], _structure_strings)
    conv.register_structure_hook(Decision, _structure_decision)
    for enum_type in (RunStatus, Health):
        conv.register_structure_hook(enum_type, _structure_enum)
    # Hand-written files are checked for unknown keys (a typo must not silently change
    # behaviour); files looprunner writes itself are read leniently across versions.
    for strict in (Termination, JudgeSpec, NodeInputs):
        conv.register_structure_hook(
            strict,
            _mapping_only(make_dict_structure_fn(strict, conv, _cattrs_forbid_extra_keys=True)),
        )
    conv.register_structure_hook(WorkDone, _mapping_only(make_dict_structure_fn(WorkDone, conv)))
    return conv


converter = _make_converter()


# --------------------------------------------------------------------------- YAML


def _yaml() -> Any:
    # imported here: reading state and events never needs a YAML parser
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    return yaml


def read_yaml(path: Path) -> Any:
    """Parse a YAML file, keeping positions; a syntax error names its line and column."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", path=path, code="LR001") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read file: {exc}", path=path) from exc
    return parse_yaml(text, path)


def parse_yaml(text: str, path: Path) -> Any:
    """Parse YAML text read from ``path`` (used only to name it in errors)."""
    from ruamel.yaml.error import MarkedYAMLError, YAMLError
    from ruamel.yaml.reader import ReaderError

    try:
        return _yaml().load(text)
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


def locate(doc: Any, keypath: KeyPath, *, key: bool = False) -> tuple[int | None, int | None]:
    """Return the 1-based line and column of the value (or ``key``) at ``keypath``."""
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


def _walk(exc: BaseException, path: KeyPath) -> Iterator[tuple[KeyPath, BaseException]]:
    if isinstance(exc, ClassValidationError | IterableValidationError):
        with_notes, without = exc.group_exceptions()
        for inner, note in with_notes:
            step: str | int
            if isinstance(note, AttributeValidationNote):
                step = note.name
            elif isinstance(note, IterableValidationNote):
                step = note.index
            else:  # pragma: no cover - cattrs has only these two notes
                step = str(note)
            yield from _walk(inner, (*path, step))
        for inner in without:
            yield from _walk(inner, path)
    elif isinstance(exc, BaseExceptionGroup):
        for member in exc.exceptions:
            yield from _walk(member, path)
    else:
        yield path, exc


def _dotted(path: KeyPath) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def structure_from(
    data: Any, cls: type[T], *, path: Path | None, doc: Any, prefix: KeyPath = ()
) -> T:
    """Structure ``data`` into ``cls``; the first problem becomes a located ConfigError."""
    try:
        return converter.structure(data, cls)
    except Exception as exc:
        raise _config_error(exc, path=path, doc=doc, prefix=prefix) from None


def _config_error(
    exc: BaseException, *, path: Path | None, doc: Any, prefix: KeyPath
) -> ConfigError:
    for keypath, leaf in _walk(exc, prefix):
        if isinstance(leaf, ForbiddenExtraKeysError):
            extra = sorted(leaf.extra_fields)[0]
            full = (*keypath, extra)
            line, col = locate(doc, full, key=True)
            return ConfigError(
                f"unknown key {extra!r}", path=path, line=line, column=col, field=_dotted(full)
            )
        if isinstance(leaf, KeyError):
            missing = str(leaf.args[0]) if leaf.args else "?"
            line, col = locate(doc, keypath)
            return ConfigError(
                f"missing required key {missing!r}",
                path=path,
                line=line,
                column=col,
                field=_dotted(keypath) or None,
            )
        line, col = locate(doc, keypath)
        if isinstance(leaf, ConfigError):
            message = leaf.detail
        elif isinstance(leaf, _BadValue):
            message = str(leaf)
        else:
            message = _plain(leaf)
        return ConfigError(
            message, path=path, line=line, column=col, field=_dotted(keypath) or None
        )
    return ConfigError(str(exc), path=path)


def _plain(exc: BaseException) -> str:
    return f"invalid value ({type(exc).__name__}: {exc})"


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


def expect_mapping(data: Any, *, path: Path, what: str) -> Any:
    """Return ``data`` if it is a mapping, else raise naming the file."""
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"{what} must be a mapping of keys to values, got {_describe(data)}", path=path, line=1
        )
    return data


# --------------------------------------------------------------------------- stages

STAGE_KEYS = frozenset(
    {
        "name",
        "description",
        "provider",
        "model",
        "termination",
        "delay",
        "context",
        "output_path",
        "prompt",
        "fixtures",
        "mock_delay",
        "timeout",
        "command",
    }
)


def load_stage_file(stage_yaml: Path, *, default_name: str) -> Stage:
    """Read ``stage.yaml`` and its prompt file into a :class:`Stage`.

    The prompt is ``prompt.md`` beside the file, or the file the ``prompt:`` key names
    (relative to the stage's folder). ``fixtures:`` is relative to the folder too.
    """
    folder = stage_yaml.parent
    doc = read_yaml(stage_yaml)
    if doc is None:
        doc = {}
    data = expect_mapping(doc, path=stage_yaml, what="a stage file")
    for key in data:
        if key not in STAGE_KEYS:
            line, col = locate(doc, (key,), key=True)
            raise ConfigError(
                f"unknown key {key!r} (known: {', '.join(sorted(STAGE_KEYS))})",
                path=stage_yaml,
                line=line,
                column=col,
            )
    values = dict(data)
    prompt_name = values.pop("prompt", None)
    if prompt_name is not None and not isinstance(prompt_name, str):
        line, col = locate(doc, ("prompt",))
        raise ConfigError(
            f"expected a prompt file name, got {_describe(prompt_name)}",
            path=stage_yaml,
            line=line,
            column=col,
            field="prompt",
        )
    values.setdefault("name", default_name)
    name = values["name"]
    if not isinstance(name, str) or not NODE_ID.fullmatch(name):
        line, col = locate(doc, ("name",))
        raise ConfigError(
            f"invalid stage name {name!r}: use letters, digits, '-' and '_' (at most 64)",
            path=stage_yaml,
            line=line,
            column=col,
            field="name",
        )
    _split_commands(values, doc=doc, path=stage_yaml)
    stage = structure_from(values, Stage, path=stage_yaml, doc=doc)
    prompt_file = folder / (prompt_name or "prompt.md")
    try:
        prompt = prompt_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        line, col = locate(doc, ("prompt",)) if prompt_name else (None, None)
        raise ConfigError(
            f"prompt file {prompt_file} not found",
            path=stage_yaml,
            line=line,
            column=col,
            code="LR012",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read prompt file {prompt_file}: {exc}", path=stage_yaml) from exc
    fixtures = stage.fixtures
    if fixtures is not None and not fixtures.is_absolute():
        fixtures = folder / fixtures
    elif fixtures is None and (folder / "fixtures").is_dir():
        fixtures = folder / "fixtures"
    check_termination(stage.termination, path=stage_yaml, doc=doc, prefix=("termination",))
    return attrs.evolve(
        stage,
        prompt=prompt,
        fixtures=fixtures.resolve() if fixtures else None,
        source=folder.resolve(),
    )


def _split_commands(values: dict[str, Any], *, doc: Any, path: Path, prefix: KeyPath = ()) -> None:
    """Split string-valued ``command`` and ``termination.queue_command`` into argvs in place."""
    targets: list[tuple[dict[str, Any], str, KeyPath]] = [(values, "command", (*prefix, "command"))]
    term = values.get("termination")
    if isinstance(term, Mapping):
        term = dict(term)
        values["termination"] = term
        targets.append((term, "queue_command", (*prefix, "termination", "queue_command")))
    for mapping, key, keypath in targets:
        if key in mapping:
            try:
                mapping[key] = split_command(mapping[key])
            except _BadValue as exc:
                line, col = locate(doc, keypath)
                raise ConfigError(
                    str(exc), path=path, line=line, column=col, field=_dotted(keypath)
                ) from None


def check_termination(term: Termination, *, path: Path | None, doc: Any, prefix: KeyPath) -> None:
    """Reject counts that make no sense; a plugin's termination type is checked when it runs."""
    for field in ("iterations", "max", "min_iterations", "consensus"):
        value = getattr(term, field)
        if value is not None and value < 1:
            line, col = locate(doc, (*prefix, field))
            raise ConfigError(
                f"must be at least 1, got {value}",
                path=path,
                line=line,
                column=col,
                field=_dotted((*prefix, field)),
            )


# --------------------------------------------------------------------------- run files


def dump_pipeline(pipeline: Pipeline) -> str:
    """Serialise a resolved pipeline for the run directory (prompts included).

    Written as JSON, which is also YAML: every character of a prompt survives the round
    trip exactly (YAML would fold some line-break characters), and reading it back on
    resume needs no YAML parser.
    """
    data = {"format": "looprunner/resolved-pipeline/1", **converter.unstructure(pipeline)}
    return json.dumps(_plain_data(data), indent=2) + "\n"


def _plain_data(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain_data(v) for v in value]
    return value


def load_resolved_pipeline(path: Path) -> Pipeline:
    """Read back the pipeline a session was started with."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("file not found", path=path, code="LR001") from None
    except ValueError:
        data = None  # written by hand, or by an older version: read it as YAML
    if isinstance(data, dict):
        data.pop("format", None)
        return structure_from(data, Pipeline, path=path, doc=None)
    doc = read_yaml(path)
    data = dict(expect_mapping(doc, path=path, what="a resolved pipeline"))
    data.pop("format", None)
    return structure_from(data, Pipeline, path=path, doc=doc)


def state_to_json(state: RunState) -> str:
    """Serialise run state as ``state.json`` text."""
    return json.dumps(converter.unstructure(state), indent=2) + "\n"


def state_from_json(text: str) -> RunState:
    """Parse ``state.json`` text (raises ValueError on a malformed file)."""
    try:
        return converter.structure(json.loads(text), RunState)
    except Exception as exc:
        raise ValueError(f"malformed state: {exc}") from exc


def event_to_json(event: Event) -> str:
    """Serialise one event as a single JSON line (no newline)."""
    return json.dumps(converter.unstructure(event), separators=(",", ":"))


def event_from_dict(data: Mapping[str, Any]) -> Event:
    """Build an event from a parsed line."""
    return converter.structure(data, Event)


def agent_status_from_dict(data: Any) -> AgentStatus:
    """Structure a parsed ``status.json``; raise ValueError with a readable reason.

    Besides the ``decision`` format, loop-agents' result format is understood: with no
    ``decision``, ``signals.plateau_suspected: true`` means ``stop`` and false means
    ``continue``. Keys looprunner does not use are ignored.
    """
    if (
        isinstance(data, Mapping)
        and "decision" not in data
        and isinstance(data.get("signals"), Mapping)
    ):
        plateau = data["signals"].get("plateau_suspected")
        if isinstance(plateau, bool):
            data = {
                **data,
                "decision": "stop" if plateau else "continue",
                "reason": data.get("reason") or str(data["signals"].get("notes") or ""),
            }
    if isinstance(data, Mapping):
        known = {a.name for a in attrs.fields(AgentStatus)}
        data = {k: v for k, v in data.items() if k in known}
        if isinstance(data.get("errors"), str):
            data["errors"] = [data["errors"]]  # one error written as a string, not a list
    try:
        return converter.structure(data, AgentStatus)
    except Exception as exc:
        leaves = list(_walk(exc, ()))
        if leaves:
            keypath, leaf = leaves[0]
            where = _dotted(keypath) or "status"
            if isinstance(leaf, KeyError):
                raise ValueError(f"missing key {leaf.args[0]!r}") from None
            if isinstance(leaf, ForbiddenExtraKeysError):
                raise ValueError(f"{where}: unknown key {sorted(leaf.extra_fields)[0]!r}") from None
            raise ValueError(f"{where}: {leaf}") from None
        raise ValueError(str(exc)) from None


def unstructure(value: Any) -> Any:
    """Turn a model into plain data (for ``--json`` output)."""
    return converter.unstructure(value)


def structure(data: Any, cls: type[T]) -> T:
    """Build a model from plain data."""
    return converter.structure(data, cls)


__all__ = [
    "ConfigError",
    "Node",
    "converter",
    "dump_pipeline",
    "load_resolved_pipeline",
    "load_stage_file",
    "locate",
    "read_yaml",
    "state_from_json",
    "state_to_json",
    "structure_from",
]
