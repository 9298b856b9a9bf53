"""APIClient against the real in-process API server: CRUD, every patch type, errors, watch."""

import asyncio

import pytest

from k1s.client.errors import ApiError
from k1s.client.rest import APIClient

CM = "configmaps"


def configmap(name, ns, data=None, labels=None):
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": ns, "labels": labels or {}},
            "data": data or {}}


async def test_create_get_list_update_delete(client, namespace):
    created = await client.create(CM, configmap("a", namespace, {"k": "1"}, {"app": "x"}))
    assert created["metadata"]["uid"] and created["metadata"]["resourceVersion"]
    await client.create(CM, configmap("b", namespace, {"k": "2"}, {"app": "y"}))

    got = await client.get(CM, "a", namespace)
    assert got["data"] == {"k": "1"}

    listed = await client.list(CM, namespace, label_selector="app=x")
    assert [i["metadata"]["name"] for i in listed["items"]] == ["a"]
    assert listed["metadata"]["resourceVersion"]

    got["data"]["k"] = "changed"
    updated = await client.update(CM, got)
    assert updated["data"] == {"k": "changed"}
    assert int(updated["metadata"]["resourceVersion"]) > int(got["metadata"]["resourceVersion"])

    await client.delete(CM, "a", namespace)
    with pytest.raises(ApiError) as err:
        await client.get(CM, "a", namespace)
    assert err.value.code == 404 and err.value.is_not_found()
    assert err.value.status["kind"] == "Status"


async def test_list_pages_with_limit_and_continue(client, namespace):
    for i in range(5):
        await client.create(CM, configmap(f"p{i}", namespace))
    names, token, pages = [], None, 0
    while True:
        page = await client.list(CM, namespace, limit=2, continue_=token)
        pages += 1
        names += [i["metadata"]["name"] for i in page["items"]]
        token = page["metadata"].get("continue")
        if not token:
            break
    assert sorted(names) == [f"p{i}" for i in range(5)] and pages == 3


@pytest.mark.parametrize("patch_type,patch,expected", [
    ("merge", {"data": {"b": "2", "a": None}}, {"b": "2"}),
    ("strategic", {"data": {"b": "2"}}, {"a": "1", "b": "2"}),
    ("json", [{"op": "replace", "path": "/data/a", "value": "9"},
              {"op": "add", "path": "/data/c", "value": "3"}], {"a": "9", "c": "3"}),
])
async def test_patch_types(client, namespace, patch_type, patch, expected):
    await client.create(CM, configmap("p", namespace, {"a": "1"}))
    out = await client.patch(CM, "p", patch, namespace, patch_type=patch_type)
    assert out["data"] == expected
    assert (await client.get(CM, "p", namespace))["data"] == expected


async def test_server_side_apply_creates_and_conflicts(client, namespace):
    body = configmap("ssa", namespace, {"a": "1"})
    out = await client.patch(CM, "ssa", body, namespace, patch_type="apply",
                             field_manager="first")
    assert out["data"] == {"a": "1"}
    other = configmap("ssa", namespace, {"a": "2"})
    with pytest.raises(ApiError) as err:
        await client.patch(CM, "ssa", other, namespace, patch_type="apply",
                           field_manager="second")
    assert err.value.code == 409
    forced = await client.patch(CM, "ssa", other, namespace, patch_type="apply",
                                field_manager="second", force=True)
    assert forced["data"] == {"a": "2"}


async def test_conflict_and_already_exists(client, namespace):
    first = await client.create(CM, configmap("c", namespace))
    with pytest.raises(ApiError) as err:
        await client.create(CM, configmap("c", namespace))
    assert err.value.code == 409 and err.value.is_already_exists()

    stale = dict(first, data={"x": "1"})
    await client.update(CM, dict(first, data={"x": "0"}))
    with pytest.raises(ApiError) as err:
        await client.update(CM, stale)      # carries the old resourceVersion
    assert err.value.code == 409 and err.value.is_conflict()


async def test_delete_with_uid_precondition(client, namespace):
    await client.create(CM, configmap("d", namespace))
    with pytest.raises(ApiError) as err:
        await client.delete(CM, "d", namespace, preconditions={"uid": "not-the-uid"})
    assert err.value.code == 409
    await client.delete(CM, "d", namespace, propagation_policy="Background")
    with pytest.raises(ApiError):
        await client.get(CM, "d", namespace)


async def test_status_subresource_update(client, namespace):
    pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
           "metadata": {"name": "claim", "namespace": namespace},
           "spec": {"accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Gi"}}}}
    created = await client.create("persistentvolumeclaims", pvc)
    created["status"] = {"phase": "Bound"}
    out = await client.update_status("persistentvolumeclaims", created)
    assert out["status"]["phase"] == "Bound"


async def test_watch_delivers_added_modified_deleted(client, namespace):
    rv = (await client.list(CM, namespace))["metadata"]["resourceVersion"]
    events = []

    async def consume():
        async for etype, obj in client.watch(CM, namespace, resource_version=rv,
                                             allow_bookmarks=False, timeout_seconds=10):
            events.append((etype, obj["metadata"]["name"], obj.get("data")))
            if etype == "DELETED":
                return

    task = asyncio.create_task(consume())
    await client.create(CM, configmap("w", namespace, {"v": "1"}))
    await client.patch(CM, "w", {"data": {"v": "2"}}, namespace)
    await client.delete(CM, "w", namespace)
    await asyncio.wait_for(task, 10)
    assert events == [("ADDED", "w", {"v": "1"}), ("MODIFIED", "w", {"v": "2"}),
                      ("DELETED", "w", {"v": "2"})]


async def test_watch_event_larger_than_aiohttp_line_limit(client, namespace):
    rv = (await client.list(CM, namespace))["metadata"]["resourceVersion"]
    big = "x" * (700 * 1024)        # aiohttp's readline gives up at 512 KiB

    async def first():
        async for etype, obj in client.watch(CM, namespace, resource_version=rv,
                                             timeout_seconds=10):
            if etype == "ADDED":
                return obj

    task = asyncio.create_task(first())
    await client.create(CM, configmap("big", namespace, {"blob": big}))
    obj = await asyncio.wait_for(task, 10)
    assert len(obj["data"]["blob"]) == len(big)


async def test_generic_request_and_kubeconfig(client, api_server):
    version = await client.request("GET", "/version")
    assert version["gitVersion"].startswith("v1.")
    kubeconfig = getattr(api_server, "kubeconfig", None)
    if not kubeconfig:
        pytest.skip("the server fixture has no kubeconfig")
    other = APIClient.from_kubeconfig(kubeconfig)
    try:
        names = [n["metadata"]["name"] for n in (await other.list("namespaces"))["items"]]
        assert "default" in names
    finally:
        await other.close()


async def test_unknown_patch_type_is_rejected_locally(client):
    with pytest.raises(ValueError):
        await client.patch(CM, "x", {}, "default", patch_type="yaml")


async def test_in_process_transport_sends_no_http_but_watches_still_stream(api_server,
                                                                            namespace):
    """`k1s up`'s controllers reach its API server in-process: unary requests never open a
    connection, and watches (streamed answers) still go over HTTP."""
    from k1s.client import local
    local.register(api_server.url, api_server.server.handlers.dispatch)
    c = APIClient(api_server.url, user_agent="in-process-test", timeout=10)
    try:
        created = await c.create(CM, configmap("lp", namespace, {"k": "1"}))
        # the field manager comes from the client's User-Agent, as over HTTP
        assert created["metadata"]["managedFields"][0]["manager"] == "in-process-test"
        await c.patch(CM, "lp", {"data": {"k": "2"}}, namespace, patch_type="merge")
        with pytest.raises(ApiError) as err:
            await c.create(CM, configmap("lp", namespace))
        assert err.value.code == 409 and err.value.status["reason"] == "AlreadyExists"
        assert c._session is None
        seen = []
        async for etype, obj in c.watch(CM, namespace, timeout_seconds=1):
            seen.append((etype, obj["metadata"]["name"], obj["data"]))
            break
        assert seen == [("ADDED", "lp", {"k": "2"})]
        assert c._session is not None
    finally:
        await c.close()
        local.unregister(api_server.url)
