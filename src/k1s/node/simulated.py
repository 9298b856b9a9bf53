"""Simulated nodes (as kwok does): Nodes that register, stay Ready through Lease heartbeats,
and run their pods without running anything, so the control plane can be exercised at scale.

`SimulatedNodes(ctx, count)` registers `k1s-sim-0` ... `k1s-sim-<count-1>`:
- labels kubernetes.io/hostname, kubernetes.io/os, kubernetes.io/arch (and the beta ones) and
  `type: kwok`-like `k1s.io/simulated: "true"`; capacity = allocatable (default like a kwok
  node: cpu 32, memory 256Gi, pods 110); spec.podCIDR 10.244.<i>.0/24; InternalIP 10.0.<i>.2
  (addresses that exist only as strings: nothing routes to them);
- one heartbeat loop for all of them (`lease.run_heartbeats`);
- one `pods.PodWorkers` for all of them with a `SimulatedRuntime`: a started pod's containers
  are "running" `pod_delay` seconds later (ContainerCreating until then); a deleted pod's
  containers "exit" after min(grace, delete_cap) seconds, then the node finishes the delete;
- one built-in local provisioner per node (directory mode, `loop_ok=False`, volumes under
  `data_dir`, default the k1s data directory), so WaitForFirstConsumer claims of the default
  class are provisioned on the node their pod was scheduled to. (Each provisioner watches every
  claim: fine for tens of nodes; thousands of simulated nodes want provisioners=False.)

Pods of restartPolicy Never/OnFailure stay Running: nothing runs, so nothing exits (kwok does
the same by default).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import platform
import time

from k1s.client.events import EventRecorder

from .lease import Heartbeat, RENEW_INTERVAL, healthy_conditions, run_heartbeats
from .pods import DEFAULT_WORKERS, AddressPool, NodeInfo, PodWorkers

log = logging.getLogger(__name__)

PREFIX = "k1s-sim-"
DEFAULT_ALLOCATABLE = {"cpu": "32", "memory": "256Gi", "pods": "110"}   # kwok's default node
DEFAULT_POD_DELAY = 0.1        # seconds from start to Running/Ready
DEFAULT_DELETE_CAP = 1.0       # longest a simulated deletion waits for its grace period
SIMULATED_LABEL = "k1s.io/simulated"
PROVISIONER_WORKERS = 2        # per node; directory mode is a mkdir


def node_name(i: int, prefix: str = PREFIX) -> str:
    return f"{prefix}{i}"


def pod_cidr(i: int) -> str:
    """10.244.<i>.0/24 for the first 256 nodes, then 10.245.x.0/24, ..."""
    return f"10.{244 + i // 256}.{i % 256}.0/24"


def host_ip(i: int) -> str:
    return str(ipaddress.ip_address("10.0.0.2") + i * 256)


def node_object(name: str, i: int) -> dict:
    labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
              "kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
              "beta.kubernetes.io/arch": "amd64", SIMULATED_LABEL: "true"}
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": labels,
                         "annotations": {"node.alpha.kubernetes.io/ttl": "0"}},
            "spec": {"podCIDR": pod_cidr(i), "podCIDRs": [pod_cidr(i)]}}


def node_status(name: str, i: int, allocatable: dict[str, str], previous: dict | None,
                now: str) -> dict:
    return {"capacity": dict(allocatable), "allocatable": dict(allocatable),
            "conditions": healthy_conditions(previous, now),
            "addresses": [{"type": "InternalIP", "address": host_ip(i)},
                          {"type": "Hostname", "address": name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {"machineID": "", "systemUUID": "", "bootID": "",
                         "kernelVersion": platform.release(),
                         "osImage": "k1s simulated node",
                         "containerRuntimeVersion": "k1s-simulated://0.1",
                         "kubeletVersion": "v1.32.0-k1s", "kubeProxyVersion": "",
                         "operatingSystem": "linux", "architecture": "amd64"}}


class SimulatedRuntime:
    """Containers that exist only as timestamps: started at start(), ready `delay` later."""

    def __init__(self, delay: float = DEFAULT_POD_DELAY, clock=time.time):
        self.delay = max(0.0, delay)
        self.clock = clock
        self.started: dict[str, tuple[float, float]] = {}

    def state(self, uid: str) -> tuple[float, float] | None:
        return self.started.get(uid)

    async def start(self, pod: dict) -> None:
        now = self.clock()
        self.started[pod["metadata"].get("uid", "")] = (now, now + self.delay)

    async def stop(self, pod: dict, grace: int) -> None:
        # nothing to signal: the containers "exit" when the node's delete cap says so
        pass

    def stopped(self, uid: str) -> bool:
        return False

    def forget(self, uid: str) -> None:
        self.started.pop(uid, None)

    def adopt(self, uid: str) -> None:
        self.started.setdefault(uid, (0.0, 0.0))


class SimulatedNodes:
    def __init__(self, ctx, count: int, *, prefix: str = PREFIX, first_index: int = 0,
                 allocatable: dict[str, str] | None = None,
                 pod_delay: float = DEFAULT_POD_DELAY, delete_cap: float = DEFAULT_DELETE_CAP,
                 renew_interval: float = RENEW_INTERVAL, provisioners: bool = True,
                 data_dir: str | None = None, workers: int = DEFAULT_WORKERS):
        self.ctx = ctx
        self.client = ctx.client
        self.allocatable = dict(DEFAULT_ALLOCATABLE, **(allocatable or {}))
        self.renew_interval = renew_interval
        self.indexes = list(range(first_index, first_index + count))
        self.names = [node_name(i, prefix) for i in self.indexes]
        self.runtime = SimulatedRuntime(pod_delay)
        self.workers = PodWorkers(ctx, delete_cap=delete_cap, workers=workers)
        self.recorders: list[EventRecorder] = []
        self.heartbeats: list[Heartbeat] = []
        for i, name in zip(self.indexes, self.names):
            self.heartbeats.append(Heartbeat(
                self.client, name, lambda n=name, i=i: node_object(n, i),
                lambda prev, now, n=name, i=i: node_status(n, i, self.allocatable, prev, now)))
            rec = EventRecorder(self.client, "kubelet", host=name)
            self.recorders.append(rec)
            self.workers.serve(NodeInfo(name, host_ip(i), AddressPool(pod_cidr(i)),
                                        self.runtime, rec))
        self.provisioners = []
        if provisioners:
            from k1s.controllers.local_provisioner.controller import LocalProvisioner
            self.provisioners = [LocalProvisioner(ctx, node=name, data_dir=data_dir,
                                                  loop_ok=False, workers=PROVISIONER_WORKERS,
                                                  loop_why="a simulated node's volumes are "
                                                  "directories")
                                 for name in self.names]

    async def run(self) -> None:
        parts = [("heartbeats", lambda: run_heartbeats(self.heartbeats, self.renew_interval)),
                 ("pods", self.workers.run)]
        parts += [(f"provisioner:{p.node}", p.run) for p in self.provisioners]
        tasks = [asyncio.create_task(_supervise(name, fn), name=f"simulated-nodes:{name}")
                 for name, fn in parts]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for rec in self.recorders:
                await rec.close()


async def _supervise(name: str, run) -> None:
    # one part failing (an unexpected error) must not stop the others: restart it, as the
    # controller manager restarts a controller
    while True:
        try:
            await run()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("simulated nodes: %s failed; restarting in 1s", name)
            await asyncio.sleep(1)
