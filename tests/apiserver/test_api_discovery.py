"""Discovery and OpenAPI documents as kubectl and client libraries read them.

Aggregated discovery (apidiscovery.k8s.io v2 and v2beta1) is answered only with its own
Content-Type, which clients check; the legacy documents (/api, /apis, /api/v1, /apis/<g>/<v>)
list resources and their subresources; trailing slashes are tolerated as upstream does.
OpenAPI v3 has an index and one document per group-version in which every kind that can be
patched has a PATCH operation with a fieldValidation parameter (kubectl's strict validation
looks for it); /openapi/v2 is not served.
"""

from __future__ import annotations

import pytest

from test_api_helpers import api, configmap, ns_path  # noqa: F401

AGG = "application/json;g=apidiscovery.k8s.io;v={v};as=APIGroupDiscoveryList"
KUBECTL_ACCEPT = (AGG.format(v="v2") + "," + AGG.format(v="v2beta1") + ",application/json")


@pytest.mark.parametrize("accept, version", [
    (KUBECTL_ACCEPT, "v2"),
    (AGG.format(v="v2"), "v2"),
    (AGG.format(v="v2beta1") + ",application/json", "v2beta1"),
])
@pytest.mark.parametrize("path", ["/api", "/apis"])
async def test_aggregated_discovery(api, accept, version, path):
    r = await api.get(path, headers={"Accept": accept})
    assert r.status == 200
    ctype = r.headers["Content-Type"].replace(" ", "")
    assert ctype.startswith("application/json;")
    assert "g=apidiscovery.k8s.io" in ctype and f"v={version}" in ctype
    assert "as=APIGroupDiscoveryList" in ctype
    assert r.body["kind"] == "APIGroupDiscoveryList"
    assert r.body["apiVersion"] == f"apidiscovery.k8s.io/{version}"
    groups = {g["metadata"].get("name", ""): g for g in r.body["items"]}
    if path == "/api":
        assert list(groups) == [""]
        v1 = groups[""]["versions"][0]
        assert v1["version"] == "v1"
        res = {x["resource"]: x for x in v1["resources"]}
        pods = res["pods"]
        assert pods["scope"] == "Namespaced" and pods["singularResource"] == "pod"
        assert pods["responseKind"] == {"group": "", "version": "v1", "kind": "Pod"}
        assert "po" in pods["shortNames"]
        subs = {s["subresource"]: s for s in pods["subresources"]}
        assert {"status", "binding"} <= set(subs)
        assert res["namespaces"]["scope"] == "Cluster"
        assert "finalize" in {s["subresource"] for s in res["namespaces"]["subresources"]}
    else:
        assert "" not in groups
        apps = groups["apps"]["versions"][0]
        sts = {x["resource"]: x for x in apps["resources"]}["statefulsets"]
        scale = {s["subresource"]: s for s in sts["subresources"]}["scale"]
        assert scale["responseKind"] == {"group": "autoscaling", "version": "v1",
                                         "kind": "Scale"}
        assert "events.k8s.io" in groups


async def test_plain_json_gets_legacy_discovery(api):
    r = await api.get("/api", headers={"Accept": "application/json"})
    assert r.headers["Content-Type"].split(";")[0] == "application/json"
    assert r.body["kind"] == "APIVersions" and r.body["versions"] == ["v1"]
    assert r.body["serverAddressByClientCIDRs"][0]["clientCIDR"] == "0.0.0.0/0"
    r = await api.get("/apis")
    assert r.body["kind"] == "APIGroupList"
    groups = {g["name"]: g for g in r.body["groups"]}
    assert groups["apps"]["preferredVersion"] == {"groupVersion": "apps/v1", "version": "v1"}
    assert "" not in groups


async def test_legacy_core_resource_list(api):
    r = await api.ok("GET", "/api/v1")
    assert (r["kind"], r["groupVersion"]) == ("APIResourceList", "v1")
    res = {x["name"]: x for x in r["resources"]}
    assert res["pods"]["kind"] == "Pod" and res["pods"]["namespaced"] is True
    assert set(res["pods"]["verbs"]) >= {"create", "delete", "deletecollection", "get", "list",
                                         "patch", "update", "watch"}
    assert res["pods/status"]["kind"] == "Pod"
    assert res["pods/binding"]["kind"] == "Binding"
    assert res["pods/binding"]["verbs"] == ["create"]
    assert res["namespaces/finalize"]["verbs"] == ["update"]
    assert res["namespaces"]["namespaced"] is False


async def test_legacy_group_documents(api):
    r = await api.ok("GET", "/apis/apps/v1")
    res = {x["name"]: x for x in r["resources"]}
    assert res["statefulsets"]["kind"] == "StatefulSet"
    assert res["statefulsets/scale"]["kind"] == "Scale"
    assert res["statefulsets/scale"]["group"] == "autoscaling"
    assert res["statefulsets/scale"]["version"] == "v1"
    assert "statefulsets/status" in res
    g = await api.ok("GET", "/apis/apps")
    assert g["kind"] == "APIGroup" and g["name"] == "apps"


@pytest.mark.parametrize("path, kind", [
    ("/api/", "APIVersions"), ("/apis/", "APIGroupList"), ("/api/v1/", "APIResourceList"),
    ("/apis/apps/v1/", "APIResourceList"),
])
async def test_trailing_slashes(api, path, kind):
    r = await api.get(path)
    assert r.status == 200, r
    assert r.body["kind"] == kind


@pytest.mark.parametrize("path", ["/version", "/version/"])
async def test_version(api, path):
    r = await api.ok("GET", path)
    assert r["major"] == "1" and r["gitVersion"].startswith("v1.")


async def test_trailing_slash_on_a_collection(api):
    await api.ok("POST", ns_path("default", "configmaps"), configmap("a"))
    r = await api.get(ns_path("default", "configmaps") + "/")
    assert r.status == 200 and r.body["kind"] == "ConfigMapList"


async def test_unknown_group_version(api):
    for path in ("/apis/nosuch.io/v1", "/apis/apps/v9", "/api/v2", "/apis/nosuch.io"):
        r = await api.get(path)
        assert r.status == 404, (path, r)


async def test_health(api):
    for path in ("/healthz", "/livez", "/readyz"):
        r = await api.get(path)
        assert (r.status, r.body) == (200, "ok")


# ----------------------------------------------------------------------------------- OpenAPI
async def test_openapi_v3_index_and_documents(api):
    index = await api.ok("GET", "/openapi/v3")
    paths = index["paths"]
    assert {"api/v1", "apis/apps/v1", "apis/events.k8s.io/v1"} <= set(paths)
    disc = await api.ok("GET", "/apis")
    for g in disc["groups"]:
        for v in g["versions"]:
            assert f"apis/{v['groupVersion']}" in paths
    for key in ("api/v1", "apis/apps/v1"):
        url = paths[key]["serverRelativeURL"]
        assert url.startswith(f"/openapi/v3/{key}?hash=")
        doc = await api.ok("GET", url)
        assert doc["openapi"].startswith("3.")
        check_patch_operations(key, doc, await api.ok("GET", "/" + key))


def check_patch_operations(key: str, doc: dict, resource_list: dict) -> None:
    """Every patchable kind of the group-version has a PATCH op with fieldValidation."""
    patched = {}
    for path, item in doc["paths"].items():
        op = item.get("patch")
        if not op:
            continue
        gvk = op["x-kubernetes-group-version-kind"]
        params = {p["name"] for p in op.get("parameters", []) + item.get("parameters", [])}
        assert "fieldValidation" in params, path
        patched.setdefault(gvk["kind"], path)
        assert set(op["requestBody"]["content"]) >= {"application/merge-patch+json",
                                                     "application/json-patch+json"}
    kinds = {r["kind"] for r in resource_list["resources"]
             if "/" not in r["name"] and "patch" in r["verbs"]}
    assert kinds, key
    assert kinds <= set(patched), (key, kinds - set(patched))
    # the schemas the operations name exist
    schemas = doc["components"]["schemas"]
    some = next(iter(doc["paths"].values()))
    ref = some["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.rsplit("/", 1)[1] in schemas


async def test_openapi_v3_every_group_version_has_patch_operations(api):
    index = await api.ok("GET", "/openapi/v3")
    for key, entry in index["paths"].items():
        doc = await api.ok("GET", entry["serverRelativeURL"])
        check_patch_operations(key, doc, await api.ok("GET", "/" + key))


async def test_openapi_v3_unknown_document(api):
    r = await api.get("/openapi/v3/apis/nosuch.io/v1")
    assert r.status == 404


async def test_openapi_v2_is_not_served(api):
    r = await api.get("/openapi/v2")
    assert r.status == 404, r
