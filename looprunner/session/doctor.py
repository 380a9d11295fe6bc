"""``looprunner doctor``: what this machine can run, and which of the project's stages.

Every backend and provider is asked through the ``Diagnosing`` ability (plugins answer
for their own); every stage and pipeline of the project is checked as ``start`` would
check it, so a stage that could not run is named with the reason ``start`` would give.
Nothing is started and nothing is written.
"""

from __future__ import annotations

import getpass
import os
import platform
from collections.abc import Iterator, Mapping
from pathlib import Path

import attrs

from looprunner._version import __version__
from looprunner.errors import LooprunnerError
from looprunner.models import Check, Pipeline
from looprunner.protocols import Diagnosing
from looprunner.session import backend_options, launch
from looprunner.session.ref import Plugins, SessionRef

#: the kinds of check whose failure makes ``doctor`` exit 1: a definition that cannot run
BLOCKING = ("stage", "pipeline", "backend")


@attrs.frozen
class DoctorReport:
    """Every check, in order: machine, backends, providers, plugins, stages, pipelines."""

    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        """False when a stage or pipeline of the project, or the default backend, cannot run."""
        return all(c.ok for c in self.checks if c.kind in BLOCKING)


def diagnose(project: Path, plugins: Plugins, env: Mapping[str, str]) -> DoctorReport:
    """Look at this machine and the project; see the module docstring."""
    return DoctorReport(
        checks=(
            *_machine(project),
            *_backends(plugins, env, project),
            *_providers(plugins, env),
            *_plugins(plugins),
            *_definitions(project, plugins),
        )
    )


def _machine(project: Path) -> Iterator[Check]:
    user = getpass.getuser() if hasattr(os, "geteuid") else "?"
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    notes = (
        ("running as root: agents run with root's rights over the project and the machine",)
        if root
        else ()
    )
    yield Check(
        "machine",
        "looprunner",
        True,
        f"looprunner {__version__}, Python {platform.python_version()}, user {user}",
        version=__version__,
        notes=notes,
    )
    writable = os.access(project, os.W_OK)
    yield Check(
        "machine",
        "project",
        writable,
        f"{project}" + ("" if writable else ": not writable, so no session can start here"),
    )


def _backends(plugins: Plugins, env: Mapping[str, str], project: Path) -> Iterator[Check]:
    """Check each backend as ``start`` here would set it.

    Its options come from their variables, then the project's ``.looprunner/config.yaml``:
    a cluster named only in the project's settings is the one asked.
    """
    registries = plugins.registries
    for name in registries.backends.names():
        try:
            plain = plugins.backend(name)
            options = backend_options.resolve(plain, project, None, env)
            backend = plugins.backend(name, options) if options else plain
        except LooprunnerError as exc:
            yield Check("backend", name, False, exc.message)
            continue
        if isinstance(backend, Diagnosing):
            yield backend.diagnose(env)
        else:
            owner = registries.backends.owner(name)
            yield Check("backend", name, True, f"registered by {owner}; no program to check")


def _providers(plugins: Plugins, env: Mapping[str, str]) -> Iterator[Check]:
    registries = plugins.registries
    for name in registries.providers.names():
        provider = registries.providers.get(name)()
        if isinstance(provider, Diagnosing):
            check = provider.diagnose(env)
            # a missing program matters only to the stages that use it (checked below)
            yield attrs.evolve(check, kind="provider")
        else:
            owner = registries.providers.owner(name)
            yield Check("provider", name, True, f"registered by {owner}; no program to check")


def _plugins(plugins: Plugins) -> Iterator[Check]:
    from looprunner.plugins.manager import plugin_info

    for row in plugin_info(plugins.pm):
        dist = (
            f"{row['distribution']} {row['version'] or ''}".strip() if row["distribution"] else ""
        )
        adds = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in row["registers"].items())
        yield Check("plugin", row["name"], True, ", ".join(p for p in (dist, adds) if p))


def _definitions(project: Path, plugins: Plugins) -> Iterator[Check]:
    from looprunner.definitions import catalog
    from looprunner.definitions.pipelines import list_pipelines, load_pipeline

    ref = SessionRef("doctor", project, plugins)
    for stage_ref in catalog.list_stages(project):
        if stage_ref.problem:  # a folder that is not a stage stops nothing from running
            yield Check(
                "stage",
                stage_ref.name,
                True,
                f"{stage_ref.path}: skipped",
                notes=(stage_ref.problem,),
            )
            continue
        try:
            stage = catalog.load_stage(stage_ref.path, project=project)
            launch.check(ref, Pipeline.loop(stage))
        except LooprunnerError as exc:
            yield Check("stage", stage_ref.name, False, exc.message)
        else:
            yield Check("stage", stage_ref.name, True, f"{stage_ref.origin}: {stage_ref.path}")
    for pipeline_ref in list_pipelines(project):
        try:
            launch.check(ref, load_pipeline(pipeline_ref.path, project=project))
        except LooprunnerError as exc:
            yield Check("pipeline", pipeline_ref.name, False, exc.message)
        else:
            yield Check("pipeline", pipeline_ref.name, True, str(pipeline_ref.path))
