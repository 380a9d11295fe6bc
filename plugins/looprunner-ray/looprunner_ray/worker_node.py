"""One Ray worker node on 127.0.0.1, run until SIGTERM: ``python -m looprunner_ray.worker_node``.

For :mod:`looprunner_ray.local` only. A node whose address is 127.0.0.1 has its servers
(raylet, object manager, agents) listen on loopback alone, which is what a test or an
example on a developer's machine wants. Ray names a node 127.0.0.1 only with
``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` in its environment, and then ``ray start
--address`` refuses to add a node (it takes that setting as "one machine only"), so the
node is started here through the library that ``ray start`` itself calls.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

#: the flags local.py passes, as Ray's node parameters name them
_PARAMETERS = {
    "num_cpus": int,
    "object_store_memory": int,
    "dashboard_agent_listen_port": int,
    "metrics_agent_port": int,
    "runtime_env_agent_port": int,
    "metrics_export_port": int,
}


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m looprunner_ray.worker_node")
    parser.add_argument("--address", required=True, help="the head's GCS, HOST:PORT")
    for name, kind in _PARAMETERS.items():
        parser.add_argument("--" + name.replace("_", "-"), type=kind, required=True)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Start the node, say so on stdout, and keep it until SIGTERM (then stop it)."""
    arguments = _arguments(sys.argv[1:] if argv is None else argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    from ray._private.node import Node
    from ray._private.parameter import RayParams

    given: dict[str, Any] = {name: getattr(arguments, name) for name in _PARAMETERS}
    params = RayParams(
        gcs_address=arguments.address,
        node_ip_address="127.0.0.1",
        node_manager_port=0,
        min_worker_port=0,
        max_worker_port=0,
        include_log_monitor=True,
        **given,
    )
    node = Node(params, head=False, shutdown_at_exit=False, spawn_reaper=True)
    print(f"looprunner_ray: worker node started, id {node.node_id}", flush=True)
    try:
        stop.wait()
    finally:
        node.kill_all_processes(check_alive=False, allow_graceful=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
