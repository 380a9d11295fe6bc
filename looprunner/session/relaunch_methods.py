"""What :class:`~looprunner.session.Session` offers to launch a session again: resume, restart.

Mixed into ``Session`` (the façade stays small), with the choice of the backend every
launch shares: by name or as an object, set with its options (see
:mod:`looprunner.session.backend_options`); the work is in
:mod:`looprunner.session.control` and :mod:`looprunner.session.restart`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from looprunner.backend_settings import Configurable
from looprunner.builtin.defaults import BACKEND as DEFAULT_BACKEND
from looprunner.protocols import Backend, InProcess
from looprunner.session import backend_options as options_module

if TYPE_CHECKING:
    from typing import Self

    from looprunner.models import Pipeline
    from looprunner.protocols import LaunchSpec
    from looprunner.session.ref import SessionRef


class RelaunchMethods:
    """Resume and restart, and choosing the backend of a launch."""

    _ref: SessionRef
    _in_process: InProcess | None
    _launched_on: str

    def _make_engine(self, spec: LaunchSpec) -> Any:  # the façade's
        raise NotImplementedError

    def _runner(
        self,
        backend: str | Backend,
        given: Mapping[str, str] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        recorded: Mapping[str, str] | None = None,
        pipeline: Pipeline | None = None,
    ) -> Backend:
        """Return the backend of a launch, set with the options that apply to it.

        Raises ``UsageError`` (exit 2) for an option the backend does not have, before
        anything changes.
        """
        plugins = self._ref.plugins
        plain = plugins.backend(backend) if isinstance(backend, str) else backend
        environ = os.environ if env is None else env
        chosen = options_module.resolve(
            plain, self._ref.project, given, environ, recorded, pipeline
        )
        if isinstance(backend, str):
            runner = plugins.backend(backend, chosen)
        else:
            runner = backend
            if chosen and isinstance(runner, Configurable):
                runner.configure(chosen)
            plugins.adopt(runner, chosen)
        if isinstance(runner, InProcess):
            self._in_process = runner
        self._launched_on = runner.name
        self._ref.launch_options = chosen
        return runner

    def _relaunch_runner(
        self,
        backend: str | Backend | None,
        given: Mapping[str, str] | None,
        env: Mapping[str, str] | None,
    ) -> Backend:
        """Return the backend of a resume or restart: as recorded, unless told otherwise."""
        was = self._ref.backend_name(self._ref.read_state()) or DEFAULT_BACKEND
        chosen = backend or was
        same = (chosen if isinstance(chosen, str) else chosen.name) == was
        recorded = self._ref.backend_options() if same else None
        return self._runner(chosen, given, env=env, recorded=recorded)

    def resume(
        self,
        *,
        backend: str | Backend | None = None,
        background: bool = False,
        env: Mapping[str, str] | None = None,
        backend_options: Mapping[str, str] | None = None,
    ) -> Self:
        """Continue a crashed, failed or killed session from its last completed iteration.

        Runs on the backend it recorded, set as it was, unless another backend or other
        ``backend_options`` are given. The interrupted iteration's leftovers are cleared
        and it runs again; completed iterations are never repeated.

        Raises
        ------
        SessionConflictError
            If the session is running, or a backend session without an engine is in the way.
        SessionError
            If the session already completed, or its health cannot be known.
        """
        from looprunner.session import control

        self._ref.refuse_kept("resumed")
        runner = self._relaunch_runner(backend, backend_options, env)
        control.resume(
            self._ref,
            runner,
            env=env,
            engine_factory=self._make_engine,
            background=background,
        )
        return self

    def restart(
        self,
        *,
        backend: str | Backend | None = None,
        background: bool = False,
        env: Mapping[str, str] | None = None,
        backend_options: Mapping[str, str] | None = None,
    ) -> Self:
        """Start this finished (or crashed) session again with the pipeline it ran.

        Its recorded ``pipeline.yaml``, on its recorded backend (set as it was) unless
        another is given; the old run moved aside as ``start(force=True)`` does. Raises
        :class:`SessionConflictError` if it is live, :class:`SessionError` if its run
        recorded no ``pipeline.yaml``.
        """
        from looprunner.session import restart

        self._ref.refuse_kept("restarted")
        runner = self._relaunch_runner(backend, backend_options, env)
        restart.restart(
            self._ref, runner, env=env, engine_factory=self._make_engine, background=background
        )
        return self
