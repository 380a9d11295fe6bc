"""Checking stage and pipeline definitions before anything runs.

Each finding has a stable rule code, a severity and, where there is one, the file, line
and column. Errors make ``looprunner lint`` exit 2; warnings never fail it.

| code  | severity | what |
| ----- | -------- | ---- |
| LR001 | error    | the file cannot be read or is not valid YAML |
| LR002 | error    | a key is unknown, missing or has a value of the wrong type |
| LR010 | error    | a pipeline names a stage that does not exist |
| LR011 | warning  | a stage folder has no stage.yaml, so it is not a stage |
| LR012 | error    | the prompt file is missing |
| LR020 | error    | two nodes share an id |
| LR021 | error    | ``inputs.from``/``from_parallel`` name what no earlier node has |
| LR030 | warning  | the prompt uses a ``${VARIABLE}`` looprunner does not set |
| LR031 | warning  | a ``judgment`` termination without ``consensus`` (2 is used) |
| LR032 | error    | an unknown provider |
| LR033 | error    | an unknown termination type |
| LR034 | error    | an unknown stage type, or ``options:`` the type refuses |
| LR035 | error    | a model or setting the stage's provider refuses |
| LR040 | error    | a loop-agents key looprunner does not run (the message says what instead) |
| LR041 | warning  | a deprecated loop-agents spelling, read as the spelling the message names |

Every problem of a file is reported, not only the first: a pipeline file's nodes are
each read, and the stages of those that loaded are checked too.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import attrs

from looprunner import convert
from looprunner.backend_settings import options_of
from looprunner.builtin.defaults import STAGE_TYPE
from looprunner.definitions import catalog
from looprunner.definitions.pipelines import PipelineRead, list_pipelines, read_pipeline
from looprunner.engine.prompt import unknown_variables
from looprunner.errors import ConfigError, LegacyPipelineWarning, LooprunnerError
from looprunner.models import Stage
from looprunner.plugins.registry import Registries
from looprunner.protocols import NestedStages, StageValidating


@attrs.frozen
class Finding:
    """One problem found in a definition."""

    code: str
    severity: str  # "error" | "warning"
    message: str
    path: str | None = None
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        where = self.path or "-"
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.code} {self.severity}: {self.message}"


@attrs.frozen
class LintReport:
    """Every finding, and what was checked."""

    findings: tuple[Finding, ...]
    checked: tuple[str, ...]

    @property
    def errors(self) -> int:
        """How many findings are errors."""
        return sum(1 for f in self.findings if f.severity == "error")

    @property
    def warnings(self) -> int:
        """How many findings are warnings."""
        return sum(1 for f in self.findings if f.severity == "warning")


def _from_error(exc: ConfigError) -> list[Finding]:
    """One finding per problem the error reports."""
    return [
        Finding(
            code=problem.code,
            severity="error",
            message=f"{problem.field}: {problem.detail}" if problem.field else problem.detail,
            path=str(problem.path) if problem.path else None,
            line=problem.line,
            column=problem.column,
        )
        for problem in exc.problems
    ]


@contextlib.contextmanager
def _legacy_findings(findings: list[Finding]) -> Iterator[None]:
    """Record each deprecated loop-agents spelling met while loading as an LR041 warning."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LegacyPipelineWarning)
        yield
    for item in caught:
        warning = item.message
        if isinstance(warning, LegacyPipelineWarning):
            findings.append(
                Finding(
                    "LR041",
                    "warning",
                    warning.detail,
                    str(warning.path) if warning.path else None,
                    warning.line,
                    warning.column,
                )
            )
        else:  # not ours to judge: let it go on as it would have
            warnings.warn_explicit(
                item.message, item.category, item.filename, item.lineno, source=item.source
            )


def check_stage(stage: Stage, registries: Registries, *, where: str | None) -> Iterator[Finding]:
    """Yield findings about a loaded stage: prompt variables, provider, termination."""
    for name in unknown_variables(stage.prompt):
        yield Finding(
            "LR030",
            "warning",
            f"prompt uses ${{{name}}}, which looprunner does not set (left as written)",
            where,
        )
    term = stage.termination
    if term.type == "judgment" and term.consensus is None:
        yield Finding(
            "LR031", "warning", "judgment termination without consensus: 2 is used", where
        )
    if term.type not in registries.terminations.names():
        yield Finding(
            "LR033",
            "error",
            f"unknown termination type {term.type!r} "
            f"(available: {', '.join(registries.terminations.names())})",
            where,
        )
    else:
        try:
            registries.terminations.get(term.type)(term).validate()
        except ConfigError as exc:
            yield Finding("LR002", "error", exc.detail, where)
    yield from _check_stage_type(stage, registries, where=where)
    # Whether the provider's program is installed is a fact about the machine, not the
    # definition: ``dry-run`` and ``start`` report it.
    if stage.provider_name not in registries.providers:
        yield Finding(
            "LR032",
            "error",
            f"unknown provider {stage.provider_name!r} "
            f"(available: {', '.join(registries.providers.names())})",
            where,
        )
        return
    provider = registries.providers.get(stage.provider_name)()
    if isinstance(provider, StageValidating):
        try:
            provider.validate(stage)
        except ConfigError as exc:
            yield Finding("LR035", "error", exc.detail, where)


def _check_stage_type(
    stage: Stage, registries: Registries, *, where: str | None
) -> Iterator[Finding]:
    """Yield LR034 when the stage's type is unknown or refuses the stage's options."""
    name = stage.type or STAGE_TYPE
    if name not in registries.stage_types:
        yield Finding(
            "LR034",
            "error",
            f"unknown stage type {name!r} (available: {', '.join(registries.stage_types.names())})",
            where,
        )
        return
    try:
        built = registries.stage_types.get(name)(stage)
        built.validate()
        nested = built.nested_stages() if isinstance(built, NestedStages) else []
    except LooprunnerError as exc:
        detail = exc.detail if isinstance(exc, ConfigError) else exc.message
        yield Finding("LR034", "error", f"stage type {name!r}: {detail}", where)
        return
    for inner in nested:  # a parallel block's stages, once per provider
        inner_yaml = inner.source / catalog.STAGE_FILE if inner.source else None
        inner_where = str(inner_yaml) if inner_yaml and inner_yaml.is_file() else where
        yield from check_stage(inner, registries, where=inner_where)


def lint_stage_folder(folder: Path, registries: Registries) -> list[Finding]:
    """Lint one stage folder."""
    stage_yaml = folder / catalog.STAGE_FILE
    if not stage_yaml.is_file():
        return [
            Finding(
                "LR011",
                "warning",
                f"{folder} has no {catalog.STAGE_FILE}: not a stage",
                str(folder),
            )
        ]
    findings: list[Finding] = []
    stage: Stage | None = None
    with _legacy_findings(findings):
        try:
            stage = catalog.load_stage(folder, project=folder)
        except ConfigError as exc:
            findings.extend(_from_error(exc))
    if stage is not None:
        findings.extend(check_stage(stage, registries, where=str(stage_yaml)))
    return findings


def lint_pipeline_file(path: Path, project: Path, registries: Registries) -> list[Finding]:
    """Lint one pipeline file: every problem of it, and of the stages its nodes load."""
    findings: list[Finding] = []
    read: PipelineRead | None = None
    with _legacy_findings(findings):
        try:
            read = read_pipeline(path, project=project)
        except ConfigError as exc:
            findings.extend(_from_error(exc))
    if read is None:
        return findings
    if read.error is not None:
        findings.extend(_from_error(read.error))
    for node in read.nodes:
        source = node.stage.source
        stage_yaml = source / catalog.STAGE_FILE if source else None
        where = str(stage_yaml) if stage_yaml and stage_yaml.is_file() else str(path)
        findings.extend(check_stage(node.stage, registries, where=where))
    if read.pipeline is not None and read.pipeline.backends:
        findings.extend(_check_backends(read.path, read.pipeline.backends, registries))
    return findings


def _check_backends(
    path: Path, backends: Mapping[str, Mapping[str, str]], registries: Registries
) -> Iterator[Finding]:
    """Yield LR036 for an option its backend does not have, LR037 for a backend not here.

    ``start`` refuses the first only on the backend it launches on; lint names every one,
    at its line.
    """
    doc = convert.read_yaml(path)
    installed = registries.backends.names()
    for name, options in backends.items():
        if name not in registries.backends:
            line, column = convert.locate(doc, ("backends", name), key=True)
            yield Finding(
                "LR037",
                "warning",
                f"backends.{name}: no backend {name!r} is installed here, so its options are "
                f"not checked (installed: {', '.join(installed)})",
                str(path),
                line,
                column,
            )
            continue
        declared = sorted(option.name for option in options_of(registries.backends.get(name)))
        for option in options:
            if option not in declared:
                line, column = convert.locate(doc, ("backends", name, option), key=True)
                yield Finding(
                    "LR036",
                    "error",
                    f"backends.{name}.{option}: backend {name!r} has no option {option!r} "
                    f"(its options: {', '.join(declared) or 'none'})",
                    str(path),
                    line,
                    column,
                )


def _project_of(path: Path) -> Path:
    """Return the project a definition file belongs to (above scripts/ or .looprunner/)."""
    for parent in path.parents:
        if parent.name in ("scripts", ".looprunner", ".claude"):
            return parent.parent
    return path.parent


def lint(target: Path, *, project: Path, registries: Registries) -> LintReport:
    """Lint a stage folder, a pipeline file, or (a folder) every definition in a project."""
    target = target.expanduser().resolve()
    findings: list[Finding] = []
    checked: list[str] = []
    if target.is_file() and target.name == catalog.STAGE_FILE:
        target = target.parent
    if target.is_file():
        checked.append(str(target))
        findings.extend(lint_pipeline_file(target, _project_of(target), registries))
    elif (target / catalog.STAGE_FILE).is_file():
        checked.append(str(target))
        findings.extend(lint_stage_folder(target, registries))
    elif target.is_dir():
        root = target
        for ref in catalog.iter_stages(root):
            if ref.origin == "builtin":
                continue
            checked.append(str(ref.path))
            findings.extend(lint_stage_folder(ref.path, registries))
        for pref in list_pipelines(root):
            checked.append(str(pref.path))
            findings.extend(lint_pipeline_file(pref.path, root, registries))
    else:
        raise ConfigError(f"nothing to lint at {target}", code="LR001")
    return LintReport(findings=tuple(_unique(findings)), checked=tuple(checked))


def _unique(findings: Iterable[Finding]) -> Iterator[Finding]:
    seen: set[Finding] = set()
    for finding in findings:
        if finding not in seen:
            seen.add(finding)
            yield finding
