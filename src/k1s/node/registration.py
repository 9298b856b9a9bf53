"""NodeRegistrar: this machine as a Node object, kept Ready, with a renewed Lease.

Upstream's kubelet registers its Node (labels kubernetes.io/hostname, os, arch), reports
status (conditions, capacity/allocatable, addresses, nodeInfo) and renews
`kube-node-lease/<node>` every 10 s (renewIntervalFraction 0.25 of the 40 s lease); the
heartbeat itself lives in `lease.py`, shared with simulated nodes. k1s does
the same from `k1s up` through the node agent (`agent.NodeAgent`). Capacity is the machine's:
cores, memory from /proc/meminfo, the data dir's filesystem as ephemeral-storage, 110 pods.
"""

from __future__ import annotations

import os
import platform

from . import identity
from .lease import (LEASE_DURATION, LEASE_NAMESPACE, LEASES, NODES, RENEW_INTERVAL,  # noqa: F401
                    Heartbeat, healthy_conditions, micro_time, run_heartbeats)

MAX_PODS = 110


def capacity(data_dir: str) -> dict[str, str]:
    """cpu, memory, pods, ephemeral-storage of this machine, as Quantity strings."""
    try:
        st = os.statvfs(data_dir if os.path.isdir(data_dir) else "/")
        eph = st.f_blocks * st.f_frsize
    except OSError:
        eph = 0
    return {"cpu": str(os.cpu_count() or 1), "memory": f"{identity.memory_bytes() // 1024}Ki",
            "pods": str(MAX_PODS), "ephemeral-storage": f"{eph // 1024}Ki"}


def arch() -> str:
    m = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(m, m)


def node_object(name: str, pod_cidr: str | None = None) -> dict:
    spec = {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr]} if pod_cidr else {}
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {
                "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                "kubernetes.io/arch": arch(), "beta.kubernetes.io/os": "linux",
                "beta.kubernetes.io/arch": arch()}},
            "spec": spec}


def node_status(name: str, data_dir: str, previous: dict | None, now: str,
                stream_port: int = 0, conditions: list[dict] | None = None) -> dict:
    """The status to write: Ready=True and the pressure conditions False (see
    lease.healthy_conditions) unless `conditions` says otherwise, this machine's capacity,
    addresses and nodeInfo; `stream_port` is where the node serves exec/logs/port-forward
    (kubelet's port, read by the API server)."""
    cap = capacity(data_dir)
    uname = platform.uname()
    return {"capacity": cap, "allocatable": dict(cap),
            "conditions": conditions or healthy_conditions(previous, now),
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"},
                          {"type": "Hostname", "address": name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": stream_port}},
            "nodeInfo": {"machineID": "", "systemUUID": "", "bootID": "",
                         "kernelVersion": uname.release, "osImage": "k1s",
                         "containerRuntimeVersion": "k1s://0.1", "kubeletVersion": "v1.32.0-k1s",
                         "kubeProxyVersion": "", "operatingSystem": "linux",
                         "architecture": arch()}}


class NodeRegistrar:
    """The local node's heartbeat (lease.Heartbeat with this machine's Node and status)."""

    def __init__(self, ctx, *, name: str | None = None, data_dir: str | None = None,
                 renew_interval: float = RENEW_INTERVAL):
        self.client = ctx.client
        self.name = name or identity.node_name()
        self.data_dir = data_dir or identity.data_dir()
        self.renew_interval = renew_interval
        self.heartbeat = Heartbeat(
            self.client, self.name, lambda: node_object(self.name),
            lambda previous, now: node_status(self.name, self.data_dir, previous, now))

    async def register(self) -> dict:
        """Create the Node if missing, then write its status. Returns the Node."""
        return await self.heartbeat.register()

    async def update_status(self, node: dict) -> dict:
        return await self.heartbeat.update_status(node)

    async def renew_lease(self) -> dict:
        return await self.heartbeat.renew_lease()

    async def run(self) -> None:
        await run_heartbeats([self.heartbeat], self.renew_interval)
