"""The node-lifecycle controller against the real API server, with a short grace period: a node
whose heartbeat stops goes Unknown and gets the unreachable taints, its pods go not Ready; when
it comes back its taints go; a node reporting Ready=False gets the not-ready taints; a pod
that tolerates unreachable for 0 s is evicted, one relying on the default 300 s is not."""

from __future__ import annotations

import asyncio
import functools

import pytest

from k1s.api import registry
from k1s.controllers.node_lifecycle.controller import NodeLifecycleController
from k1s.node.lease import Heartbeat, healthy_conditions
from ctrl_util import eventually, get_or_none, running_controllers

NODES = registry.core("nodes")
PODS = registry.core("pods")
EVENTS = registry.core("events")


def node_obj(name):
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}, "spec": {}}


def heartbeat(c, name, ready=True):
    def status(prev, now):
        conds = healthy_conditions(prev, now)
        if not ready:
            conds[-1].update(status="False", reason="KubeletNotReady", message="runtime down")
        return {"conditions": conds, "capacity": {"pods": "110"}, "allocatable": {"pods": "110"}}
    return Heartbeat(c, name, lambda: node_obj(name), status)


async def ready_pod(c, name, node, tolerations=None):
    spec = {"nodeName": node, "containers": [{"name": "c", "image": "nginx"}]}
    if tolerations:
        spec["tolerations"] = tolerations
    await c.create(PODS, {"apiVersion": "v1", "kind": "Pod",
                          "metadata": {"name": name, "namespace": "default"}, "spec": spec},
                   "default")
    conds = [{"type": t, "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}
             for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")]
    await c.patch(PODS, name, {"status": {"phase": "Running", "conditions": conds}}, "default",
                  subresource="status")


def cond(obj, type_):
    for x in (obj.get("status") or {}).get("conditions") or ():
        if x["type"] == type_:
            return x
    return None


def taints(node):
    return {(t["key"], t["effect"]) for t in (node.get("spec") or {}).get("taints") or ()}


UNREACHABLE = {("node.kubernetes.io/unreachable", "NoSchedule"),
               ("node.kubernetes.io/unreachable", "NoExecute")}
NOT_READY = {("node.kubernetes.io/not-ready", "NoSchedule"),
             ("node.kubernetes.io/not-ready", "NoExecute")}

controller = functools.partial(NodeLifecycleController, grace_period=1.5,
                               startup_grace_period=1.5, monitor_period=0.2)


@pytest.fixture
async def client(api_server):
    async with running_controllers(api_server.url, controller) as c:
        yield c


async def test_stale_node_goes_unknown_tainted_and_recovers(client):
    c = client
    hb = heartbeat(c, "n1")
    await hb.beat()                                 # registered, Ready, lease renewed
    await ready_pod(c, "p1", "n1")
    # the heartbeat stops here

    async def unknown():
        n = await c.get(NODES, "n1")
        return n if cond(n, "Ready")["status"] == "Unknown" and taints(n) >= UNREACHABLE \
            else None
    n = await eventually(unknown, timeout=30)
    r = cond(n, "Ready")
    assert r["reason"] == "NodeStatusUnknown"
    assert r["message"] == "Kubelet stopped posting node status."
    for t in ("MemoryPressure", "DiskPressure", "PIDPressure"):
        assert cond(n, t)["status"] == "Unknown"
        assert cond(n, t)["reason"] == "NodeStatusUnknown"
    assert not taints(n) & NOT_READY
    ne = [t for t in n["spec"]["taints"] if t["effect"] == "NoExecute"][0]
    assert ne["timeAdded"]

    async def pod_not_ready():
        p = await c.get(PODS, "p1", "default")
        return p if cond(p, "Ready")["status"] == "False" else None
    p = await eventually(pod_not_ready, timeout=30)
    assert cond(p, "ContainersReady")["status"] == "True"     # only Ready is touched

    async def node_event():
        evs = (await c.list(EVENTS, "default"))["items"]
        return [e for e in evs if e["reason"] == "NodeNotReady"
                and e["involvedObject"]["kind"] == "Node"] or None
    ev = (await eventually(node_event, timeout=30))[0]
    assert ev["message"] == "Node n1 status is now: NodeNotReady"
    assert ev["source"]["component"] == "node-controller"

    # the pod relies on the default 300 s toleration: not evicted
    assert (await c.get(PODS, "p1", "default"))["metadata"].get("deletionTimestamp") is None

    # the node comes back: it reports Ready again and the taints go
    await hb.beat()

    async def recovered():
        n = await c.get(NODES, "n1")
        return n if cond(n, "Ready")["status"] == "True" and not taints(n) else None
    await eventually(recovered, timeout=30)


async def test_node_reporting_not_ready_gets_not_ready_taints(client):
    c = client
    hb = heartbeat(c, "n2", ready=False)
    task = asyncio.create_task(_beat_forever(hb))
    try:
        async def tainted():
            n = await get_or_none(c, NODES, "n2")
            return n if n and taints(n) >= NOT_READY else None
        n = await eventually(tainted, timeout=30)
        assert not taints(n) & UNREACHABLE
        assert cond(n, "Ready")["status"] == "False"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_pod_tolerating_unreachable_for_zero_seconds_is_evicted(client):
    c = client
    hb = heartbeat(c, "n3")
    await hb.beat()
    tol = [{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
            "effect": "NoExecute", "tolerationSeconds": 0}]
    forever = [{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                "effect": "NoExecute"}]
    await ready_pod(c, "quick", "n3", tol)
    await ready_pod(c, "stays", "n3", forever)

    async def evicted():
        p = await get_or_none(c, PODS, "quick", "default")
        # the node is gone, so nobody finishes the graceful delete: it stays Terminating
        return p if p is None or p["metadata"].get("deletionTimestamp") else None
    p = await eventually(evicted, timeout=30)
    if p is not None:
        d = cond(p, "DisruptionTarget")
        assert d["status"] == "True" and d["reason"] == "DeletionByTaintManager"
    stays = await c.get(PODS, "stays", "default")
    assert stays["metadata"].get("deletionTimestamp") is None


async def _beat_forever(hb):
    while True:
        await hb.beat()
        await asyncio.sleep(0.2)
