"""The one cattrs converter, and turning its errors into ones that say where.

The converter runs in detailed-validation mode with hooks that refuse what YAML would
otherwise slip through (``true`` as a count, ``'10'`` as a number). :func:`structure_from`
turns every problem cattrs reports into a :class:`ConfigError` naming the file,
line, column and key path: ``stage.yaml:4:15: termination.iterations: expected an
integer, got 'five'``.
"""

from __future__ import annotations

import enum
import shlex
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

import attrs
import cattrs
from cattrs.errors import (
    AttributeValidationNote,
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)
from cattrs.gen import make_dict_structure_fn, make_mapping_structure_fn

from looprunner.convert.yaml import KeyPath, describe, dotted, locate, plain_data
from looprunner.errors import ConfigError, combine_problems
from looprunner.models import (
    Budget,
    Decision,
    Health,
    JudgeSpec,
    NodeInputs,
    Retry,
    RunStatus,
    Termination,
)

T = TypeVar("T")


class BadValue(ValueError):
    """A value of the wrong type; its message is shown to the user as it is."""


def _structure_int(value: object, _: type) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadValue(f"expected an integer, got {describe(value)}")
    return value


def _structure_float(value: object, _: type) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadValue(f"expected a number, got {describe(value)}")
    return float(value)


def _structure_str(value: object, _: type) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise BadValue(f"expected a string, got {describe(value)}")
    return str(value)


def _structure_bool(value: object, _: type) -> bool:
    if not isinstance(value, bool):
        raise BadValue(f"expected true or false, got {describe(value)}")
    return value


def _structure_strings(value: object, _: type) -> tuple[str, ...]:
    if isinstance(value, list | tuple) and all(
        isinstance(v, str | int | float) and not isinstance(v, bool) for v in value
    ):
        return tuple(str(v) for v in value)
    raise BadValue(f"expected a list of strings, got {describe(value)}")


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
        raise BadValue(f"cannot split command {value!r}: {exc}") from exc
    if not parts:
        raise BadValue("the command is empty")
    return parts


def _structure_path(value: object, _: type) -> Path:
    if not isinstance(value, str):
        raise BadValue(f"expected a path, got {describe(value)}")
    return Path(value)


def _structure_decision(value: object, _: type) -> Decision:
    try:
        return Decision(str(value))
    except ValueError:
        choices = ", ".join(d.value for d in Decision)
        raise BadValue(f"expected one of {choices}, got {describe(value)}") from None


def _structure_enum(value: object, cls: type[enum.Enum]) -> enum.Enum:
    try:
        return cls(value)
    except ValueError:
        choices = ", ".join(str(m.value) for m in cls)
        raise BadValue(f"expected one of {choices}, got {describe(value)}") from None


def _structure_literal(value: object, cls: Any) -> object:
    choices = get_args(cls)
    for choice in choices:
        if value == choice and type(value) is type(choice):
            return choice
    listed = ", ".join(str(c) for c in choices)
    raise BadValue(f"expected one of {listed}, got {describe(value)}")


def _mapping_only(hook: Callable[[Any, Any], T]) -> Callable[[Any, Any], T]:
    """Wrap a hook so a scalar or list gets a plain "expected a mapping" error.

    Without it cattrs would look keys up in a string (``"x" in "claude"``) or fail with
    an AttributeError the user cannot act on.
    """

    def structure(value: Any, cls: Any) -> T:
        if not isinstance(value, Mapping):
            raise BadValue(f"expected a mapping, got {describe(value)}")
        return hook(value, cls)

    return structure


def _is_literal(cls: Any) -> bool:
    origin: object = get_origin(cls)  # typed as object: mypy thinks Literal cannot be one
    return origin is Literal


def _is_mapping(cls: Any) -> bool:
    return get_origin(cls) in (dict, Mapping, MutableMapping)


def _mapping_hook(conv: cattrs.Converter, cls: Any) -> Callable[[Any, Any], Any]:
    """Structure a mapping type; free-form values (``Any``) become plain dicts and lists."""
    # not conv.gen_structure_mapping: that registers its own hook for the type, which
    # would then take the place of this one
    inner = make_mapping_structure_fn(cls, conv, structure_to=dict)
    return _mapping_only(lambda value, t: plain_data(inner(value, t)))


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
    conv.register_structure_hook_func(_is_literal, _structure_literal)
    conv.register_structure_hook_factory(_is_mapping, lambda t: _mapping_hook(conv, t))
    conv.register_structure_hook_factory(
        attrs.has, lambda cls: _mapping_only(make_dict_structure_fn(cls, conv))
    )
    return conv


converter = _make_converter()


def refuse_unknown_keys(*classes: type) -> None:
    """Structure ``classes`` refusing keys they do not have.

    Hand-written files are checked for unknown keys (a typo must not silently change
    behaviour); files looprunner writes itself are read leniently across versions.
    """
    for cls in classes:
        converter.register_structure_hook(
            cls,
            _mapping_only(make_dict_structure_fn(cls, converter, _cattrs_forbid_extra_keys=True)),
        )


refuse_unknown_keys(Termination, JudgeSpec, NodeInputs, Budget, Retry)


def unstructure(value: Any) -> Any:
    """Turn a model into plain data (for ``--json`` output)."""
    return converter.unstructure(value)


def structure(data: Any, cls: type[T]) -> T:
    """Build a model from plain data."""
    return converter.structure(data, cls)


# --------------------------------------------------------------------------- errors


def leaf_errors(exc: BaseException, path: KeyPath) -> Iterator[tuple[KeyPath, BaseException]]:
    """Yield each problem inside a cattrs error with the key path where it happened."""
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
            yield from leaf_errors(inner, (*path, step))
        for inner in without:
            yield from leaf_errors(inner, path)
    elif isinstance(exc, BaseExceptionGroup):
        for member in exc.exceptions:
            yield from leaf_errors(member, path)
    else:
        yield path, exc


def structure_from(
    data: Any, cls: type[T], *, path: Path | None, doc: Any, prefix: KeyPath = ()
) -> T:
    """Structure ``data`` into ``cls``; every problem becomes a located ConfigError.

    ``doc`` is the YAML document ``data`` came from (for line numbers) and ``prefix`` the
    key path of ``data`` inside it. Several problems (two unknown keys, a bad value
    beside them) are raised together as one error reporting each.
    """
    try:
        return converter.structure(data, cls)
    except Exception as exc:
        raise config_error(exc, path=path, doc=doc, prefix=prefix) from None


def config_error(
    exc: BaseException, *, path: Path | None, doc: Any, prefix: KeyPath = ()
) -> ConfigError:
    """Return every problem in a structuring error as one located ConfigError."""
    combined = combine_problems(config_errors(exc, path=path, doc=doc, prefix=prefix))
    return combined if combined is not None else ConfigError(str(exc), path=path)


def config_errors(
    exc: BaseException, *, path: Path | None, doc: Any, prefix: KeyPath = ()
) -> list[ConfigError]:
    """Return each problem in a structuring error as a located ConfigError of its own."""
    found: list[ConfigError] = []
    for keypath, leaf in leaf_errors(exc, prefix):
        if isinstance(leaf, ForbiddenExtraKeysError):
            known = ", ".join(sorted(a.name for a in attrs.fields(leaf.cl)))
            for extra in sorted(leaf.extra_fields):
                full = (*keypath, extra)
                line, col = locate(doc, full, key=True)
                found.append(
                    ConfigError(
                        f"unknown key {extra!r} (known: {known})",
                        path=path,
                        line=line,
                        column=col,
                        field=dotted(full),
                    )
                )
            continue
        if isinstance(leaf, KeyError):
            missing = str(leaf.args[0]) if leaf.args else "?"
            line, col = locate(doc, keypath)
            found.append(
                ConfigError(
                    f"missing required key {missing!r}",
                    path=path,
                    line=line,
                    column=col,
                    field=dotted(keypath) or None,
                )
            )
            continue
        line, col = locate(doc, keypath)
        if isinstance(leaf, ConfigError):
            message = leaf.detail
        elif isinstance(leaf, BadValue):
            message = str(leaf)
        else:
            message = f"invalid value ({type(leaf).__name__}: {leaf})"
        found.append(
            ConfigError(message, path=path, line=line, column=col, field=dotted(keypath) or None)
        )
    return found
