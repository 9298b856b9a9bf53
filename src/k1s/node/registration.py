"""NodeRegistrar: this machine as a Node object, kept Ready, with a renewed Lease.

Upstream's kubelet registers its Node (labels kubernetes.io/hostname, os, arch), reports
status (conditions, capacity/allocatable, addresses, nodeInfo) and renews
`kube-node-lease/<node>` every 10 s (renewIntervalFraction 0.25 of the 40 s lease). k1s does
the same from `k1s up` as the controller named "node-registrar". Capacity is the machine's:
cores, memory from /proc/meminfo, the data dir's filesystem as ephemeral-storage, 110 pods.
"""

from __future__ import annotations

import asyncio
import logging
import os
import platform
from datetime import datetime, timezone

from k1s.api import registry
from k1s.client.errors import ApiError
from k1s.client.events import rfc3339

from . import identity

log = logging.getLogger(__name__)

NODES = registry.core("nodes")
LEASES = registry.get("leases.coordination.k8s.io")
LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION = 40
RENEW_INTERVAL = 10.0
MAX_PODS = 110


def micro_time() -> str:
    """metav1.MicroTime (what Lease renewTime holds)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def memory_bytes() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def capacity(data_dir: str) -> dict[str, str]:
    """cpu, memory, pods, ephemeral-storage of this machine, as Quantity strings."""
    try:
        st = os.statvfs(data_dir if os.path.isdir(data_dir) else "/")
        eph = st.f_blocks * st.f_frsize
    except OSError:
        eph = 0
    return {"cpu": str(os.cpu_count() or 1), "memory": f"{memory_bytes() // 1024}Ki",
            "pods": str(MAX_PODS), "ephemeral-storage": f"{eph // 1024}Ki"}


def arch() -> str:
    m = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(m, m)


def node_object(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {
                "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                "kubernetes.io/arch": arch(), "beta.kubernetes.io/os": "linux",
                "beta.kubernetes.io/arch": arch()}},
            "spec": {}}


def node_status(name: str, data_dir: str, previous: dict | None, now: str) -> dict:
    """The status to write: Ready=True and the pressure conditions False, keeping each
    condition's lastTransitionTime while its status does not change."""
    old = {c.get("type"): c for c in (previous or {}).get("conditions") or ()}
    specs = [("MemoryPressure", "False", "KubeletHasSufficientMemory",
              "kubelet has sufficient memory available"),
             ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
             ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
             ("Ready", "True", "KubeletReady", "kubelet is posting ready status")]
    conds = []
    for type_, status, reason, message in specs:
        prev = old.get(type_) or {}
        since = prev.get("lastTransitionTime") if prev.get("status") == status else None
        conds.append({"type": type_, "status": status, "lastHeartbeatTime": now,
                      "lastTransitionTime": since or now, "reason": reason, "message": message})
    cap = capacity(data_dir)
    uname = platform.uname()
    return {"capacity": cap, "allocatable": dict(cap), "conditions": conds,
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"},
                          {"type": "Hostname", "address": name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
            "nodeInfo": {"machineID": "", "systemUUID": "", "bootID": "",
                         "kernelVersion": uname.release, "osImage": "k1s",
                         "containerRuntimeVersion": "k1s://0.1", "kubeletVersion": "v1.32.0-k1s",
                         "kubeProxyVersion": "", "operatingSystem": "linux",
                         "architecture": arch()}}


class NodeRegistrar:
    def __init__(self, ctx, *, name: str | None = None, data_dir: str | None = None,
                 renew_interval: float = RENEW_INTERVAL):
        self.client = ctx.client
        self.name = name or identity.node_name()
        self.data_dir = data_dir or identity.data_dir()
        self.renew_interval = renew_interval

    async def register(self) -> dict:
        """Create the Node if missing, then write its status. Returns the Node."""
        try:
            node = await self.client.create(NODES, node_object(self.name))
        except ApiError as e:
            if not e.is_already_exists():
                raise
            node = await self.client.get(NODES, self.name)
        return await self.update_status(node)

    async def update_status(self, node: dict) -> dict:
        for _ in range(5):
            body = dict(node, status=node_status(self.name, self.data_dir,
                                                 node.get("status"), rfc3339()))
            try:
                return await self.client.update_status(NODES, body)
            except ApiError as e:
                if not e.is_conflict():
                    raise
            node = await self.client.get(NODES, self.name)
        raise RuntimeError(f"node {self.name}: status kept conflicting")

    async def renew_lease(self) -> dict:
        now = micro_time()
        try:
            lease = await self.client.get(LEASES, self.name, LEASE_NAMESPACE)
        except ApiError as e:
            if not e.is_not_found():
                raise
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": LEASE_NAMESPACE},
                    "spec": {"holderIdentity": self.name, "leaseDurationSeconds": LEASE_DURATION,
                             "renewTime": now}}
            return await self.client.create(LEASES, body, LEASE_NAMESPACE)
        lease["spec"] = dict(lease.get("spec") or {}, holderIdentity=self.name,
                             leaseDurationSeconds=LEASE_DURATION, renewTime=now)
        return await self.client.update(LEASES, lease)

    async def run(self) -> None:
        node = None
        beats = 0
        while True:
            try:
                if node is None:
                    node = await self.register()
                elif beats % 6 == 0:      # status once a minute, the lease every interval
                    node = await self.update_status(await self.client.get(NODES, self.name))
                await self.renew_lease()
            except ApiError as e:
                if e.is_not_found():
                    node = None          # the Node was deleted: register it again
                log.warning("node %s: %s", self.name, e.message)
            except (OSError, RuntimeError) as e:
                log.warning("node %s: %s", self.name, e)
            beats += 1
            await asyncio.sleep(self.renew_interval)
