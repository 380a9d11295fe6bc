"""The local test cluster keeps to the machine: every server it starts listens on loopback.

A head and a worker node of :mod:`looprunner_ray.local` run many servers (the Jobs API,
GCS, raylets, object managers, node agents). Each listening TCP socket and each bound
UDP socket of their processes is looked up in ``/proc/net`` and must be on 127.0.0.0/8
or ``::1``: nothing a test starts may be reachable from another machine.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from looprunner_ray.local import LocalCluster, LocalNode

pytestmark = [pytest.mark.ray, pytest.mark.slow]

#: /proc/net states: a TCP socket that listens, a UDP socket that is bound but not connected
LISTEN, UNCONNECTED = "0A", "07"


def _address(hexed: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """Decode /proc/net's address: 32-bit words in the machine's (little-endian) order."""
    raw = bytes.fromhex(hexed)
    ordered = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    found = ipaddress.ip_address(ordered)
    if isinstance(found, ipaddress.IPv6Address) and found.ipv4_mapped is not None:
        return found.ipv4_mapped
    return found


def _bound_sockets() -> dict[int, str]:
    """Map the inode of each listening TCP / bound UDP socket to its ``address:port``."""
    found: dict[int, str] = {}
    for table, state in (
        ("tcp", LISTEN),
        ("tcp6", LISTEN),
        ("udp", UNCONNECTED),
        ("udp6", UNCONNECTED),
    ):
        path = Path("/proc/net") / table
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != state:
                continue
            hexed, port = fields[1].split(":")
            found[int(fields[9])] = f"{_address(hexed)}:{int(port, 16)}"
    return found


def _sockets_of(pid: int) -> set[int]:
    """Return the socket inodes process ``pid`` holds (none if it is gone)."""
    held = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = str(fd.readlink())
            except OSError:
                continue
            if target.startswith("socket:["):
                held.add(int(target[8:-1]))
    except OSError:
        pass
    return held


def _name(pid: int) -> str:
    """The program name of process ``pid`` ("" if it is gone)."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def test_every_server_of_the_test_cluster_listens_on_loopback_only(
    ray_cluster: LocalCluster, ray_worker: LocalNode
) -> None:
    from looprunner_ray.local import descendants

    assert ray_cluster.head_pid, "the head's pid is not known"
    processes = descendants(ray_cluster.head_pid) | ray_worker.pids()
    bound = _bound_sockets()
    listening = {bound[inode] for pid in processes for inode in _sockets_of(pid) if inode in bound}
    gcs_port = ray_cluster.gcs.rsplit(":", 1)[1]
    # the head's GCS and its Jobs API are among them: the look reached the servers
    assert any(entry.endswith(":" + gcs_port) for entry in listening), sorted(listening)
    dashboard_port = ray_cluster.address.rsplit(":", 1)[1]
    assert any(entry.endswith(":" + dashboard_port) for entry in listening), sorted(listening)
    exposed = sorted(
        entry
        for entry in listening
        if not ipaddress.ip_address(entry.rsplit(":", 1)[0].strip("[]")).is_loopback
    )
    assert not exposed, f"listening beyond loopback: {exposed}"
    assert len(ray_cluster.alive_nodes()) >= 2


def test_a_head_that_ends_by_itself_says_which_process_died() -> None:
    """``ray start --block`` ends the node when one process dies; the cluster says which."""
    import os
    import signal

    from looprunner_ray import local

    with local.start(num_cpus=1) as cluster:
        assert cluster.ended_by_itself() is None
        raylets = [pid for pid in local.descendants(cluster.head_pid) if _name(pid) == "raylet"]
        assert raylets, "the head runs a raylet"
        os.kill(raylets[0], signal.SIGKILL)
        assert cluster.head is not None
        cluster.head.process.wait(120)  # the head goes with its raylet (or the test fails)
        said = cluster.ended_by_itself()
    assert said is not None
    assert "ended by itself" in said
    assert "raylet" in said, said
