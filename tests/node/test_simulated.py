"""Simulated nodes against the real API server: nodes register Ready with leases, pods bound to
them (spec.nodeName, no scheduler) go ContainerCreating -> Running/Ready with an address from
the node's pod CIDR, a pod whose claim is missing or unbound stays ContainerCreating with one
aggregated FailedMount event, and a graceful delete is finished by the node."""

from __future__ import annotations

import functools
import ipaddress
import os
import sys

from k1s.api import registry
from k1s.node.lease import LEASE_NAMESPACE, LEASES
from k1s.node.simulated import SimulatedNodes

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "controllers"))
from ctrl_util import eventually, get_or_none, running_controllers  # noqa: E402

NODES = registry.core("nodes")
PODS = registry.core("pods")
PVCS = registry.core("persistentvolumeclaims")
EVENTS = registry.core("events")


def sim(**kw):
    opts = dict(count=2, pod_delay=0.3, delete_cap=0.5, renew_interval=0.5, provisioners=False)
    opts.update(kw)
    return functools.partial(SimulatedNodes, **opts)


def pod(name, node, volumes=None, grace=None, init=False):
    spec = {"nodeName": node, "containers": [{"name": "web", "image": "nginx"},
                                             {"name": "side", "image": "busybox:1.36"}]}
    if volumes:
        spec["volumes"] = volumes
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    if init:
        spec["initContainers"] = [{"name": "setup", "image": "busybox"}]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default"}, "spec": spec}


def cond(p, type_):
    for c in (p.get("status") or {}).get("conditions") or ():
        if c["type"] == type_:
            return c
    return None


async def running_pod(c, name):
    async def check():
        p = await get_or_none(c, PODS, name, "default")
        ok = p and p["status"].get("phase") == "Running" and \
            (cond(p, "Ready") or {}).get("status") == "True"
        return p if ok else None
    return await eventually(check, timeout=20)


async def test_nodes_register_ready_with_leases_and_cidrs(api_server):
    async with running_controllers(api_server.url, sim(count=3)) as c:
        async def three_ready():
            items = (await c.list(NODES))["items"]
            ready = [n for n in items if (cond(n, "Ready") or {}).get("status") == "True"]
            return items if len(ready) == 3 else None
        nodes = {n["metadata"]["name"]: n for n in await eventually(three_ready, timeout=20)}
        assert set(nodes) == {"k1s-sim-0", "k1s-sim-1", "k1s-sim-2"}
        n1 = nodes["k1s-sim-1"]
        assert n1["metadata"]["labels"]["kubernetes.io/hostname"] == "k1s-sim-1"
        assert n1["metadata"]["labels"]["kubernetes.io/os"] == "linux"
        assert n1["status"]["allocatable"] == {"cpu": "32", "memory": "256Gi", "pods": "110"}
        cidrs = {n["spec"]["podCIDR"] for n in nodes.values()}
        assert len(cidrs) == 3
        internal = [a["address"] for a in n1["status"]["addresses"] if a["type"] == "InternalIP"]
        assert internal and internal[0] != "127.0.0.1"

        async def lease():
            try:
                return await c.get(LEASES, "k1s-sim-2", LEASE_NAMESPACE)
            except Exception:
                return None
        got = await eventually(lease)
        assert got["spec"]["holderIdentity"] == "k1s-sim-2"
        assert got["spec"]["leaseDurationSeconds"] == 40


async def test_pod_goes_running_and_ready_with_address(api_server):
    async with running_controllers(api_server.url, sim(pod_delay=1.0)) as c:
        await c.create(PODS, pod("p1", "k1s-sim-1", init=True), "default")

        async def creating():
            p = await c.get(PODS, "p1", "default")
            waiting = [s["state"].get("waiting", {}).get("reason")
                       for s in p["status"].get("containerStatuses") or ()]
            return p if waiting == ["PodInitializing", "PodInitializing"] else None
        p = await eventually(creating, timeout=20)
        assert p["status"]["phase"] == "Pending"
        assert cond(p, "Ready")["status"] == "False"
        assert cond(p, "Ready")["reason"] == "ContainersNotReady"
        assert cond(p, "Initialized")["status"] == "False"
        assert p["status"]["hostIP"] == "10.0.1.2"

        p = await running_pod(c, "p1")
        st = p["status"]
        node = await c.get(NODES, "k1s-sim-1")
        assert ipaddress.ip_address(st["podIP"]) in ipaddress.ip_network(node["spec"]["podCIDR"])
        assert st["podIPs"] == [{"ip": st["podIP"]}]
        assert st["hostIPs"] == [{"ip": "10.0.1.2"}]
        assert st["startTime"]
        assert [x["type"] for x in st["conditions"]] == [
            "PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady",
            "PodScheduled"]
        assert all(x["status"] == "True" for x in st["conditions"])
        web, side = st["containerStatuses"]
        assert web["name"] == "web" and web["image"] == "docker.io/library/nginx:latest"
        assert side["image"] == "docker.io/library/busybox:1.36"
        for s in (web, side):
            assert s["ready"] is True and s["started"] is True and s["restartCount"] == 0
            assert s["state"]["running"]["startedAt"]
            assert s["containerID"].startswith("containerd://")
            assert "@sha256:" in s["imageID"]
        init = st["initContainerStatuses"][0]
        assert init["state"]["terminated"]["reason"] == "Completed"
        assert init["state"]["terminated"]["exitCode"] == 0

        # a second pod on the same node gets a different address
        await c.create(PODS, pod("p2", "k1s-sim-1"), "default")
        p2 = await running_pod(c, "p2")
        assert p2["status"]["podIP"] != st["podIP"]


async def test_pod_with_unbound_claim_waits_in_container_creating(api_server):
    vols = [{"name": "data", "persistentVolumeClaim": {"claimName": "data-db-0"}}]
    async with running_controllers(api_server.url, sim(pod_delay=0)) as c:
        await c.create(PODS, pod("db-0", "k1s-sim-0", volumes=vols), "default")

        async def failed_mount():
            evs = (await c.list(EVENTS, "default"))["items"]
            evs = [e for e in evs if e["reason"] == "FailedMount"
                   and e["involvedObject"]["name"] == "db-0"]
            return evs or None
        evs = await eventually(failed_mount, timeout=20)
        assert len(evs) == 1
        assert evs[0]["type"] == "Warning"
        assert evs[0]["source"] == {"component": "kubelet", "host": "k1s-sim-0"}
        assert "Unable to attach or mount volumes: unmounted volumes=[data]" in \
            evs[0]["message"]
        assert "data-db-0" in evs[0]["message"]
        p = await c.get(PODS, "db-0", "default")
        assert p["status"]["phase"] == "Pending"
        assert p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == \
            "ContainerCreating"

        # the claim exists but is not Bound: still waiting
        claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                 "metadata": {"name": "data-db-0", "namespace": "default"},
                 "spec": {"accessModes": ["ReadWriteOnce"], "volumeName": "pv-x",
                          "resources": {"requests": {"storage": "1Gi"}}}}
        claim = await c.create(PVCS, claim, "default")

        async def not_bound_event():
            evs = await failed_mount()
            return [e for e in evs if "PVC is not bound" in e["message"]] or None
        await eventually(not_bound_event, timeout=20)
        assert (await c.get(PODS, "db-0", "default"))["status"]["phase"] == "Pending"

        # Bound: the pod starts
        claim["status"] = {"phase": "Bound", "accessModes": ["ReadWriteOnce"],
                           "capacity": {"storage": "1Gi"}}
        await c.update_status(PVCS, claim)
        await running_pod(c, "db-0")


async def test_graceful_delete_is_finished_by_the_node(api_server):
    async with running_controllers(api_server.url, sim(pod_delay=0, delete_cap=1.0)) as c:
        await c.create(PODS, pod("g1", "k1s-sim-0", grace=30), "default")
        await running_pod(c, "g1")
        await c.delete(PODS, "g1", "default")
        p = await c.get(PODS, "g1", "default")
        assert p["metadata"]["deletionTimestamp"]
        assert p["metadata"]["deletionGracePeriodSeconds"] == 30

        async def gone():
            return await get_or_none(c, PODS, "g1", "default") is None
        await eventually(gone, timeout=20)

        # a pod never started (claim missing) is finished too
        vols = [{"name": "d", "persistentVolumeClaim": {"claimName": "nope"}}]
        await c.create(PODS, pod("g2", "k1s-sim-1", volumes=vols), "default")

        async def pending():
            p = await get_or_none(c, PODS, "g2", "default")
            return p and p["status"].get("containerStatuses")
        await eventually(pending, timeout=20)
        await c.delete(PODS, "g2", "default")

        async def gone2():
            return await get_or_none(c, PODS, "g2", "default") is None
        await eventually(gone2, timeout=20)


async def test_wait_for_first_consumer_claim_is_provisioned_on_its_node(api_server, tmp_path):
    from k1s.apiserver.server import STANDARD_STORAGE_CLASS
    from k1s.controllers.pv_binder.controller import PersistentVolumeBinder
    nodes = sim(pod_delay=0, provisioners=True, data_dir=str(tmp_path / "vols"))
    async with running_controllers(api_server.url, nodes, PersistentVolumeBinder) as c:
        await c.create(registry.get("storageclasses.storage.k8s.io"), STANDARD_STORAGE_CLASS)
        claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                 "metadata": {"name": "data-db-1", "namespace": "default",
                              # what the scheduler writes when it picks the pod's node
                              "annotations": {"volume.kubernetes.io/selected-node": "k1s-sim-1"}},
                 "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "standard",
                          "resources": {"requests": {"storage": "1Gi"}}}}
        await c.create(PVCS, claim, "default")
        vols = [{"name": "data", "persistentVolumeClaim": {"claimName": "data-db-1"}}]
        await c.create(PODS, pod("db-1", "k1s-sim-1", volumes=vols), "default")
        await running_pod(c, "db-1")
        bound = await c.get(PVCS, "data-db-1", "default")
        assert bound["status"]["phase"] == "Bound"
        pv = await c.get(registry.core("persistentvolumes"), bound["spec"]["volumeName"])
        terms = pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"]
        assert terms[0]["matchExpressions"][0]["values"] == ["k1s-sim-1"]
        assert pv["spec"]["local"]["path"].startswith(str(tmp_path / "vols"))


async def test_restarted_nodes_keep_running_pods_and_addresses(api_server):
    async with running_controllers(api_server.url, sim(pod_delay=0)) as c:
        await c.create(PODS, pod("r1", "k1s-sim-0"), "default")
        before = await running_pod(c, "r1")
    # a new process takes over: the pod stays Running with the same address, no rewrite
    async with running_controllers(api_server.url, sim(pod_delay=5)) as c:
        await c.create(PODS, pod("r2", "k1s-sim-0"), "default")

        async def r2_seen():
            p = await c.get(PODS, "r2", "default")
            return p if p["status"].get("containerStatuses") else None
        r2 = await eventually(r2_seen, timeout=20)
        after = await c.get(PODS, "r1", "default")
        assert after["status"] == before["status"]
        assert r2["status"]["phase"] == "Pending"
