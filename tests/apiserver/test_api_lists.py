"""LIST semantics: pagination, resourceVersion semantics, selectors and Table output.

Upstream's rules: a continue token lists at the revision of the first page (objects created
between pages are not seen, objects deleted between pages still are), remainingItemCount is
reported for unfiltered lists, resourceVersion=0 reads the cache as it is,
resourceVersionMatch=Exact reads the history at that revision, and a continue token older than
the compaction is 410 Expired with upstream's message.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from test_api_helpers import (TABLE_ACCEPT, api, configmap, names, namespace,  # noqa: F401
                              ns_path, pod, rv, status_body)

CM = ns_path("default", "configmaps")


async def make(api, n: int, ns: str = "default", prefix: str = "cm", labels=None) -> list[dict]:
    out = []
    for i in range(n):
        out.append(await api.ok("POST", ns_path(ns, "configmaps"),
                                configmap(f"{prefix}{i:02d}", {"i": str(i)},
                                          labels=labels(i) if labels else None)))
    return out


async def list_all(api, path: str, limit: int, **params) -> tuple[list[str], list[dict]]:
    """Follow continue tokens to the end; returns (names, pages' metadata)."""
    got, metas, cont = [], [], None
    while True:
        q = dict(params, limit=str(limit))
        if cont:
            q["continue"] = cont
        body = await api.ok("GET", path, params=q)
        got += names(body)
        metas.append(body["metadata"])
        cont = body["metadata"].get("continue")
        if not cont:
            return got, metas


# ------------------------------------------------------------------------------- pagination
async def test_pagination_returns_every_object_once_in_key_order(api):
    await make(api, 7)
    got, metas = await list_all(api, CM, 3)
    assert got == [f"cm{i:02d}" for i in range(7)]
    assert len(got) == len(set(got))
    assert len(metas) == 3
    # every page reports the first page's revision
    assert len({m["resourceVersion"] for m in metas}) == 1


_fresh = itertools.count()


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(initial=st.sets(st.integers(0, 30), max_size=10), limit=st.integers(1, 4),
       churn=st.lists(st.tuples(st.booleans(), st.integers(0, 30)), max_size=6))
async def test_pagination_is_a_snapshot_property(api, initial, limit, churn):
    """Property: whatever is created or deleted between pages, following the continue tokens
    yields exactly the objects of the first page's revision, each once, in name order."""
    ns = f"prop{next(_fresh)}"
    await api.ok("POST", "/api/v1/namespaces", namespace(ns))
    path = ns_path(ns, "configmaps")
    for i in sorted(initial):
        await api.ok("POST", path, configmap(f"c{i:02d}"))
    want = [f"c{i:02d}" for i in sorted(initial)]
    got, cont, live, revs = [], None, set(initial), set()
    steps = iter(churn)
    while True:
        q = {"limit": str(limit)}
        if cont:
            q["continue"] = cont
        page = await api.ok("GET", path, params=q)
        got += names(page)
        revs.add(page["metadata"]["resourceVersion"])
        cont = page["metadata"].get("continue")
        if not cont:
            break
        for create, i in itertools.islice(steps, 2):   # churn between pages
            if create and i not in live:
                await api.ok("POST", path, configmap(f"c{i:02d}"))
                live.add(i)
            elif not create and i in live:
                await api.ok("DELETE", f"{path}/c{i:02d}")
                live.discard(i)
    assert got == want
    assert len(revs) == 1


async def test_remaining_item_count_on_the_first_page(api):
    await make(api, 5)
    body = await api.ok("GET", CM, params={"limit": "2"})
    assert names(body) == ["cm00", "cm01"]
    assert body["metadata"]["remainingItemCount"] == 3
    assert body["metadata"]["continue"]


async def test_remaining_item_count_on_later_pages(api):
    await make(api, 5)
    first = await api.ok("GET", CM, params={"limit": "2"})
    second = await api.ok("GET", CM, params={"limit": "2",
                                             "continue": first["metadata"]["continue"]})
    assert names(second) == ["cm02", "cm03"]
    assert second["metadata"]["remainingItemCount"] == 1


async def test_last_page_has_no_continue(api):
    await make(api, 4)
    body = await api.ok("GET", CM, params={"limit": "4"})
    assert len(body["items"]) == 4
    assert "continue" not in body["metadata"]
    assert "remainingItemCount" not in body["metadata"]


async def test_continue_lists_at_the_first_pages_revision(api):
    await make(api, 6)
    first = await api.ok("GET", CM, params={"limit": "2"})
    rev = first["metadata"]["resourceVersion"]
    # changes between pages: a new object after the cursor, a deletion and a modification
    await api.ok("POST", CM, configmap("cm03x"))
    await api.ok("POST", CM, configmap("cm99"))
    await api.ok("DELETE", CM + "/cm04")
    await api.ok("PATCH", CM + "/cm05", {"data": {"i": "changed"}})
    rest, cont = [], first["metadata"]["continue"]
    datas = {}
    while cont:
        page = await api.ok("GET", CM, params={"limit": "2", "continue": cont})
        assert page["metadata"]["resourceVersion"] == rev
        rest += names(page)
        datas.update({i["metadata"]["name"]: i["data"] for i in page["items"]})
        cont = page["metadata"].get("continue")
    assert rest == ["cm02", "cm03", "cm04", "cm05"]
    assert datas["cm05"] == {"i": "5"}
    # a fresh list sees the new state
    now = names(await api.ok("GET", CM))
    assert "cm99" in now and "cm03x" in now and "cm04" not in now


async def test_pagination_with_a_label_selector(api):
    await make(api, 9, labels=lambda i: {"parity": "even" if i % 2 == 0 else "odd"})
    got, metas = await list_all(api, CM, 2, labelSelector="parity=even")
    assert got == ["cm00", "cm02", "cm04", "cm06", "cm08"]
    # a filtered list does not know how many are left
    assert all("remainingItemCount" not in m for m in metas)


async def test_invalid_continue_token(api):
    r = await api.get(CM, params={"continue": "!!!not-a-token", "limit": "1"})
    assert r.status == 400, r
    assert r.body["reason"] == "BadRequest"


async def test_continue_token_after_compaction_is_expired(api, api_server):
    await make(api, 4)
    first = await api.ok("GET", CM, params={"limit": "2"})
    for i in range(3):
        await api.ok("PATCH", CM + "/cm03", {"data": {"i": str(i)}})
    store = api_server.server.objects.store
    await store.compact(store.current_revision())
    r = await api.get(CM, params={"limit": "2", "continue": first["metadata"]["continue"]})
    assert r.status == 410, r
    assert (r.body["code"], r.body["reason"]) == (410, "Expired")
    assert r.body["message"] == (
        "The provided continue parameter is too old to display a consistent list result. You "
        "can start a new list without the continue parameter, or use the continue token in "
        "this response to retrieve the remainder of the results. Continuing with the provided "
        "token results in an inconsistent list - objects that were created, modified, or "
        "deleted between the time the first chunk was returned and now may show up in the "
        "list.")


async def test_expired_continue_offers_a_token_at_the_latest_revision(api, api_server):
    await make(api, 4)
    first = await api.ok("GET", CM, params={"limit": "2"})
    await api.ok("PATCH", CM + "/cm03", {"data": {"i": "x"}})
    store = api_server.server.objects.store
    await store.compact(store.current_revision())
    r = await api.get(CM, params={"limit": "2", "continue": first["metadata"]["continue"]})
    assert r.status == 410
    token = r.body["metadata"]["continue"]
    page = await api.ok("GET", CM, params={"limit": "2", "continue": token})
    assert names(page) == ["cm02", "cm03"]


# ------------------------------------------------------------------------ resource versions
async def test_resource_version_zero_reads_the_cache(api):
    await make(api, 3)
    body = await api.ok("GET", CM, params={"resourceVersion": "0"})
    assert names(body) == ["cm00", "cm01", "cm02"]
    assert int(body["metadata"]["resourceVersion"]) >= max(
        rv(i) for i in body["items"])


async def test_list_resource_version_is_the_latest_write(api, api_server):
    objs = await make(api, 3)
    body = await api.ok("GET", CM)
    assert int(body["metadata"]["resourceVersion"]) == \
        api_server.server.objects.store.current_revision()
    assert int(body["metadata"]["resourceVersion"]) >= rv(objs[-1])


async def test_exact_at_an_old_revision_sees_the_old_state(api):
    objs = await make(api, 3)
    at = rv(objs[-1])
    await api.ok("DELETE", CM + "/cm00")
    await api.ok("PATCH", CM + "/cm01", {"data": {"i": "new"}})
    await api.ok("POST", CM, configmap("cm09"))
    old = await api.ok("GET", CM, params={"resourceVersion": str(at),
                                          "resourceVersionMatch": "Exact"})
    assert old["metadata"]["resourceVersion"] == str(at)
    assert names(old) == ["cm00", "cm01", "cm02"]
    assert old["items"][1]["data"] == {"i": "1"}
    assert old["items"][1]["metadata"]["resourceVersion"] == objs[1]["metadata"][
        "resourceVersion"]
    now = await api.ok("GET", CM)
    assert names(now) == ["cm01", "cm02", "cm09"]


async def test_exact_with_a_limit_paginates_at_that_revision(api):
    objs = await make(api, 5)
    at = rv(objs[-1])
    await api.ok("DELETE", CM + "/cm01")
    got, metas = await list_all(api, CM, 2, resourceVersion=str(at),
                                resourceVersionMatch="Exact")
    assert got == ["cm00", "cm01", "cm02", "cm03", "cm04"]
    assert {m["resourceVersion"] for m in metas} == {str(at)}


async def test_not_older_than(api):
    objs = await make(api, 2)
    body = await api.ok("GET", CM, params={"resourceVersion": objs[0]["metadata"][
        "resourceVersion"], "resourceVersionMatch": "NotOlderThan"})
    assert names(body) == ["cm00", "cm01"]
    assert int(body["metadata"]["resourceVersion"]) >= rv(objs[1])
    # a resourceVersion without a match is NotOlderThan too
    body = await api.ok("GET", CM, params={"resourceVersion": objs[0]["metadata"][
        "resourceVersion"]})
    assert names(body) == ["cm00", "cm01"]


async def test_resource_version_in_the_future(api, api_server):
    future = api_server.server.objects.store.current_revision() + 1000
    r = await api.get(CM, params={"resourceVersion": str(future),
                                  "resourceVersionMatch": "Exact"})
    assert r.status == 504, r
    assert r.body["reason"] == "Timeout"
    assert r.body["message"].startswith(f"Too large resource version: {future}, current: ")


async def test_exact_at_a_compacted_revision(api, api_server):
    objs = await make(api, 2)
    await api.ok("PATCH", CM + "/cm00", {"data": {"i": "x"}})
    store = api_server.server.objects.store
    await store.compact(store.current_revision())
    r = await api.get(CM, params={"resourceVersion": objs[0]["metadata"]["resourceVersion"],
                                  "resourceVersionMatch": "Exact"})
    assert r.status == 410
    assert r.body == status_body(410, "Expired",
                                 "The resourceVersion for the provided list is too old.")


async def test_exact_at_a_compacted_revision_is_gone(api, api_server):
    objs = await make(api, 2)
    await api.ok("PATCH", CM + "/cm00", {"data": {"i": "x"}})
    store = api_server.server.objects.store
    await store.compact(store.current_revision())
    r = await api.get(CM, params={"resourceVersion": objs[0]["metadata"]["resourceVersion"],
                                  "resourceVersionMatch": "Exact"})
    assert r.status == 410 and r.body["reason"] == "Expired", r


async def test_match_without_resource_version_is_invalid(api):
    r = await api.get(CM, params={"resourceVersionMatch": "Exact"})
    assert r.status == 422, r
    assert r.body["reason"] == "Invalid"
    assert r.body["details"]["causes"][0]["field"] == "resourceVersionMatch"


async def test_get_at_a_resource_version(api):
    a = await api.ok("POST", CM, configmap("a", {"v": "1"}))
    await api.ok("PATCH", CM + "/a", {"data": {"v": "2"}})
    old = await api.ok("GET", CM + "/a", params={"resourceVersion": a["metadata"][
        "resourceVersion"]})
    assert old["data"] == {"v": "1"}


# --------------------------------------------------------------------------------- selectors
async def setup_labelled(api):
    for ns in ("alpha", "beta"):
        await api.ok("POST", "/api/v1/namespaces", namespace(ns))
    await api.ok("POST", ns_path("alpha", "configmaps"),
                 configmap("a1", labels={"app": "web", "tier": "front"}))
    await api.ok("POST", ns_path("alpha", "configmaps"), configmap("a2", labels={"app": "db"}))
    await api.ok("POST", ns_path("beta", "configmaps"),
                 configmap("b1", labels={"app": "web", "tier": "back"}))
    await api.ok("POST", ns_path("beta", "configmaps"), configmap("b2"))


@pytest.mark.parametrize("selector, alpha, everywhere", [
    ("app=web", ["a1"], ["a1", "b1"]),
    ("app!=web", ["a2"], ["a2", "b2"]),
    ("app", ["a1", "a2"], ["a1", "a2", "b1"]),
    ("!app", [], ["b2"]),
    ("app in (web,db)", ["a1", "a2"], ["a1", "a2", "b1"]),
    ("app notin (web)", ["a2"], ["a2", "b2"]),
    ("app=web,tier=back", [], ["b1"]),
])
async def test_label_selectors(api, selector, alpha, everywhere):
    await setup_labelled(api)
    body = await api.ok("GET", ns_path("alpha", "configmaps"), params={"labelSelector": selector})
    assert names(body) == alpha
    body = await api.ok("GET", "/api/v1/configmaps", params={"labelSelector": selector})
    assert sorted(n for n in names(body) if n in ("a1", "a2", "b1", "b2")) == everywhere


@pytest.mark.parametrize("selector, alpha, everywhere", [
    ("metadata.name=a1", ["a1"], ["a1"]),
    ("metadata.name!=a1", ["a2"], ["a2", "b1", "b2"]),
    ("metadata.namespace=beta", [], ["b1", "b2"]),
    ("metadata.namespace!=beta,metadata.name!=a2", ["a1"], ["a1"]),
])
async def test_field_selectors(api, selector, alpha, everywhere):
    await setup_labelled(api)
    body = await api.ok("GET", ns_path("alpha", "configmaps"), params={"fieldSelector": selector})
    assert names(body) == alpha
    body = await api.ok("GET", "/api/v1/configmaps", params={"fieldSelector": selector})
    assert sorted(n for n in names(body) if n in ("a1", "a2", "b1", "b2")) == everywhere


async def test_pod_field_selectors(api):
    await api.ok("POST", ns_path("default", "pods"), pod("on-n1", nodeName="n1"))
    await api.ok("POST", ns_path("default", "pods"), pod("unscheduled"))
    body = await api.ok("GET", "/api/v1/pods", params={"fieldSelector": "spec.nodeName=n1"})
    assert names(body) == ["on-n1"]
    body = await api.ok("GET", "/api/v1/pods", params={"fieldSelector": "spec.nodeName="})
    assert names(body) == ["unscheduled"]
    body = await api.ok("GET", ns_path("default", "pods"),
                        params={"fieldSelector": "status.phase=Pending"})
    assert names(body) == ["on-n1", "unscheduled"]


async def test_namespace_field_selector_on_namespaces(api):
    body = await api.ok("GET", "/api/v1/namespaces", params={"fieldSelector": "status.phase=Active"})
    assert {"default", "kube-system"} <= set(names(body))


@pytest.mark.parametrize("params", [
    {"labelSelector": "app in web"},
    {"labelSelector": "a b c"},
    {"fieldSelector": "data.x=1"},
    {"fieldSelector": "spec.nodeName=n1"},   # not a ConfigMap field
])
async def test_bad_selectors(api, params):
    r = await api.get(CM, params=params)
    assert r.status == 400, r
    assert r.body["reason"] == "BadRequest"


# ------------------------------------------------------------------------------------ tables
async def test_table_output(api):
    await make(api, 2)
    r = await api.get(CM, headers={"Accept": TABLE_ACCEPT})
    assert r.status == 200
    t = r.body
    assert (t["kind"], t["apiVersion"]) == ("Table", "meta.k8s.io/v1")
    assert [c["name"] for c in t["columnDefinitions"]] == ["Name", "Data", "Age"]
    rows = [row for row in t["rows"] if row["cells"][0].startswith("cm")]
    assert [row["cells"][:2] for row in rows] == [["cm00", 1], ["cm01", 1]]
    obj = rows[0]["object"]
    assert obj["kind"] == "PartialObjectMetadata"
    assert obj["apiVersion"] == "meta.k8s.io/v1"
    assert obj["metadata"]["name"] == "cm00"
    assert t["metadata"]["resourceVersion"]


@pytest.mark.parametrize("include, check", [
    ("Object", lambda o: o["kind"] == "ConfigMap" and o["data"] == {"i": "0"}),
    ("Metadata", lambda o: o["kind"] == "PartialObjectMetadata" and "data" not in o),
    ("None", lambda o: o is None),
])
async def test_table_include_object(api, include, check):
    await make(api, 1)
    t = await api.ok("GET", CM, params={"includeObject": include},
                     headers={"Accept": TABLE_ACCEPT})
    row = next(r for r in t["rows"] if r["cells"][0] == "cm00")
    assert check(row.get("object"))


async def test_table_of_a_single_object(api):
    await make(api, 1)
    t = await api.ok("GET", CM + "/cm00", headers={"Accept": TABLE_ACCEPT})
    assert t["kind"] == "Table"
    assert [r["cells"][0] for r in t["rows"]] == ["cm00"]


async def test_table_pagination(api):
    await make(api, 3)
    t = await api.ok("GET", CM, params={"limit": "2"}, headers={"Accept": TABLE_ACCEPT})
    assert [r["cells"][0] for r in t["rows"]] == ["cm00", "cm01"]
    t2 = await api.ok("GET", CM, params={"limit": "2", "continue": t["metadata"]["continue"]},
                      headers={"Accept": TABLE_ACCEPT})
    assert [r["cells"][0] for r in t2["rows"]] == ["cm02"]


async def test_table_remaining_item_count(api):
    await make(api, 3)
    t = await api.ok("GET", CM, params={"limit": "2"}, headers={"Accept": TABLE_ACCEPT})
    assert t["metadata"]["remainingItemCount"] == 1


async def test_table_v1beta1(api):
    await make(api, 1)
    t = await api.ok("GET", CM, headers={
        "Accept": "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"})
    assert t["apiVersion"] == "meta.k8s.io/v1beta1"


# ----------------------------------------------------------------------- an independent client
async def test_lightkube_pages_through_a_list(api_server, api):
    from lightkube import AsyncClient, KubeConfig
    from lightkube.resources.core_v1 import ConfigMap
    await make(api, 7)
    client = AsyncClient(config=KubeConfig.from_file(api_server.kubeconfig))
    try:
        got = [cm.metadata.name async for cm in client.list(ConfigMap, namespace="default",
                                                              chunk_size=2)]
        assert [n for n in got if n.startswith("cm")] == [f"cm{i:02d}" for i in range(7)]
        sel = [cm.metadata.name async for cm in client.list(
            ConfigMap, namespace="*", fields={"metadata.name": "cm03"})]
        assert sel == ["cm03"]
    finally:
        await client.close()
