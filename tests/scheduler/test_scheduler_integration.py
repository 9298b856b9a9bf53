"""The scheduler against the in-process API server, with the PV binder (and a local
provisioner) running beside it: nodes are created here as plain Node objects."""

from __future__ import annotations

import asyncio
import functools
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "controllers"))

from k1s.api import registry  # noqa: E402
from k1s.controllers.local_provisioner import planner as LP  # noqa: E402
from k1s.controllers.local_provisioner.controller import LocalProvisioner  # noqa: E402
from k1s.controllers.pv_binder.controller import PersistentVolumeBinder  # noqa: E402
from k1s.scheduler.scheduler import Scheduler  # noqa: E402
from ctrl_util import eventually, get_or_none, running_controllers  # noqa: E402

POD = registry.core("pods")
NODE = registry.core("nodes")
PV = registry.core("persistentvolumes")
PVC = registry.core("persistentvolumeclaims")
EVENTS = registry.core("events")
SC = registry.get("storageclasses.storage.k8s.io")
ANN_SELECTED = "volume.kubernetes.io/selected-node"

PREEMPT_NOT_HELPFUL = "Preemption is not helpful for scheduling"


def node(name, cpu="4", memory="8Gi", pods="110", labels=None, taints=None, ready="True",
         unschedulable=False):
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name,
                                                  **(labels or {})}},
            "spec": {"taints": taints or [], "unschedulable": unschedulable},
            "status": {"conditions": [{"type": "Ready", "status": ready}],
                       "allocatable": {"cpu": cpu, "memory": memory, "pods": pods,
                                       "ephemeral-storage": "100Gi"},
                       "capacity": {"cpu": cpu, "memory": memory, "pods": pods,
                                    "ephemeral-storage": "100Gi"}}}


def pod(name, cpu=None, claims=(), node_selector=None, tolerations=None, ns="default"):
    c = {"name": "c", "image": "busybox"}
    if cpu:
        c["resources"] = {"requests": {"cpu": cpu}}
    s = {"containers": [c],
         "volumes": [{"name": f"v{i}", "persistentVolumeClaim": {"claimName": cl}}
                     for i, cl in enumerate(claims)]}
    if node_selector:
        s["nodeSelector"] = node_selector
    if tolerations:
        s["tolerations"] = tolerations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
            "spec": s}


def claim(name, size="1Gi", cls=None):
    s = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}
    if cls is not None:
        s["storageClassName"] = cls
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": "default"}, "spec": s}


def storage_class(name, provisioner, mode="WaitForFirstConsumer", **kw):
    return {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": name}, "provisioner": provisioner,
            "volumeBindingMode": mode, **kw}


def local_pv(name, on_node, size="1Gi", cls="local"):
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
            "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"],
                     "storageClassName": cls, "persistentVolumeReclaimPolicy": "Retain",
                     "local": {"path": f"/tmp/{name}"},
                     "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                         {"key": "kubernetes.io/hostname", "operator": "In",
                          "values": [on_node]}]}]}}}}


async def node_of(c, name):
    async def check():
        p = await c.get(POD, name, "default")
        return p["spec"].get("nodeName")
    return await eventually(check, timeout=20)


async def unschedulable(c, name):
    async def check():
        p = await c.get(POD, name, "default")
        for cond in p.get("status", {}).get("conditions") or ():
            if cond["type"] == "PodScheduled" and cond["status"] == "False":
                return cond
        return None
    return await eventually(check, timeout=20)


async def events_for(c, name):
    evs = (await c.list(EVENTS, "default"))["items"]
    return [e for e in evs if e["involvedObject"]["name"] == name]


@pytest.fixture
async def client(api_server):
    binder = functools.partial(PersistentVolumeBinder, resync_period=1.0)
    async with running_controllers(api_server.url, Scheduler, binder) as c:
        yield c


async def test_spreads_pods_and_reports_scheduled(client):
    for n in ("n1", "n2"):
        await client.create(NODE, node(n))
    for i in range(4):
        await client.create(POD, pod(f"p{i}"), "default")
    nodes = [await node_of(client, f"p{i}") for i in range(4)]
    assert sorted(nodes) == ["n1", "n1", "n2", "n2"]

    async def scheduled_event():
        evs = [e for e in await events_for(client, "p0") if e["reason"] == "Scheduled"]
        return evs[0] if evs else None
    ev = await eventually(scheduled_event)
    assert ev["message"] == f"Successfully assigned default/p0 to {nodes[0]}"
    assert ev["type"] == "Normal" and ev["source"]["component"] == "default-scheduler"
    p = await client.get(POD, "p0", "default")
    assert any(c["type"] == "PodScheduled" and c["status"] == "True"
               for c in p["status"]["conditions"])


async def test_node_selector_and_taints(client):
    await client.create(NODE, node("plain"))
    await client.create(NODE, node("ssd", labels={"disk": "ssd"}, taints=[
        {"key": "dedicated", "value": "db", "effect": "NoSchedule"}]))
    await client.create(POD, pod("wants-ssd", node_selector={"disk": "ssd"}), "default")
    cond = await unschedulable(client, "wants-ssd")
    assert cond["reason"] == "Unschedulable"
    assert cond["message"] == (
        "0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
        "1 node(s) had untolerated taint {dedicated: db}. preemption: "
        f"0/2 nodes are available: 2 {PREEMPT_NOT_HELPFUL}.")

    async def failed_event():
        evs = [e for e in await events_for(client, "wants-ssd")
               if e["reason"] == "FailedScheduling"]
        return evs[0] if evs else None
    ev = await eventually(failed_event)
    assert ev["type"] == "Warning" and ev["message"] == cond["message"]
    assert ev["source"]["component"] == "default-scheduler"

    await client.create(POD, pod("tolerant", node_selector={"disk": "ssd"}, tolerations=[
        {"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"}]),
        "default")
    assert await node_of(client, "tolerant") == "ssd"

    # the cluster changes: the taint goes, and the waiting pod is retried without polling
    n = await client.get(NODE, "ssd")
    n["spec"]["taints"] = []
    await client.update(NODE, n)
    assert await node_of(client, "wants-ssd") == "ssd"


async def test_insufficient_cpu_and_unready_node(client):
    await client.create(NODE, node("small1", cpu="1"))
    await client.create(NODE, node("small2", cpu="1"))
    await client.create(NODE, node("down", cpu="8", ready="Unknown"))
    await client.create(POD, pod("a", cpu="600m"), "default")
    await client.create(POD, pod("b", cpu="600m"), "default")
    assert {await node_of(client, "a"), await node_of(client, "b")} == {"small1", "small2"}
    await client.create(POD, pod("big", cpu="600m"), "default")
    cond = await unschedulable(client, "big")
    assert cond["message"] == (
        "0/3 nodes are available: 1 node(s) had untolerated taint "
        "{node.kubernetes.io/unreachable: }, 2 Insufficient cpu. "
        "preemption: 0/3 nodes are available: "
        f"1 {PREEMPT_NOT_HELPFUL}, 2 No preemption victims found for incoming pod.")
    # freeing resources retries the pod
    await client.delete(POD, "a", "default", grace_period_seconds=0)
    assert await node_of(client, "big") in ("small1", "small2")


async def test_static_local_volume_pins_the_pod(client):
    await client.create(SC, storage_class("local", "kubernetes.io/no-provisioner"))
    for n in ("n1", "n2", "n3"):
        await client.create(NODE, node(n))
    await client.create(PV, local_pv("pv-on-n2", "n2"))

    async def available():
        pv = await client.get(PV, "pv-on-n2")
        return pv.get("status", {}).get("phase") == "Available"
    await eventually(available)
    await client.create(PVC, claim("data", cls="local"), "default")
    await client.create(POD, pod("user", claims=["data"]), "default")
    assert await node_of(client, "user") == "n2"
    c = await client.get(PVC, "data", "default")
    assert c["spec"]["volumeName"] == "pv-on-n2" and c["status"]["phase"] == "Bound"
    pv = await client.get(PV, "pv-on-n2")
    assert pv["spec"]["claimRef"]["name"] == "data"
    assert pv["spec"]["claimRef"]["uid"] == c["metadata"]["uid"]

    # a second pod of the same bound claim follows the volume; with n2 cordoned it cannot
    n2 = await client.get(NODE, "n2")
    n2["spec"]["unschedulable"] = True
    await client.update(NODE, n2)
    await client.create(POD, pod("second", claims=["data"]), "default")
    cond = await unschedulable(client, "second")
    assert cond["message"] == (
        "0/3 nodes are available: 1 node(s) were unschedulable, 2 node(s) had volume node "
        "affinity conflict. preemption: 0/3 nodes are "
        f"available: 3 {PREEMPT_NOT_HELPFUL}.")


async def test_wffc_static_volume_claimref_written_by_scheduler(client):
    await client.create(SC, storage_class("local", "kubernetes.io/no-provisioner"))
    await client.create(NODE, node("n1"))
    await client.create(NODE, node("n2"))
    await client.create(PV, local_pv("small-n1", "n1", size="1Gi"))
    await client.create(PV, local_pv("big-n2", "n2", size="5Gi"))
    await client.create(PVC, claim("want3", size="3Gi", cls="local"), "default")
    await client.create(POD, pod("p", claims=["want3"]), "default")
    assert await node_of(client, "p") == "n2"
    pv = await client.get(PV, "big-n2")
    assert pv["spec"]["claimRef"]["name"] == "want3"
    assert pv["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] == "yes"
    assert (await client.get(PVC, "want3", "default"))["status"]["phase"] == "Bound"
    # no volume left that fits, and the class cannot provision
    await client.create(PVC, claim("want2", size="2Gi", cls="local"), "default")
    await client.create(POD, pod("q", claims=["want2"]), "default")
    cond = await unschedulable(client, "q")
    assert cond["message"].startswith(
        "0/2 nodes are available: 2 node(s) didn't find available persistent volumes to bind.")


async def test_unbound_immediate_and_missing_claims(client):
    await client.create(NODE, node("n1"))
    await client.create(SC, storage_class("slow", "example.com/slow", mode="Immediate"))
    await client.create(PVC, claim("imm", cls="slow"), "default")
    await client.create(POD, pod("waits", claims=["imm"]), "default")
    cond = await unschedulable(client, "waits")
    assert cond["message"] == (
        "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims. "
        f"preemption: 0/1 nodes are available: 1 {PREEMPT_NOT_HELPFUL}.")
    await client.create(POD, pod("lost", claims=["nope"]), "default")
    cond = await unschedulable(client, "lost")
    assert cond["message"] == (
        '0/1 nodes are available: persistentvolumeclaim "nope" not found. '
        f"preemption: 0/1 nodes are available: 1 {PREEMPT_NOT_HELPFUL}.")
    # the claim appears (with a volume to bind): the pod is retried and scheduled
    await client.create(PV, {"apiVersion": "v1", "kind": "PersistentVolume",
                             "metadata": {"name": "hp"},
                             "spec": {"capacity": {"storage": "1Gi"},
                                      "accessModes": ["ReadWriteOnce"],
                                      "hostPath": {"path": "/tmp/hp"}}})
    await client.create(PVC, claim("nope", cls=""), "default")
    assert await node_of(client, "lost") == "n1"


async def test_no_nodes(client):
    await client.create(POD, pod("alone"), "default")
    cond = await unschedulable(client, "alone")
    assert cond["message"] == "no nodes available to schedule pods"
    await client.create(NODE, node("late"))
    assert await node_of(client, "alone") == "late"


async def test_wffc_provisioning_sets_selected_node(api_server, tmp_path):
    prov = functools.partial(LocalProvisioner, node="n2", loop_ok=False,
                             data_dir=str(tmp_path / "data"))
    binder = functools.partial(PersistentVolumeBinder, resync_period=1.0)
    async with running_controllers(api_server.url, Scheduler, binder, prov) as c:
        await c.create(SC, storage_class("fast", LP.PROVISIONER))
        await c.create(NODE, node("n1", labels={"zone": "a"}))
        await c.create(NODE, node("n2", labels={"zone": "b"}))
        # only zone b may hold this class's volumes
        sc = storage_class("zoned", LP.PROVISIONER, allowedTopologies=[
            {"matchLabelExpressions": [{"key": "zone", "values": ["b"]}]}])
        await c.create(SC, sc)
        await c.create(PVC, claim("d", size="8Mi", cls="zoned"), "default")
        await c.create(POD, pod("p", claims=["d"]), "default")
        assert await node_of(c, "p") == "n2"
        cl = await c.get(PVC, "d", "default")
        assert cl["metadata"]["annotations"][ANN_SELECTED] == "n2"
        assert cl["status"]["phase"] == "Bound"
        pv = await c.get(PV, cl["spec"]["volumeName"])
        assert pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0][
            "matchExpressions"][0]["values"] == ["n2"]
        await asyncio.sleep(0)
        assert await get_or_none(c, PVC, "d", "default") is not None


async def test_many_pods_at_once_never_overcommit(client):
    await client.create(NODE, node("a", cpu="1"))
    await client.create(NODE, node("b", cpu="1"))
    await asyncio.gather(*(client.create(POD, pod(f"w{i}", cpu="300m"), "default")
                           for i in range(10)))

    async def settled():
        items = (await client.list(POD, "default"))["items"]
        placed = [p["spec"]["nodeName"] for p in items if p["spec"].get("nodeName")]
        waiting = [p for p in items if any(
            c["type"] == "PodScheduled" and c["status"] == "False"
            for c in p.get("status", {}).get("conditions") or ())]
        return (placed, waiting) if len(placed) + len(waiting) == 10 else None
    placed, waiting = await eventually(settled, timeout=20)
    assert sorted(placed) == ["a"] * 3 + ["b"] * 3
    assert {c["message"] for p in waiting for c in p["status"]["conditions"]} == {
        "0/2 nodes are available: 2 Insufficient cpu. "
        "preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod."}


async def test_one_static_volume_two_claimants(client):
    await client.create(SC, storage_class("local", "kubernetes.io/no-provisioner"))
    await client.create(NODE, node("n1"))
    await client.create(PV, local_pv("only", "n1"))
    for name in ("c1", "c2"):
        await client.create(PVC, claim(name, cls="local"), "default")
    await asyncio.gather(client.create(POD, pod("p1", claims=["c1"]), "default"),
                         client.create(POD, pod("p2", claims=["c2"]), "default"))

    async def outcome():
        got = {}
        for name in ("p1", "p2"):
            p = await client.get(POD, name, "default")
            conds = {c["type"]: c for c in p.get("status", {}).get("conditions") or ()}
            if p["spec"].get("nodeName"):
                got[name] = "bound"
            elif conds.get("PodScheduled", {}).get("status") == "False":
                got[name] = conds["PodScheduled"]["message"]
        return got if len(got) == 2 else None
    got = await eventually(outcome, timeout=20)
    assert sorted(got.values())[1] == "bound"
    assert sorted(got.values())[0].startswith(
        "0/1 nodes are available: 1 node(s) didn't find available persistent volumes to bind.")


async def test_read_write_once_pod_claim_in_use(client):
    await client.create(NODE, node("n1"))
    await client.create(PV, {"apiVersion": "v1", "kind": "PersistentVolume",
                             "metadata": {"name": "solo"},
                             "spec": {"capacity": {"storage": "1Gi"},
                                      "accessModes": ["ReadWriteOncePod"],
                                      "hostPath": {"path": "/tmp/solo"}}})
    c = claim("solo", cls="")
    c["spec"]["accessModes"] = ["ReadWriteOncePod"]
    await client.create(PVC, c, "default")

    async def bound():
        return (await client.get(PVC, "solo", "default"))["status"].get("phase") == "Bound"
    await eventually(bound)
    await client.create(POD, pod("first", claims=["solo"]), "default")
    assert await node_of(client, "first") == "n1"
    await client.create(POD, pod("second", claims=["solo"]), "default")
    cond = await unschedulable(client, "second")
    assert cond["message"].startswith(
        "0/1 nodes are available: 1 node has pod using PersistentVolumeClaim with the same "
        "name and ReadWriteOncePod access mode.")
    await client.delete(POD, "first", "default", grace_period_seconds=0)
    assert await node_of(client, "second") == "n1"


async def test_volume_bind_timeout_is_reported_and_retried(api_server):
    sched = functools.partial(Scheduler, bind_timeout=0.5)
    binder = functools.partial(PersistentVolumeBinder, resync_period=1.0)
    async with running_controllers(api_server.url, sched, binder) as c:
        await c.create(SC, storage_class("never", "example.com/never"))
        await c.create(NODE, node("n1"))
        await c.create(PVC, claim("d", cls="never"), "default")
        await c.create(POD, pod("p", claims=["d"]), "default")

        async def failed():
            p = await c.get(POD, "p", "default")
            for cond in p.get("status", {}).get("conditions") or ():
                if cond["type"] == "PodScheduled" and cond["reason"] == "SchedulerError":
                    return cond
            return None
        cond = await eventually(failed, timeout=20)
        assert cond["message"] == ('running PreBind plugin "VolumeBinding": binding volumes: '
                                   "context deadline exceeded")
        cl = await c.get(PVC, "d", "default")
        assert cl["metadata"]["annotations"][ANN_SELECTED] == "n1"
        # the provisioner answers late: the retried pod then binds
        await c.create(PV, {"apiVersion": "v1", "kind": "PersistentVolume",
                            "metadata": {"name": f"pvc-{cl['metadata']['uid']}"},
                            "spec": {"capacity": {"storage": "1Gi"},
                                     "accessModes": ["ReadWriteOnce"],
                                     "storageClassName": "never",
                                     "hostPath": {"path": "/tmp/never"},
                                     "claimRef": {"kind": "PersistentVolumeClaim",
                                                  "namespace": "default", "name": "d",
                                                  "uid": cl["metadata"]["uid"]}}})
        assert await node_of(c, "p") == "n1"
