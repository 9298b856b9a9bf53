"""The namespace controller against the real API server: a deleted namespace is emptied, its
status explains what remains, and it disappears once its content is gone."""

from __future__ import annotations

import asyncio

import pytest

from k1s.api import registry
from k1s.client.errors import ApiError
from k1s.client.rest import APIClient
from k1s.controllers.namespace.controller import NamespaceController
from ctrl_util import eventually, get_or_none, running_controllers

NS = registry.core("namespaces")
CM = registry.core("configmaps")
SECRET = registry.core("secrets")
POD = registry.core("pods")
SA = registry.core("serviceaccounts")
LEASE = registry.get("leases.coordination.k8s.io")
HOLD = "example.com/hold"


@pytest.fixture
async def client(api_server):
    async with running_controllers(api_server.url, NamespaceController) as c:
        yield c






async def fill(c: APIClient, ns: str) -> None:
    await c.create(NS, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    await c.create(CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"},
                        "data": {"a": "b"}}, ns)
    await c.create(SECRET, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                            "stringData": {"p": "w"}}, ns)
    await c.create(SA, {"apiVersion": "v1", "kind": "ServiceAccount",
                        "metadata": {"name": "robot"}}, ns)
    await c.create(POD, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                         "spec": {"containers": [{"name": "c", "image": "busybox"}]}}, ns)
    await c.create(LEASE, {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                           "metadata": {"name": "l"}, "spec": {"holderIdentity": "x"}}, ns)


async def test_namespace_deletion_removes_content_then_namespace(client):
    await fill(client, "doomed")
    await client.create(NS, {"apiVersion": "v1", "kind": "Namespace",
                             "metadata": {"name": "bystander"}})
    await client.create(CM, {"apiVersion": "v1", "kind": "ConfigMap",
                             "metadata": {"name": "cfg"}}, "bystander")
    deleted = await client.delete(NS, "doomed")
    assert deleted["status"]["phase"] == "Terminating"

    async def namespace_gone():
        return await get_or_none(client, NS, "doomed") is None
    await eventually(namespace_gone)
    for r, name in ((CM, "cfg"), (SECRET, "s"), (SA, "robot"), (POD, "p"), (LEASE, "l")):
        assert await get_or_none(client, r, name, "doomed") is None, r.plural
    # other namespaces are untouched
    assert await get_or_none(client, CM, "cfg", "bystander") is not None
    assert await get_or_none(client, NS, "bystander") is not None


async def test_namespace_waits_for_finalized_content_and_says_why(client):
    await fill(client, "held")
    await client.create(CM, {"apiVersion": "v1", "kind": "ConfigMap",
                             "metadata": {"name": "sticky", "finalizers": [HOLD]}}, "held")
    await client.delete(NS, "held")

    async def explained():
        ns = await get_or_none(client, NS, "held")
        conds = {c["type"]: c for c in (ns or {}).get("status", {}).get("conditions", [])}
        return conds if conds.get("NamespaceContentRemaining", {}).get("status") == "True" \
            else None
    conds = await eventually(explained)
    assert conds["NamespaceContentRemaining"]["reason"] == "SomeResourcesRemain"
    assert conds["NamespaceContentRemaining"]["message"] == \
        "Some resources are remaining: configmaps. has 1 resource instances"
    assert conds["NamespaceFinalizersRemaining"]["status"] == "True"
    assert conds["NamespaceFinalizersRemaining"]["reason"] == "SomeFinalizerRemain"
    assert conds["NamespaceFinalizersRemaining"]["message"] == \
        f"Some finalizers are remaining: {HOLD} in 1 resource instances"
    assert conds["NamespaceDeletionContentFailure"]["status"] == "False"
    assert conds["NamespaceDeletionContentFailure"]["reason"] == "ContentDeleted"
    assert conds["NamespaceDeletionDiscoveryFailure"]["reason"] == "ResourcesDiscovered"
    for c in conds.values():
        assert c["lastTransitionTime"]

    ns = await client.get(NS, "held")
    assert ns["status"]["phase"] == "Terminating"
    assert ns["spec"]["finalizers"] == ["kubernetes"]
    assert await get_or_none(client, CM, "cfg", "held") is None     # the rest is gone already
    sticky = await client.get(CM, "sticky", "held")
    assert sticky["metadata"]["deletionTimestamp"]

    await client.patch(CM, "sticky", {"metadata": {"finalizers": None}}, "held")

    async def namespace_gone():
        return await get_or_none(client, NS, "held") is None
    await eventually(namespace_gone)


async def test_creating_in_a_terminating_namespace_is_refused_and_namespace_still_goes(client):
    await fill(client, "closing")
    await client.create(CM, {"apiVersion": "v1", "kind": "ConfigMap",
                             "metadata": {"name": "sticky", "finalizers": [HOLD]}}, "closing")
    await client.delete(NS, "closing")
    with pytest.raises(ApiError) as err:
        await client.create(CM, {"apiVersion": "v1", "kind": "ConfigMap",
                                 "metadata": {"name": "late"}}, "closing")
    assert err.value.code == 403
    await client.patch(CM, "sticky", {"metadata": {"finalizers": None}}, "closing")

    async def namespace_gone():
        return await get_or_none(client, NS, "closing") is None
    await eventually(namespace_gone)


async def test_registry_controllers_cooperate_on_a_namespace_with_owners(api_server):
    """Started the way `k1s up` starts them: the namespace controller deletes the content while
    the collector finishes a foreground deletion that was already under way."""
    from k1s.controllers import CONTROLLERS
    from k1s.controllers.manager import start_all

    assert {"namespace", "garbage-collector"} <= set(CONTROLLERS)
    manager, tasks = await start_all(api_server.url, only=["namespace", "garbage-collector"])
    c = APIClient(api_server.url)
    try:
        await c.create(NS, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "mix"}})
        owner = await c.create(CM, {"apiVersion": "v1", "kind": "ConfigMap",
                                    "metadata": {"name": "owner"}}, "mix")
        ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
               "uid": owner["metadata"]["uid"], "blockOwnerDeletion": True}
        for i in range(3):
            await c.create(CM, {"apiVersion": "v1", "kind": "ConfigMap",
                                "metadata": {"name": f"dep-{i}", "ownerReferences": [ref]}}, "mix")
        await c.create(CM, {"apiVersion": "v1", "kind": "ConfigMap",
                            "metadata": {"name": "held", "ownerReferences": [ref],
                                         "finalizers": [HOLD]}}, "mix")
        await c.delete(CM, "owner", "mix", propagation_policy="Foreground")

        async def only_held_left():
            items = (await c.list(CM, "mix"))["items"]
            return sorted(i["metadata"]["name"] for i in items) == ["held", "owner"]
        await eventually(only_held_left)            # the collector took the free dependents

        await c.delete(NS, "mix")
        await asyncio.sleep(0.2)
        assert (await c.get(NS, "mix"))["status"]["phase"] == "Terminating"
        await c.patch(CM, "held", {"metadata": {"finalizers": None}}, "mix")

        async def namespace_gone():
            return await get_or_none(c, NS, "mix") is None
        await eventually(namespace_gone)
        assert await get_or_none(c, CM, "owner", "mix") is None
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await manager.close()
        await c.close()
