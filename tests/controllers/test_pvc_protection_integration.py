"""pvc-protection and pv-protection against the real API server: a deleted claim stays
Terminating while a scheduled pod uses it, an unused one goes at once, a deleted Bound volume
stays until its phase changes, and objects missing the finalizer get it back."""

from __future__ import annotations

import asyncio

import pytest

from k1s.api import registry
from k1s.client.rest import APIClient
from k1s.controllers.context import ControllerContext
from k1s.controllers.pv_protection.controller import PVProtectionController
from k1s.controllers.pv_protection.planner import FINALIZER as PV_FINALIZER
from k1s.controllers.pvc_protection.controller import PVCProtectionController
from k1s.controllers.pvc_protection.planner import FINALIZER as PVC_FINALIZER
from ctrl_util import eventually, get_or_none, running_controllers

PVC = registry.core("persistentvolumeclaims")
PV = registry.core("persistentvolumes")
POD = registry.core("pods")
NS = "default"
SETTLE = 0.5        # how long a claim must stay put to count as held


@pytest.fixture
async def client(api_server):
    async with running_controllers(api_server.url, PVCProtectionController,
                                   PVProtectionController) as c:
        yield c






async def make_claim(c: APIClient, name: str) -> dict:
    await c.create(PVC, {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                         "metadata": {"name": name},
                         "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "",
                                  "resources": {"requests": {"storage": "1Gi"}}}}, NS)
    return await has_finalizer(c, PVC, name, PVC_FINALIZER, NS)


async def has_finalizer(c, r, name, finalizer, ns=None) -> dict:
    async def check():
        obj = await get_or_none(c, r, name, ns)
        return obj if obj and finalizer in (obj["metadata"].get("finalizers") or ()) else None
    check.__name__ = f"{name} has {finalizer}"
    return await eventually(check)


async def make_pod(c: APIClient, name: str, claim: str, *, node: str | None = "node-1",
                   phase: str = "Running") -> dict:
    spec = {"containers": [{"name": "c", "image": "busybox"}],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]}
    if node:
        spec["nodeName"] = node
    await c.create(POD, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                         "spec": spec}, NS)
    return await c.patch(POD, name, {"status": {"phase": phase}}, NS, subresource="status")


async def gone(c, r, name, ns=None) -> None:
    async def check():
        return await get_or_none(c, r, name, ns) is None
    check.__name__ = f"{name} gone"
    await eventually(check)


async def still_terminating(c, r, name, finalizer, ns=None) -> dict:
    """The object stays, marked for deletion and held by `finalizer`, for SETTLE seconds."""
    await asyncio.sleep(SETTLE)
    obj = await c.get(r, name, ns)
    assert obj["metadata"].get("deletionTimestamp")
    assert finalizer in obj["metadata"]["finalizers"]
    return obj


async def test_unused_claim_goes_at_once(client):
    await make_claim(client, "lonely")
    await client.delete(PVC, "lonely", NS)
    await gone(client, PVC, "lonely", NS)


async def test_claim_used_by_running_pod_waits_for_pod_deletion(client):
    await make_claim(client, "data")
    await make_pod(client, "user", "data")
    await make_pod(client, "bystander", "other")
    deleted = await client.delete(PVC, "data", NS)
    assert deleted["metadata"]["deletionTimestamp"]
    await still_terminating(client, PVC, "data", PVC_FINALIZER, NS)
    # A graceful delete leaves the scheduled pod in place (its node agent finishes it): the
    # pod still exists and still holds the claim.
    await client.delete(POD, "user", NS)
    assert (await client.get(POD, "user", NS))["metadata"]["deletionTimestamp"]
    await still_terminating(client, PVC, "data", PVC_FINALIZER, NS)
    await client.delete(POD, "user", NS, grace_period_seconds=0)
    await gone(client, PVC, "data", NS)


async def test_completed_pod_still_pins_claim_as_upstream(client):
    # Upstream podUsesPVC ignores the phase (kubernetes#123320 to change it was not merged):
    # a Succeeded pod keeps the claim until the pod object is gone.
    await make_claim(client, "results")
    await make_pod(client, "job-pod", "results")
    await client.delete(PVC, "results", NS)
    await client.patch(POD, "job-pod", {"status": {"phase": "Succeeded"}}, NS,
                       subresource="status")
    await still_terminating(client, PVC, "results", PVC_FINALIZER, NS)
    await client.delete(POD, "job-pod", NS)     # finished pods are deleted at once
    await gone(client, PVC, "results", NS)


async def test_unscheduled_pod_does_not_hold_claim(client):
    await make_claim(client, "pending")
    await make_pod(client, "waiting", "pending", node=None, phase="Pending")
    await client.delete(PVC, "pending", NS)
    await gone(client, PVC, "pending", NS)


async def test_pod_created_after_delete_is_seen(client):
    # The claim is deleted while a pod naming it already exists: found by the cache or the
    # live list, either way the claim is kept.
    await make_claim(client, "late")
    await make_pod(client, "late-user", "late")
    await client.delete(PVC, "late", NS)
    await still_terminating(client, PVC, "late", PVC_FINALIZER, NS)
    await client.delete(POD, "late-user", NS, grace_period_seconds=0)
    await gone(client, PVC, "late", NS)


async def test_missing_claim_finalizer_is_added_back(client):
    claim = await make_claim(client, "legacy")
    await client.patch(PVC, "legacy", {"metadata": {"finalizers": ["example.com/keep"]}}, NS)
    got = await has_finalizer(client, PVC, "legacy", PVC_FINALIZER, NS)
    assert got["metadata"]["finalizers"] == ["example.com/keep", PVC_FINALIZER]
    assert got["metadata"]["uid"] == claim["metadata"]["uid"]


def pv_body(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                     "persistentVolumeReclaimPolicy": "Retain",
                     "hostPath": {"path": f"/tmp/{name}"}}}


async def test_bound_pv_waits_for_phase_change(client):
    await client.create(PV, pv_body("vol"))
    await has_finalizer(client, PV, "vol", PV_FINALIZER)
    await client.patch(PV, "vol", {"status": {"phase": "Bound"}}, subresource="status")
    await client.delete(PV, "vol")
    await still_terminating(client, PV, "vol", PV_FINALIZER)
    await client.patch(PV, "vol", {"status": {"phase": "Released"}}, subresource="status")
    await gone(client, PV, "vol")


async def test_unbound_pv_goes_at_once(client):
    await client.create(PV, pv_body("free"))
    await has_finalizer(client, PV, "free", PV_FINALIZER)
    await client.delete(PV, "free")
    await gone(client, PV, "free")


async def test_missing_pv_finalizer_is_added_back(client):
    await client.create(PV, pv_body("old"))
    await has_finalizer(client, PV, "old", PV_FINALIZER)
    await client.patch(PV, "old", {"metadata": {"finalizers": None}})
    got = await has_finalizer(client, PV, "old", PV_FINALIZER)
    assert got["metadata"]["finalizers"] == [PV_FINALIZER]


async def test_live_list_overrules_a_lagging_pod_cache(api_server):
    # The pod informer is never started, standing for one that has not seen the pod yet: the
    # live list must still find the user and keep the claim; once the pod is gone, it goes.
    c = APIClient(api_server.url)
    ctx = ControllerContext.create(c, "k1s-test")
    try:
        ctrl = PVCProtectionController(ctx)
        await ctrl.claims.start()
        await make_claim(c, "racy")
        await c.patch(PVC, "racy", {"metadata": {"finalizers": [PVC_FINALIZER]}}, NS)
        await make_pod(c, "racer", "racy")
        await c.delete(PVC, "racy", NS)

        async def cached_deleting():
            return (ctrl.claims.get("racy", NS) or {}).get("metadata", {}).get(
                "deletionTimestamp")
        await eventually(cached_deleting)
        assert ctrl.pods.by_index("pvcprotection-pod-pvc", f"{NS}/racy") == []
        assert (await ctrl.sync(f"{NS}/racy")).value == "keep"
        assert PVC_FINALIZER in (await c.get(PVC, "racy", NS))["metadata"]["finalizers"]

        await c.delete(POD, "racer", NS, grace_period_seconds=0)
        assert (await ctrl.sync(f"{NS}/racy")).value == "remove-finalizer"
        await gone(c, PVC, "racy", NS)
    finally:
        await ctx.close()
        await c.close()
