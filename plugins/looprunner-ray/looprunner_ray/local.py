"""A Ray cluster of one or more nodes on this machine.

For the plugin's tests, the worked example and the benchmarks: they need a real head
with the Jobs API and, to show placement and node loss, a second node, without touching
any Ray the user runs. The head is a ``ray start --block``, each worker a ``python -m
looprunner_ray.worker_node``, each in a process group of its own, with every port Ray
would otherwise fix chosen free, under a short temp folder
(Ray's socket paths must stay under 108 characters). Every server listens on 127.0.0.1
only: the nodes run with ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, under which Ray names a
node 127.0.0.1 (otherwise it takes the machine's address whatever one asks), and as
``ray start`` then refuses to add a node, workers are started by
:mod:`looprunner_ray.worker_node`.
``stop`` ends what was started, and only that; ``lose`` ends a worker node the way a
machine that dies does, every process of it at once, with no chance to say goodbye.

Usage::

    with local.start(num_cpus=2) as cluster:      # the head
        worker = cluster.add_worker(num_cpus=2)    # a second node
        os.environ["RAY_ADDRESS"] = cluster.address
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

#: how long a node may take to come up on a busy machine (seconds)
START_TIMEOUT = 240.0
_DASHBOARD = re.compile(r"http://127\.0\.0\.1:(\d+)")
#: ``ray start``'s flags that Ray's node parameters name otherwise
_WORKER_FLAGS = {"dashboard-agent-grpc-port": "metrics-agent-port"}
#: Ray names a node by the machine's address unless told it is "one machine only": then
#: 127.0.0.1, and its servers listen on loopback alone
_LOOPBACK_ONLY = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def ray_program() -> str:
    """Return the ``ray`` command beside this Python (or on PATH)."""
    beside = Path(sys.executable).with_name("ray")
    found = str(beside) if beside.exists() else shutil.which("ray")
    if found is None:
        raise RuntimeError("the ray command is not installed (pip install 'ray[default]')")
    return found


def _free_port() -> str:
    """Return a port nobody listens on now (Ray's agents default to fixed ones: 52365...)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return str(probe.getsockname()[1])


def _end_with_parent() -> Callable[[], None] | None:
    """Return what, in the child before exec, asks Linux for SIGTERM when its parent dies.

    ``--block`` stops the node on SIGTERM, so a test run or a script that is killed
    (not only one that ends) leaves no Ray behind. The C function is looked up here, in
    the parent: the child, forked from a process with threads, only calls it. Elsewhere
    than Linux, None.
    """
    if sys.platform != "linux":
        return None
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    pr_set_pdeathsig = 1

    def ask() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)

    return ask


def _children() -> dict[int, list[int]]:
    """Map each live pid to its children's pids, from /proc."""
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])  # the name may hold spaces
        tree.setdefault(parent, []).append(int(entry.name))
    return tree


def descendants(pid: int) -> set[int]:
    """Return ``pid`` and every live process below it."""
    tree = _children()
    found, todo = {pid}, [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


class LocalNode:
    """One ``ray start --block`` process and what it started."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            start_new_session=True,
            preexec_fn=_end_with_parent(),
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:  # keeps draining: the node never blocks on a pipe
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, pattern: re.Pattern[str], timeout: float) -> re.Match[str]:
        """Return the first output line's match of ``pattern``; fail if the node ends first."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                match = next((m for m in map(pattern.search, self.lines) if m), None)
                if match is not None:
                    return match
                left = deadline - time.monotonic()
                if left <= 0 or not self._reader.is_alive():
                    raise RuntimeError("the Ray node did not start:\n" + "".join(self.lines[-20:]))
                self._changed.wait(min(left, 1.0))

    def last_output(self, lines: int, wait: float = 10.0) -> str:
        """Return the last ``lines`` lines the node printed, once it has said all it will.

        Waits up to ``wait`` seconds for the end of its output (the node may have just
        ended, its last lines still in the pipe).
        """
        self._reader.join(wait)
        with self._changed:
            return "".join(self.lines[-lines:]).rstrip()

    def pids(self) -> set[int]:
        """Return the pids of this node's processes (the ``ray start`` and below)."""
        return descendants(self.process.pid) if self.process.poll() is None else set()

    def lose(self) -> None:
        """End the node as a dead machine would: freeze every process of it, then kill all."""
        frozen: set[int] = set()
        while True:  # a process forked before its parent froze is caught on the next pass
            found = self.pids() - frozen
            if not found:
                break
            for pid in found:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGSTOP)
            frozen |= found
        for pid in frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(30)
        self._close()

    def stop(self) -> None:
        """Stop the node (``--block`` stops what it started on SIGTERM), then make sure."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self._close()

    def _close(self) -> None:
        self._reader.join(10)
        if self.process.stdout is not None:
            self.process.stdout.close()


class LocalCluster:
    """A head (with the Jobs API) and any workers added, all on 127.0.0.1 alone."""

    def __init__(self, num_cpus: int | None, timeout: float = START_TIMEOUT) -> None:
        self.temp = Path(tempfile.mkdtemp(prefix="lrray-"))
        self.env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **_LOOPBACK_ONLY}
        self.env.pop("RAY_ADDRESS", None)
        self.workers: list[LocalNode] = []
        self.head: LocalNode | None = None
        self._head_pid = 0
        #: the Jobs API address, what ``RAY_ADDRESS`` names
        self.address = ""
        #: the head's GCS, which workers join (Ray names it by the machine's address)
        self.gcs = ""
        if num_cpus is None:  # see joined()
            return
        deadline = time.monotonic() + timeout
        try:
            while True:  # ray start gives up after 30 s on a loaded machine: start again
                gcs_port = _free_port()
                self.head = LocalNode(
                    [
                        ray_program(), "start", "--head", "--block", "--port", gcs_port,
                        "--dashboard-host", "127.0.0.1", "--dashboard-port", "0",
                        "--include-dashboard", "true", "--temp-dir", str(self.temp),
                        "--ray-client-server-port", _free_port(),
                        *self._node_options(num_cpus),
                    ],
                    self.env,
                )  # fmt: skip
                try:
                    left = max(1.0, deadline - time.monotonic())
                    port = self.head.wait_for(_DASHBOARD, left).group(1)
                    break
                except RuntimeError:
                    self.head.stop()
                    if time.monotonic() >= deadline:
                        raise
            self.address = f"http://127.0.0.1:{port}"
            self.gcs = f"127.0.0.1:{gcs_port}"
            self._wait_for_jobs(max(1.0, deadline - time.monotonic()))
        except BaseException:
            self.stop()
            raise

    @classmethod
    def joined(cls, address: str, gcs: str, head_pid: int = 0) -> LocalCluster:
        """Return a handle on a head another process started: it adds and stops workers only."""
        made = cls(None)
        made.address, made.gcs, made._head_pid = address, gcs, head_pid
        return made

    @property
    def head_pid(self) -> int:
        """The pid of the head's ``ray start`` (0: not known), whoever started it."""
        return self.head.process.pid if self.head is not None else self._head_pid

    @staticmethod
    def _node_settings(num_cpus: int) -> dict[str, str]:
        """Return a node's settings, by ``ray start``'s flag names (without ``--``)."""
        return {
            "num-cpus": str(num_cpus),
            # the least Ray takes: looprunner's jobs put nothing in the object store
            "object-store-memory": str(100 * 1024 * 1024),
            # fixed by default: another Ray on this machine must not be in the way
            "dashboard-agent-listen-port": _free_port(),
            "dashboard-agent-grpc-port": _free_port(),
            "runtime-env-agent-port": _free_port(),
            "metrics-export-port": _free_port(),
        }

    @classmethod
    def _node_options(cls, num_cpus: int) -> list[str]:
        """Return ``ray start``'s flags for a node of ``num_cpus`` CPUs."""
        flags = ["--disable-usage-stats"]
        for name, value in cls._node_settings(num_cpus).items():
            flags += ["--" + name, value]
        return flags

    @classmethod
    def _worker_options(cls, num_cpus: int) -> list[str]:
        """Return :mod:`looprunner_ray.worker_node`'s flags (Ray's own parameter names)."""
        flags = []
        for name, value in cls._node_settings(num_cpus).items():
            flags += ["--" + _WORKER_FLAGS.get(name, name), value]
        return flags

    def _wait_for_jobs(self, timeout: float) -> None:
        """Poll until the head runs jobs: a trivial job is accepted and ends.

        The dashboard answers before the node's job agent is ready ("No available agent
        to submit job"), so only a job that ran proves the head takes jobs.
        """
        from ray.job_submission import JobSubmissionClient

        deadline = time.monotonic() + timeout
        submitted = None
        while submitted is None:
            try:
                submitted = JobSubmissionClient(self.address).submit_job(entrypoint="true")
            except Exception:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.5)
        client = JobSubmissionClient(self.address)
        while str(client.get_job_status(submitted).value) in ("PENDING", "RUNNING"):
            if time.monotonic() >= deadline:
                raise RuntimeError("the Ray head accepted a job but never ran it")
            time.sleep(0.2)

    def alive_nodes(self) -> list[Any]:
        """Return the cluster's live nodes (Ray's NodeState records)."""
        from ray.util.state import list_nodes

        # a node just lost cannot answer for itself: count the others rather than fail
        return list(
            list_nodes(
                address=self.address,
                filters=[("state", "=", "ALIVE")],
                raise_on_missing_output=False,
            )
        )

    def add_worker(self, num_cpus: int, timeout: float = START_TIMEOUT) -> LocalNode:
        """Start a worker node joined to the head; return once the head counts it alive.

        ``ray start`` gives up when its raylet has not registered within 30 seconds (a
        fixed wait in Ray), which a loaded machine exceeds: a node that gave up is
        started again until ``timeout``.
        """
        expected = len(self.alive_nodes()) + 1
        deadline = time.monotonic() + timeout
        while True:
            node = LocalNode(
                [
                    sys.executable, "-m", "looprunner_ray.worker_node",
                    "--address", self.gcs, *self._worker_options(num_cpus),
                ],
                self.env,
            )  # fmt: skip
            while node.process.poll() is None and time.monotonic() < deadline:
                if len(self.alive_nodes()) >= expected:
                    self.workers.append(node)
                    return node
                time.sleep(0.5)
            node.stop()
            if time.monotonic() >= deadline:
                raise RuntimeError("the Ray worker did not join:\n" + "".join(node.lines[-20:]))

    def ended_by_itself(self) -> str | None:
        """Say why the head ended, if it ended without being stopped (None: it runs).

        ``ray start --block`` ends every process of the node when one of them dies (a
        raylet the GCS took for dead, say), and says which, with the end of that
        process's log: what it printed last is returned.
        """
        if self.head is None or self.head.process.poll() is None:
            return None
        return (
            f"the Ray head ended by itself (exit code {self.head.process.returncode}); "
            "what ray start printed last:\n" + self.head.last_output(40)
        )

    def stop(self) -> None:
        """Stop every node (workers first), then remove the temp folder."""
        for node in reversed(self.workers):
            node.stop()
        if self.head is not None:
            self.head.stop()
        shutil.rmtree(self.temp, ignore_errors=True)

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()


def start(num_cpus: int = 2, timeout: float = START_TIMEOUT) -> LocalCluster:
    """Start a head of ``num_cpus`` CPUs on 127.0.0.1; return once it runs jobs."""
    return LocalCluster(num_cpus, timeout)
