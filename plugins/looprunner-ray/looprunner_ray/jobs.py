"""Names and look-ups of looprunner's Ray jobs: which jobs are ours, and of which session.

A job is ours when its ``submission_id`` starts with the prefix of the project and
session (``looprunner-<12 hex of the project path's SHA-256>-<session>-``) *and* its
``metadata`` names the same project and session: a job somebody else submitted, even
one with a look-alike id, is never reported, stopped or followed. Ray refuses a second
job with an id it has seen, whatever became of the first, so each launch of a session
takes the next number (``...-1``, ``...-2`` after a resume): two launchers that race for
the same number get one job between them, and the loser a refusal.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from looprunner.plugin import BackendUnreachableError

if TYPE_CHECKING:
    from ray.job_submission import JobSubmissionClient

#: the variable that names the cluster (Ray's own: ``http://HEAD:8265``, the dashboard)
ADDRESS_ENV = "RAY_ADDRESS"
PROJECT_KEY = "looprunner_project"
SESSION_KEY = "looprunner_session"
#: job states in which the entrypoint may still run (Ray's names)
LIVE_STATES = frozenset({"PENDING", "RUNNING"})

_clients: dict[str | None, JobSubmissionClient] = {}


def address(given: str | None = None) -> str | None:
    """Return the cluster address: ``given`` (the backend's option), else ``RAY_ADDRESS``.

    None: Ray looks for a cluster started on this machine.
    """
    return given or os.environ.get(ADDRESS_ENV) or None


def client(given: str | None = None) -> JobSubmissionClient:
    """Return a Jobs API client of the cluster, or raise BackendUnreachableError.

    ``given`` is the address the session was launched with (else ``RAY_ADDRESS``).
    Clients are kept per address for the life of the process: making one asks the
    cluster for its version, and ``start`` asks for the sessions every half second.
    """
    where = address(given)
    known = _clients.get(where)
    if known is not None:
        return known
    from ray.job_submission import JobSubmissionClient

    try:
        made = JobSubmissionClient(where)
    except Exception as exc:  # requests' ConnectionError, Ray's RuntimeError, ...
        raise BackendUnreachableError(
            f"ray: cannot reach the cluster at {where or 'the local default'}: {exc}"
        ) from exc
    _clients[where] = made
    return made


def prefix(project: Path, session: str) -> str:
    """Return the id prefix of the project's session (only safe characters)."""
    digest = hashlib.sha256(str(project).encode()).hexdigest()[:12]
    return f"looprunner-{digest}-{session}-"


def metadata(project: Path, session: str) -> dict[str, str]:
    """Return the job metadata naming the project and session (nothing else)."""
    return {PROJECT_KEY: str(project), SESSION_KEY: session}


def ours(job: Any, project: Path, session: str | None = None) -> bool:
    """Tell whether ``job`` (a JobDetails) is a looprunner job of ``project`` (and session)."""
    meta = job.metadata or {}
    name = meta.get(SESSION_KEY)
    if meta.get(PROJECT_KEY) != str(project) or not isinstance(name, str):
        return False
    if session is not None and name != session:
        return False
    return str(job.submission_id or "").startswith(prefix(project, name))


def launch_number(job: Any, project: Path, session: str) -> int:
    """Return which launch of the session ``job`` was (0 if its id has no number)."""
    tail = str(job.submission_id)[len(prefix(project, session)) :]
    return int(tail) if tail.isdigit() else 0


def list_ours(project: Path, session: str | None = None, where: str | None = None) -> list[Any]:
    """Return the project's jobs (of ``session`` only, if given), oldest launch first."""
    try:
        jobs: Iterable[Any] = client(where).list_jobs()
    except BackendUnreachableError:
        raise
    except Exception as exc:
        _clients.pop(address(where), None)  # a head that restarted needs a new client
        raise BackendUnreachableError(f"ray: the cluster did not answer: {exc}") from exc
    found = [job for job in jobs if ours(job, project, session)]
    return sorted(
        found,
        key=lambda job: (
            job.metadata[SESSION_KEY],
            launch_number(job, project, job.metadata[SESSION_KEY]),
        ),
    )


def latest(project: Path, session: str, where: str | None = None) -> Any | None:
    """Return the session's most recent job, or None if it never had one."""
    jobs = list_ours(project, session, where)
    return jobs[-1] if jobs else None


def is_live(job: Any) -> bool:
    """Tell whether the job's entrypoint may still run."""
    return str(getattr(job.status, "value", job.status)) in LIVE_STATES
