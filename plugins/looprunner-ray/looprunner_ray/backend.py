"""The backend ``ray``: each session's engine runs as a Ray job.

What it holds for a session is the session's Ray jobs (see :mod:`looprunner_ray.jobs`)
and, during a launch only, a marker file in ``PROJECT/.looprunner-ray/`` that proves the
job's node sees the project. Everything else (lock, state, events, engine.log) is the
engine's own, in the project, as with tmux.

The job's entrypoint is a shell string (Ray runs it with ``sh -c``): it is built with
:func:`shlex.join` from argv alone, so nothing in it is interpreted. The environment
goes to the engine through looprunner's handoff *file* (``handoff = "file"``): the
engine may run on any node, and a FIFO reaches no other kernel. The file is 0600, in
the run directory on the shared storage, and the engine removes it first thing; never
is the environment put in the job: its ``runtime_env`` carries ``PYTHONPATH`` only (so
the node imports the same plugins), and its metadata names the project and session,
nothing more.
"""

from __future__ import annotations

import os
import secrets
import shlex
import shutil
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from looprunner.plugin import (
    BackendError,
    BackendOption,
    BackendUnreachableError,
    Check,
    LaunchSpec,
    SessionConflictError,
)

from looprunner_ray import jobs

FOLDER = ".looprunner-ray"
#: how long ``launch`` waits for the job to reach its node and see the marker (seconds)
LAUNCH_TIMEOUT_ENV = "LOOPRUNNER_RAY_LAUNCH_TIMEOUT"
DEFAULT_LAUNCH_TIMEOUT = 120.0
#: entrypoint resources: CPUs (a number) and memory (bytes) reserved for the engine
NUM_CPUS_ENV = "LOOPRUNNER_RAY_NUM_CPUS"
MEMORY_ENV = "LOOPRUNNER_RAY_MEMORY"
#: how long ``stop`` waits for a stopped job to end (Ray sends SIGKILL after 3 s)
STOP_TIMEOUT = 30.0
#: what Ray answers while a node's job agent is still starting (worth another try)
AGENT_NOT_READY = "No available agent"


def _number(name: str, kind: type[float] | type[int]) -> float | int | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value = kind(raw)
    except ValueError:
        raise BackendError(f"ray: {name}={raw!r} is not a number") from None
    if value <= 0:
        raise BackendError(f"ray: {name}={raw!r} must be greater than 0")
    return value


def _tail(submission_id: str, where: str | None, lines: int = 5) -> str:
    try:
        text = str(jobs.client(where).get_job_logs(submission_id))
    except Exception:  # the logs are a courtesy in an error message
        return "no output"
    kept = [line for line in text.splitlines() if line.strip()][-lines:]
    return " | ".join(kept) or "no output"


class RayBackend:
    """Runs each engine as a Ray job on the cluster its option ``address`` names."""

    name: ClassVar[str] = "ray"
    #: engines run on whichever node Ray picks: the environment goes through a file
    handoff: ClassVar[str] = "file"
    options: ClassVar[tuple[BackendOption, ...]] = (
        BackendOption(
            "address",
            "--ray-address",
            jobs.ADDRESS_ENV,
            "The Ray cluster's Jobs API address, http://HEAD:8265.",
        ),
    )

    def __init__(self) -> None:
        self._address: str | None = None

    def configure(self, options: Mapping[str, str]) -> None:
        """Use the cluster at ``options["address"]`` for every call (else ``RAY_ADDRESS``)."""
        self._address = options.get("address") or None

    # ------------------------------------------------------------------ launch

    def check_launch(self, session: str, project: Path) -> None:
        """Refuse a session that still has a live job (pending or running)."""
        live = [job for job in jobs.list_ours(project, session, self._address) if jobs.is_live(job)]
        if live:
            raise SessionConflictError(
                f"ray: session {session!r} still has the job {live[-1].submission_id} "
                f"({live[-1].status})",
                session=session,
            )

    def launch(self, spec: LaunchSpec) -> None:
        """Submit the engine as a job; return once its node has seen the project."""
        num_cpus = _number(NUM_CPUS_ENV, float)
        memory = _number(MEMORY_ENV, int)
        timeout = _number(LAUNCH_TIMEOUT_ENV, float) or DEFAULT_LAUNCH_TIMEOUT
        previous = jobs.list_ours(spec.project, spec.session, self._address)
        if any(jobs.is_live(job) for job in previous):
            raise SessionConflictError(
                f"ray: session {spec.session!r} already has a live job", session=spec.session
            )
        number = 1 + max(
            (jobs.launch_number(job, spec.project, spec.session) for job in previous), default=0
        )
        submission_id = f"{jobs.prefix(spec.project, spec.session)}{number}"
        folder = spec.project / FOLDER
        folder.mkdir(exist_ok=True)
        marker = folder / f"{submission_id}.marker"
        seen = marker.with_name(marker.name + ".seen")
        token = secrets.token_hex(16)
        marker.write_text(token, encoding="utf-8")
        entrypoint = shlex.join(
            [
                sys.executable,
                "-m",
                "looprunner_ray.entry",
                str(spec.project),
                str(marker),
                token,
                "--",
                *spec.argv,
            ]
        )
        options: dict[str, Any] = {}
        if num_cpus is not None:
            options["entrypoint_num_cpus"] = num_cpus
        if memory is not None:
            options["entrypoint_memory"] = memory
        pythonpath = os.environ.get("PYTHONPATH")
        if pythonpath:
            options["runtime_env"] = {"env_vars": {"PYTHONPATH": pythonpath}}
        try:
            self._submit(
                timeout,
                entrypoint=entrypoint,
                submission_id=submission_id,
                metadata=jobs.metadata(spec.project, spec.session),
                **options,
            )
        except BackendUnreachableError as exc:
            marker.unlink(missing_ok=True)
            raise BackendError(str(exc)) from exc
        except Exception as exc:
            marker.unlink(missing_ok=True)
            if "already exists" in str(exc):
                raise SessionConflictError(
                    f"ray: another launch of {spec.session!r} submitted {submission_id} first",
                    session=spec.session,
                ) from exc
            raise BackendError(f"ray: the cluster refused the job {submission_id}: {exc}") from exc
        try:
            self._wait_seen(submission_id, seen, timeout)
        finally:
            marker.unlink(missing_ok=True)
            seen.unlink(missing_ok=True)

    def _submit(self, timeout: float, **job: Any) -> None:
        """Submit, retrying while the node's job agent is not ready yet (a fresh head)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                jobs.client(self._address).submit_job(**job)
            except Exception as exc:
                if AGENT_NOT_READY not in str(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.5)
            else:
                return

    def _wait_seen(self, submission_id: str, seen: Path, timeout: float) -> None:
        """Wait until the job's entrypoint acknowledged the marker, or fail with its words."""
        deadline = time.monotonic() + timeout
        next_look = time.monotonic() + 1.0
        while not seen.exists():
            now = time.monotonic()
            if now >= deadline:
                self._stop_job(submission_id)
                raise BackendError(
                    f"ray: the job {submission_id} did not start within {timeout:g} s "
                    f"(is the cluster busy? {LAUNCH_TIMEOUT_ENV} sets the wait): "
                    f"{_tail(submission_id, self._address)}"
                )
            if now >= next_look:
                next_look = now + 1.0
                try:
                    status = jobs.client(self._address).get_job_status(submission_id)
                except Exception:
                    status = None
                if status is not None and str(getattr(status, "value", status)) not in (
                    jobs.LIVE_STATES
                ):
                    if seen.exists():
                        return  # the engine ran (and ended) already
                    raise BackendError(
                        f"ray: the job {submission_id} ended before the engine ran: "
                        f"{_tail(submission_id, self._address)}"
                    )
            time.sleep(0.05)

    # ------------------------------------------------------------------ look

    def created(self, project: Path) -> dict[str, float] | None:
        """Return each session with a live job, and when that job began (epoch seconds)."""
        try:
            found = jobs.list_ours(project, None, self._address)
        except BackendUnreachableError:
            return None
        ages: dict[str, float] = {}
        for job in found:
            if jobs.is_live(job):
                started = job.start_time / 1000 if job.start_time else time.time()
                ages[job.metadata[jobs.SESSION_KEY]] = started
        return ages

    def sessions(self, project: Path) -> set[str] | None:
        """Return the project's sessions whose job is pending or running (None: no answer)."""
        ages = self.created(project)
        return None if ages is None else set(ages)

    def describe(self, session: str) -> str:
        """Name what a session runs in, as users find it in ``ray job list``."""
        return f"Ray job looprunner-*-{session}-N (metadata looprunner_session={session})"

    def capture(self, session: str, project: Path, lines: int) -> list[str] | None:
        """Return the last ``lines`` lines of the session's latest job log."""
        try:
            job = jobs.latest(project, session, self._address)
            if job is None:
                return None
            text = str(jobs.client(self._address).get_job_logs(job.submission_id))
        except Exception:
            return None
        out = text.splitlines()
        while out and not out[-1].strip():
            out.pop()
        return out[-lines:] if lines > 0 else []

    def attach_argv(self, session: str, project: Path) -> list[str]:
        """Return ``ray job logs --follow`` for the session's latest job."""
        job = jobs.latest(project, session, self._address)
        if job is None:
            raise BackendError(f"ray: session {session!r} has no job to follow")
        ray = shutil.which("ray") or str(Path(sys.executable).with_name("ray"))
        where = jobs.address(self._address)
        return [
            ray,
            "job",
            "logs",
            "--follow",
            *(["--address", where] if where else []),
            job.submission_id,
        ]

    def diagnose(self, env: Mapping[str, str]) -> Check:
        """Say whether the cluster answers, at which address, with which Ray."""
        import ray

        where = self._address or env.get(jobs.ADDRESS_ENV) or "the local default"
        version = f"ray {ray.__version__}"
        try:
            count = len(jobs.client(self._address).list_jobs())
        except Exception as exc:
            return Check("backend", self.name, False, f"cannot reach {where}: {exc}", version)
        return Check("backend", self.name, True, f"cluster at {where}: {count} jobs", version)

    # ------------------------------------------------------------------ stop

    def _stop_job(self, submission_id: str) -> None:
        try:
            jobs.client(self._address).stop_job(submission_id)
        except Exception:
            return
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline:
            try:
                status = jobs.client(self._address).get_job_status(submission_id)
            except Exception:
                return
            if str(getattr(status, "value", status)) not in jobs.LIVE_STATES:
                return
            time.sleep(0.1)

    def stop(self, session: str, project: Path) -> bool:
        """Stop the session's live jobs (only ours) and wait until they ended."""
        try:
            live = [
                job for job in jobs.list_ours(project, session, self._address) if jobs.is_live(job)
            ]
        except BackendUnreachableError:
            return False
        for job in live:
            self._stop_job(job.submission_id)
        return bool(live)
