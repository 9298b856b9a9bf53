"""The node-lifecycle controller at work: watches Nodes, their Leases (kube-node-lease) and the
pods bound to them; every monitor period it looks at every node (a stale heartbeat is noticed
without any event), and writes what `planner` decides:

- node status: health conditions Unknown once the heartbeat is older than the grace period
  (a PUT of /status carrying the resourceVersion it read: a node posting at the same moment
  wins, and the next pass looks again);
- node spec.taints: NoSchedule / NoExecute taints from the conditions (same write rule);
- events `NodeNotReady` on the node ("Node <name> status is now: NodeNotReady") when Ready
  leaves True, and on each pod it marks not ready ("Node is not ready");
- pods' Ready condition False (a strategic-merge patch of that one condition, by type);
- taint-based eviction: a DisruptionTarget condition (reason DeletionByTaintManager), an event
  TaintManagerEviction, then a delete; evictions due later wait in the work queue's delay heap.

`grace_period`, `startup_grace_period` and `monitor_period` are constructor parameters (tests
use short ones); `evict=False` turns taint-based eviction off.
"""

from __future__ import annotations

import asyncio
import logging
import time

from k1s.api import registry
from k1s.client.errors import ApiError
from k1s.client.workqueue import WorkQueue, run_workers
from k1s.client.informer import start_and_sync

from . import planner

log = logging.getLogger(__name__)

NODES = registry.core("nodes")
PODS = registry.core("pods")
LEASES = registry.get("leases.coordination.k8s.io")
LEASE_NAMESPACE = "kube-node-lease"
NODE_INDEX = "spec.nodeName"
COMPONENT = "node-controller"
WORKERS = 8


def node_name_index(pod: dict) -> list[str]:
    n = (pod.get("spec") or {}).get("nodeName")
    return [n] if n else []


class NodeLifecycleController:
    def __init__(self, ctx, *, grace_period: float = planner.GRACE_PERIOD,
                 startup_grace_period: float = planner.STARTUP_GRACE_PERIOD,
                 monitor_period: float = planner.MONITOR_PERIOD, evict: bool = True,
                 clock=time.time):
        self.client = ctx.client
        self.grace = grace_period
        self.startup_grace = startup_grace_period
        self.monitor_period = monitor_period
        self.evict = evict
        self.clock = clock
        self.recorder = ctx.recorder_for(COMPONENT)
        self.evictions = ctx.recorder_for("taint-eviction-controller")
        self.queue = WorkQueue("node-lifecycle")
        # node -> (heartbeat marker, local time it was last seen changing)
        self.probes: dict[str, tuple[tuple, float]] = {}
        self.nodes = ctx.informers.informer(NODES)
        self.leases = ctx.informers.informer(LEASES, LEASE_NAMESPACE)
        self.pods = ctx.informers.informer(PODS)
        self.pods.add_indexer(NODE_INDEX, node_name_index)
        self.nodes.add_handler(on_add=self._on_node, on_update=lambda _o, n: self._on_node(n),
                               on_delete=self._on_node_delete)
        self.leases.add_handler(on_add=self._on_lease, on_update=lambda _o, n: self._on_lease(n))
        self.pods.add_handler(on_add=self._on_pod, on_update=lambda _o, n: self._on_pod(n))

    # -- events -> keys ---------------------------------------------------------------------------
    def _observe(self, name: str) -> None:
        marker = planner.heartbeat_marker(self.nodes.get(name),
                                          self.leases.get(name, LEASE_NAMESPACE))
        seen = self.probes.get(name)
        if seen is None or seen[0] != marker:
            self.probes[name] = (marker, self.clock())

    def _on_node(self, node: dict) -> None:
        name = node["metadata"]["name"]
        self._observe(name)
        self.queue.add(("node", "", name))

    def _on_node_delete(self, node: dict) -> None:
        self.probes.pop(node["metadata"]["name"], None)

    def _on_lease(self, lease: dict) -> None:
        name = lease["metadata"]["name"]
        if self.nodes.get(name) is not None:
            self._observe(name)
            self.queue.add(("node", "", name))

    def _on_pod(self, pod: dict) -> None:
        node = (pod.get("spec") or {}).get("nodeName")
        if node and self.nodes.get(node) is not None:
            m = pod["metadata"]
            self.queue.add(("pod", m.get("namespace", ""), m["name"]))

    async def run(self) -> None:
        await start_and_sync((self.nodes, self.leases, self.pods))
        monitor = asyncio.create_task(self._monitor())
        try:
            await run_workers(self.queue, self.sync, WORKERS)
        finally:
            monitor.cancel()
            self.queue.shutdown()

    async def _monitor(self) -> None:
        while True:
            await asyncio.sleep(self.monitor_period)
            for name in self.nodes.keys():
                self.queue.add(("node", "", name))

    async def sync(self, key: tuple[str, str, str]) -> None:
        kind, ns, name = key
        if kind == "node":
            await self.sync_node(name)
        else:
            await self.sync_pod(ns, name)

    # -- nodes --------------------------------------------------------------------------------------
    async def sync_node(self, name: str) -> None:
        node = self.nodes.get(name)
        if node is None:
            return
        if name not in self.probes:
            self._observe(name)
        now = self.clock()
        plan = planner.plan_node(node, now, self.probes[name][1], self.grace, self.startup_grace)
        try:
            if plan.conditions is not None:
                body = dict(node, status=dict(node.get("status") or {},
                                              conditions=plan.conditions))
                node = await self.client.update_status(NODES, body)
            if plan.taints is not None:
                spec = dict(node.get("spec") or {})
                if plan.taints:
                    spec["taints"] = plan.taints
                else:
                    spec.pop("taints", None)
                node = await self.client.update(NODES, dict(node, spec=spec))
        except ApiError as e:
            if e.is_conflict():
                self.queue.add_rate_limited(("node", "", name))   # read again, decide again
                return
            if e.is_not_found():
                return
            raise
        if plan.became_not_ready:
            self.recorder.event(node, "Normal", "NodeNotReady",
                                f"Node {name} status is now: NodeNotReady")
        if planner.ready_status(node) != "True":
            for pod in self.pods.by_index(NODE_INDEX, name):
                await self._sync_pod_on(pod, node)

    # -- pods ----------------------------------------------------------------------------------------
    async def sync_pod(self, ns: str, name: str) -> None:
        pod = self.pods.get(name, ns)
        if pod is None:
            return
        node = self.nodes.get((pod.get("spec") or {}).get("nodeName", ""))
        await self._sync_pod_on(pod, node)

    async def _sync_pod_on(self, pod: dict, node: dict | None) -> None:
        m = pod["metadata"]
        ns, name = m.get("namespace", ""), m["name"]
        now = self.clock()
        try:
            if planner.needs_not_ready(pod, node):
                patch = {"status": {"conditions": [{"type": "Ready", "status": "False",
                                                    "lastTransitionTime": planner.rfc3339(now)}]}}
                await self.client.patch(PODS, name, patch, ns, patch_type="strategic",
                                        subresource="status")
                self.recorder.event(pod, "Warning", "NodeNotReady", "Node is not ready")
            if not self.evict:
                return
            at = planner.eviction_time(pod, node, now)
            if at is None:
                return
            if at > now:
                self.queue.add_after(("pod", ns, name), at - now)
                return
            await self._evict(pod)
        except ApiError as e:
            if not e.is_not_found():
                raise

    async def _evict(self, pod: dict) -> None:
        m = pod["metadata"]
        ns, name = m.get("namespace", ""), m["name"]
        self.evictions.event(pod, "Normal", "TaintManagerEviction",
                             f"Marking for deletion Pod {ns}/{name}")
        cond = {"type": "DisruptionTarget", "status": "True", "reason": "DeletionByTaintManager",
                "message": "Taint manager: deleting due to NoExecute taint",
                "lastTransitionTime": planner.rfc3339(self.clock())}
        await self.client.patch(PODS, name, {"status": {"conditions": [cond]}}, ns,
                                patch_type="strategic", subresource="status")
        await self.client.delete(PODS, name, ns,
                                 preconditions={"uid": m["uid"]} if m.get("uid") else None)
