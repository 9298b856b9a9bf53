"""The binder against the real API server: the seed's RBD volume and claim, smallest fit,
selectors, an explained Pending, release with Retain and reuse, pre-binding both ways,
retroactive default class and the provisioner handshake."""

from __future__ import annotations

import asyncio
import functools
import os

import pytest
import yaml

from k1s.client.errors import ApiError
from k1s.controllers.pv_binder.controller import PV, PVC, SC, PersistentVolumeBinder
from k1s.controllers.pv_binder import planner as P
from k1s.api import registry
from ctrl_util import eventually, running_controllers

# the project's shared/ folder sits beside the checkout (CI lays a copy there too)
SEED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared",
                    "scenarios", "seed")
EVENTS = registry.core("events")


@pytest.fixture
async def client(api_server):
    binder = functools.partial(PersistentVolumeBinder, resync_period=1.0)
    async with running_controllers(api_server.url, binder) as c:
        yield c




def volume(name, cap, modes=("ReadWriteOnce",), cls=None, labels=None, claim_ref=None):
    s = {"capacity": {"storage": cap}, "accessModes": list(modes),
         "hostPath": {"path": f"/tmp/{name}"}}
    if cls is not None:
        s["storageClassName"] = cls
    if claim_ref:
        s["claimRef"] = claim_ref
    return {"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": name, "labels": labels or {}}, "spec": s}


def claim(name, req, modes=("ReadWriteOnce",), cls=None, selector=None, volume_name=None):
    s = {"accessModes": list(modes), "resources": {"requests": {"storage": req}}}
    if cls is not None:
        s["storageClassName"] = cls
    if selector:
        s["selector"] = selector
    if volume_name:
        s["volumeName"] = volume_name
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": "default"}, "spec": s}


async def phase_of(c, r, name, ns=None):
    try:
        return (await c.get(r, name, ns)).get("status", {}).get("phase")
    except ApiError as e:
        if e.is_not_found():
            return None
        raise


async def bound_claim(c, name):
    async def check():
        obj = await c.get(PVC, name, "default")
        return obj if obj["status"].get("phase") == "Bound" else None
    return await eventually(check)


async def test_seed_rbd_volume_and_claim_bind(client):
    with open(os.path.join(SEED, "pv-volume.yaml")) as f:
        await client.create(PV, yaml.safe_load(f))      # unknown rbd fields: dropped (Warn)
    with open(os.path.join(SEED, "pv-claim.yaml")) as f:
        await client.create(PVC, yaml.safe_load(f), "default")
    got = await bound_claim(client, "pv-claim")
    assert got["spec"]["volumeName"] == "pv-volume"
    assert got["status"]["capacity"] == {"storage": "10Gi"}
    assert got["status"]["accessModes"] == ["ReadWriteOnce"]
    assert got["metadata"]["annotations"][P.ANN_BIND_COMPLETED] == "yes"
    assert got["metadata"]["annotations"][P.ANN_BOUND_BY_CONTROLLER] == "yes"
    pv = await client.get(PV, "pv-volume")
    assert pv["status"]["phase"] == "Bound" and pv["status"]["lastPhaseTransitionTime"]
    assert pv["spec"]["claimRef"]["uid"] == got["metadata"]["uid"]
    assert pv["metadata"]["annotations"][P.ANN_BOUND_BY_CONTROLLER] == "yes"


async def test_smallest_fit_wins(client):
    for name, cap in (("big", "20Gi"), ("mid", "5Gi"), ("small", "2Gi"), ("tiny", "500Mi")):
        await client.create(PV, volume(name, cap))
    await client.create(PVC, claim("c", "1Gi"), "default")
    got = await bound_claim(client, "c")
    assert got["spec"]["volumeName"] == "small"
    assert got["status"]["capacity"] == {"storage": "2Gi"}
    assert await phase_of(client, PV, "big") == "Available"


async def test_selector_picks_labelled_volume(client):
    await client.create(PV, volume("web", "1Gi", labels={"tier": "web"}))
    await client.create(PV, volume("db", "8Gi", labels={"tier": "db"}))
    await client.create(PVC, claim("c", "1Gi", selector={"matchLabels": {"tier": "db"}}),
                        "default")
    assert (await bound_claim(client, "c"))["spec"]["volumeName"] == "db"


async def test_class_mismatch_stays_pending_with_explanation(client):
    await client.create(PV, volume("fast-1", "10Gi", cls="fast"))
    await client.create(PV, volume("small-1", "1Mi", cls=""))
    await client.create(PVC, claim("c", "1Gi", cls=""), "default")

    async def explained():
        obj = await client.get(PVC, "c", "default")
        conds = [x for x in obj["status"].get("conditions") or () if x["type"] == "Bindable"]
        return conds[0] if conds and "considered" in conds[0]["message"] else None
    cond = await eventually(explained)
    assert cond["status"] == "False" and cond["reason"] == "FailedBinding"
    assert cond["message"] == (P.MSG_NO_CLASS + "; 2 volumes considered: 1 too small, "
                               "1 other class")
    assert await phase_of(client, PVC, "c", "default") == "Pending"

    async def event():
        evs = (await client.list(EVENTS, "default"))["items"]
        return [e for e in evs if e["reason"] == "FailedBinding"
                and e["involvedObject"]["name"] == "c"]
    evs = await eventually(event)
    assert evs[0]["message"].startswith(P.MSG_NO_CLASS)
    assert evs[0]["source"]["component"] == "persistentvolume-controller"


async def test_claim_deleted_releases_retained_volume_and_clearing_claimref_frees_it(client):
    await client.create(PV, volume("keep", "1Gi"))
    await client.create(PVC, claim("c", "1Gi"), "default")
    await bound_claim(client, "c")
    await client.delete(PVC, "c", "default")
    # a terminating claim still holds its volume; the pvc-protection controller (not running
    # here) would drop the finalizer once no pod uses it
    await asyncio.sleep(0.2)
    assert await phase_of(client, PV, "keep") == "Bound"
    await client.patch(PVC, "c", {"metadata": {"finalizers": None}}, "default")

    async def released():
        return await phase_of(client, PV, "keep") == "Released"
    await eventually(released)
    pv = await client.get(PV, "keep")
    assert pv["spec"]["claimRef"]["name"] == "c"        # Retain keeps the old claimRef
    await asyncio.sleep(0.3)
    assert await phase_of(client, PV, "keep") == "Released"
    pv["spec"].pop("claimRef")
    await client.update(PV, pv)

    async def available():
        return await phase_of(client, PV, "keep") == "Available"
    await eventually(available)


async def test_volume_name_prebinding(client):
    await client.create(PV, volume("small", "1Gi"))
    await client.create(PV, volume("chosen", "9Gi"))
    await client.create(PVC, claim("c", "1Gi", volume_name="chosen"), "default")
    got = await bound_claim(client, "c")
    assert got["spec"]["volumeName"] == "chosen"
    assert P.ANN_BOUND_BY_CONTROLLER not in got["metadata"]["annotations"]
    pv = await client.get(PV, "chosen")
    assert P.ANN_BOUND_BY_CONTROLLER in pv["metadata"]["annotations"]
    assert await phase_of(client, PV, "small") == "Available"


async def test_claim_ref_prebinding(client):
    await client.create(PV, volume("small", "1Gi"))
    await client.create(PV, volume("reserved", "9Gi", cls="other", claim_ref={
        "kind": "PersistentVolumeClaim", "namespace": "default", "name": "c"}))

    async def available():
        return await phase_of(client, PV, "reserved") == "Available"
    await eventually(available)
    await client.create(PVC, claim("c", "1Gi"), "default")
    got = await bound_claim(client, "c")
    assert got["spec"]["volumeName"] == "reserved"
    pv = await client.get(PV, "reserved")
    assert pv["spec"]["claimRef"]["uid"] == got["metadata"]["uid"]
    assert P.ANN_BOUND_BY_CONTROLLER not in (pv["metadata"].get("annotations") or {})


async def test_retroactive_default_class_then_external_provisioning(client):
    await client.create(PVC, claim("c", "1Gi"), "default")

    async def pending():
        obj = await client.get(PVC, "c", "default")
        return obj if obj["status"].get("conditions") else None
    obj = await eventually(pending)
    assert obj["spec"].get("storageClassName") is None
    await client.create(SC, {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                             "metadata": {"name": "gold", "annotations": {
                                 P.ANN_DEFAULT_CLASS: "true"}},
                             "provisioner": "example.com/gold"})

    async def handed_over():
        o = await client.get(PVC, "c", "default")
        ann = o["metadata"].get("annotations") or {}
        return o if ann.get(P.ANN_STORAGE_PROVISIONER) == "example.com/gold" else None
    o = await eventually(handed_over)
    assert o["spec"]["storageClassName"] == "gold"
    assert o["metadata"]["annotations"][P.ANN_BETA_STORAGE_PROVISIONER] == "example.com/gold"
    assert o["status"]["phase"] == "Pending"
    # the provisioner's answer: a PV pre-bound to the claim by uid; the binder completes it
    await client.create(PV, volume(f"pvc-{o['metadata']['uid']}", "1Gi", cls="gold", claim_ref={
        "kind": "PersistentVolumeClaim", "namespace": "default", "name": "c",
        "uid": o["metadata"]["uid"]}))
    got = await bound_claim(client, "c")
    assert got["spec"]["volumeName"] == f"pvc-{o['metadata']['uid']}"


async def test_wait_for_first_consumer_then_selected_node_and_provisioner(api_server):
    # the scheduler (not the binder) picks the node and writes selected-node, as upstream
    from k1s.scheduler.scheduler import Scheduler
    binder = functools.partial(PersistentVolumeBinder, resync_period=1.0)
    async with running_controllers(api_server.url, Scheduler, binder) as client:
        await _wffc_selected_node_then_provisioner(client)


async def _wffc_selected_node_then_provisioner(client):
    await client.create(SC, {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                             "metadata": {"name": "local"}, "provisioner": "example.com/local",
                             "volumeBindingMode": "WaitForFirstConsumer"})
    await client.create(registry.core("nodes"), {
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
        "status": {"conditions": [{"type": "Ready", "status": "True"}],
                   "allocatable": {"cpu": "2", "memory": "4Gi", "pods": "110"}}})
    await client.create(PVC, claim("c", "1Gi", cls="local"), "default")

    async def waiting():
        o = await client.get(PVC, "c", "default")
        conds = o["status"].get("conditions") or []
        return conds[0] if conds else None
    cond = await eventually(waiting)
    assert (cond["reason"], cond["message"]) == ("WaitForFirstConsumer", P.MSG_WFFC)
    await client.create(registry.core("pods"), {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}],
                 "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "c"}}]}},
        "default")

    async def handed_over():
        o = await client.get(PVC, "c", "default")
        ann = o["metadata"].get("annotations") or {}
        return ann if ann.get(P.ANN_STORAGE_PROVISIONER) else None
    ann = await eventually(handed_over)
    assert ann[P.ANN_SELECTED_NODE] == "n1"
    assert ann[P.ANN_STORAGE_PROVISIONER] == "example.com/local"
    # no external provisioner answers here: the pod stays unbound, waiting for its volume
    assert not (await client.get(registry.core("pods"), "p", "default"))["spec"].get("nodeName")


async def test_wffc_claim_names_the_pods_waiting_to_be_scheduled(client):
    # no scheduler runs here: the claim's consumers stay unscheduled and the binder says so,
    # naming only the pods that use this claim (found through its pod index)
    await client.create(SC, {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                             "metadata": {"name": "wffc-wait"}, "provisioner": "example.com/x",
                             "volumeBindingMode": "WaitForFirstConsumer"})
    await client.create(PVC, claim("wanted", "1Gi", cls="wffc-wait"), "default")
    await client.create(PVC, claim("other", "1Gi", cls="wffc-wait"), "default")

    def user(name, claim_name):
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": "default"},
                "spec": {"containers": [{"name": "c", "image": "busybox"}],
                         "volumes": [{"name": "d", "persistentVolumeClaim": {
                             "claimName": claim_name}}]}}
    for name, cl in (("u1", "wanted"), ("u2", "wanted"), ("x1", "other")):
        await client.create(registry.core("pods"), user(name, cl), "default")

    async def explained():
        o = await client.get(PVC, "wanted", "default")
        conds = [x for x in o["status"].get("conditions") or ()
                 if x.get("reason") == "WaitForPodScheduled"]
        return conds[0] if conds else None
    cond = await eventually(explained)
    assert cond["message"].startswith("waiting for pods u1,u2 to be scheduled")
