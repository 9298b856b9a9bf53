"""The garbage collector against the real API server: each propagation policy, a three-level
foreground chain, dangling and cross-namespace references."""

from __future__ import annotations

import asyncio

import pytest

from k1s.api import registry
from k1s.client.errors import ApiError
from k1s.client.rest import APIClient
from k1s.controllers.garbage_collector.controller import GarbageCollector
from ctrl_util import eventually, running_controllers

CM = registry.core("configmaps")
POD = registry.core("pods")
NS = registry.core("namespaces")
EVENTS = registry.core("events")
HOLD = "example.com/hold"


@pytest.fixture
async def client(api_server):
    async with running_controllers(api_server.url, GarbageCollector) as c:
        yield c




async def exists(c: APIClient, r, name: str, ns: str = "default") -> dict | None:
    try:
        return await c.get(r, name, ns)
    except ApiError as e:
        if e.is_not_found():
            return None
        raise


def owner_ref(obj: dict, block: bool = False) -> dict:
    ref = {"apiVersion": obj.get("apiVersion", "v1"), "kind": obj.get("kind", "ConfigMap"),
           "name": obj["metadata"]["name"], "uid": obj["metadata"]["uid"]}
    if block:
        ref["blockOwnerDeletion"] = True
    return ref


async def cm(c: APIClient, name: str, *owners: dict, finalizers=(), ns: str = "default") -> dict:
    md = {"name": name}
    if owners:
        md["ownerReferences"] = list(owners)
    if finalizers:
        md["finalizers"] = list(finalizers)
    return await c.create(CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": md,
                               "data": {"k": name}}, ns)


async def pod(c: APIClient, name: str, *owners: dict) -> dict:
    return await c.create(POD, {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "ownerReferences": list(owners)},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}}, "default")


async def release(c: APIClient, r, name: str, ns: str = "default") -> None:
    await c.patch(r, name, {"metadata": {"finalizers": None}}, ns)


async def test_background_deletes_dependents(client):
    owner = await cm(client, "owner")
    await cm(client, "dep-a", owner_ref(owner))
    await cm(client, "dep-b", owner_ref(owner, block=True))
    await pod(client, "dep-pod", owner_ref(owner))
    await client.delete(CM, "owner", "default", propagation_policy="Background")
    assert await exists(client, CM, "owner") is None      # Background: the owner goes at once

    async def dependents_gone():
        return all([await exists(client, CM, "dep-a") is None,
                    await exists(client, CM, "dep-b") is None,
                    await exists(client, POD, "dep-pod") is None])
    await eventually(dependents_gone)


async def test_foreground_waits_for_blocking_dependents(client):
    owner = await cm(client, "fg-owner")
    await cm(client, "fg-blocker", owner_ref(owner, block=True), finalizers=[HOLD])
    await cm(client, "fg-free", owner_ref(owner))
    await pod(client, "fg-pod", owner_ref(owner, block=True))
    await client.delete(CM, "fg-owner", "default", propagation_policy="Foreground")

    async def others_gone():
        return (await exists(client, CM, "fg-free") is None
                and await exists(client, POD, "fg-pod") is None)
    await eventually(others_gone)

    async def blocker_terminating():
        o = await exists(client, CM, "fg-blocker")
        return o is not None and o["metadata"].get("deletionTimestamp")
    await eventually(blocker_terminating)
    # the blocking dependent is held by another finalizer: the owner must wait for it
    await asyncio.sleep(0.3)
    o = await exists(client, CM, "fg-owner")
    assert o is not None and o["metadata"]["deletionTimestamp"]
    assert o["metadata"]["finalizers"] == ["foregroundDeletion"]

    await release(client, CM, "fg-blocker")

    async def owner_gone():
        return await exists(client, CM, "fg-owner") is None
    await eventually(owner_gone)


async def test_foreground_chain_of_three(client):
    top = await cm(client, "top")
    mid = await cm(client, "mid", owner_ref(top, block=True))
    await cm(client, "leaf", owner_ref(mid, block=True), finalizers=[HOLD])
    await client.delete(CM, "top", "default", propagation_policy="Foreground")

    async def mid_deleting_in_foreground():
        m = await exists(client, CM, "mid")
        return m is not None and m["metadata"].get("deletionTimestamp") and \
            "foregroundDeletion" in m["metadata"].get("finalizers", [])
    await eventually(mid_deleting_in_foreground)

    async def leaf_terminating():
        o = await exists(client, CM, "leaf")
        return o is not None and o["metadata"].get("deletionTimestamp")
    await eventually(leaf_terminating)
    await asyncio.sleep(0.3)
    assert await exists(client, CM, "top") is not None      # still waiting for the chain
    assert await exists(client, CM, "mid") is not None

    await release(client, CM, "leaf")

    async def all_gone():
        return all([await exists(client, CM, n) is None for n in ("top", "mid", "leaf")])
    await eventually(all_gone)


async def test_orphan_keeps_dependents_without_the_reference(client):
    owner = await cm(client, "orph-owner")
    keeper = await cm(client, "keeper")
    await cm(client, "orph-a", owner_ref(owner, block=True))
    await cm(client, "orph-b", owner_ref(owner), owner_ref(keeper))
    await pod(client, "orph-pod", owner_ref(owner))
    await client.delete(CM, "orph-owner", "default", propagation_policy="Orphan")

    async def owner_gone():
        return await exists(client, CM, "orph-owner") is None
    await eventually(owner_gone)
    a = await exists(client, CM, "orph-a")
    b = await exists(client, CM, "orph-b")
    p = await exists(client, POD, "orph-pod")
    assert a is not None and not a["metadata"].get("ownerReferences")
    assert p is not None and not p["metadata"].get("ownerReferences")
    assert b is not None and [r["uid"] for r in b["metadata"]["ownerReferences"]] == \
        [keeper["metadata"]["uid"]]
    await asyncio.sleep(0.3)     # and the collector does not come back for them
    assert await exists(client, CM, "orph-a") is not None


async def test_dangling_references(client):
    alive = await cm(client, "alive")
    ghost = {"apiVersion": "v1", "kind": "ConfigMap", "name": "ghost",
             "uid": "00000000-0000-0000-0000-000000000001"}
    # same name as a live object, other UID: that owner is absent too
    impostor = dict(owner_ref(alive), uid="00000000-0000-0000-0000-000000000002")
    await cm(client, "only-ghost", ghost)
    await cm(client, "only-impostor", impostor)
    await cm(client, "mixed", owner_ref(alive), ghost)

    async def settled():
        m = await exists(client, CM, "mixed")
        return (await exists(client, CM, "only-ghost") is None
                and await exists(client, CM, "only-impostor") is None
                and m is not None and len(m["metadata"].get("ownerReferences") or []) == 1)
    await eventually(settled)
    m = await exists(client, CM, "mixed")
    assert m["metadata"]["ownerReferences"][0]["uid"] == alive["metadata"]["uid"]
    assert await exists(client, CM, "alive") is not None


async def test_cross_namespace_owner_is_absent_and_reported(client):
    await client.create(NS, {"apiVersion": "v1", "kind": "Namespace",
                             "metadata": {"name": "other"}})
    owner = await cm(client, "x-owner", ns="other")
    await asyncio.sleep(0.2)     # let the collector see the owner in its namespace first
    await cm(client, "x-dep", owner_ref(owner))      # in "default"

    async def dep_gone():
        return await exists(client, CM, "x-dep") is None
    await eventually(dep_gone)
    assert await exists(client, CM, "x-owner", "other") is not None

    async def warned():
        evs = (await client.list(EVENTS, "default"))["items"]
        return [e for e in evs if e.get("reason") == "OwnerRefInvalidNamespace"]
    ev = (await eventually(warned))[0]
    assert ev["type"] == "Warning"
    assert ev["involvedObject"]["name"] == "x-dep"
    assert ev["source"]["component"] == "garbage-collector-controller"
    assert ev["message"] == (f'ownerRef [v1/ConfigMap, namespace: default, name: x-owner, '
                             f'uid: {owner["metadata"]["uid"]}] does not exist in namespace '
                             f'"default"')
