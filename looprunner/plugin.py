"""Everything a plugin author needs, in one module.

A plugin imports from here and nowhere else in looprunner: the hook marker, the protocols
its classes implement, the data they receive and return, and the errors they raise (and,
for its tests, :func:`make_plugin_manager` and :class:`Registries`). The
rest of the package is private and may change between versions; this module's names
will not without a deprecation.

>>> from looprunner.plugin import hookimpl, StageType, AgentStatus, IterationContext
"""

from __future__ import annotations

from looprunner.errors import (
    AgentFailed,
    BackendError,
    BackendUnreachableError,
    ConfigError,
    LooprunnerError,
    PluginError,
    ProviderError,
    SessionConflictError,
    SessionError,
)
from looprunner.models import (
    AgentCommand,
    AgentPaths,
    AgentRun,
    AgentStatus,
    Branch,
    BranchResult,
    Decision,
    Event,
    Health,
    Invocation,
    IterationContext,
    IterationPaths,
    IterationResult,
    Node,
    ParallelInput,
    Pipeline,
    Problem,
    RunError,
    RunState,
    SessionStatus,
    Stage,
    StageResult,
    Termination,
)
from looprunner.plugins.hookspecs import hookimpl
from looprunner.plugins.manager import make_plugin_manager
from looprunner.plugins.registry import FolderRegistry, Registries, Registry
from looprunner.protocols import (
    Attachable,
    Backend,
    LaunchChecking,
    LaunchSpec,
    MachineChecking,
    NestedStages,
    OutputCapturing,
    Provider,
    QueueCounting,
    SessionAges,
    SessionView,
    StageProgress,
    StageType,
    StageValidating,
    TerminationStrategy,
)

__all__ = [
    "AgentCommand",
    "AgentFailed",
    "AgentPaths",
    "AgentRun",
    "AgentStatus",
    "Attachable",
    "Backend",
    "BackendError",
    "BackendUnreachableError",
    "Branch",
    "BranchResult",
    "ConfigError",
    "Decision",
    "Event",
    "FolderRegistry",
    "Health",
    "Invocation",
    "IterationContext",
    "IterationPaths",
    "IterationResult",
    "LaunchChecking",
    "LaunchSpec",
    "LooprunnerError",
    "MachineChecking",
    "NestedStages",
    "Node",
    "OutputCapturing",
    "ParallelInput",
    "Pipeline",
    "PluginError",
    "Problem",
    "Provider",
    "ProviderError",
    "QueueCounting",
    "Registries",
    "Registry",
    "RunError",
    "RunState",
    "SessionAges",
    "SessionConflictError",
    "SessionError",
    "SessionStatus",
    "SessionView",
    "Stage",
    "StageProgress",
    "StageResult",
    "StageType",
    "StageValidating",
    "Termination",
    "TerminationStrategy",
    "hookimpl",
    "make_plugin_manager",
]
