"""Deletion semantics: finalizers, propagation policies, preconditions, graceful pod deletion,
deletecollection and the namespace lifecycle (spec/k8s-semantics.md §4).

Upstream's rules: an object with finalizers gets deletionTimestamp and stays until an update
removes the last finalizer (that update deletes it); no finalizer can be added while it is
being deleted; Foreground adds `foregroundDeletion`, Orphan (or the legacy orphanDependents)
adds `orphan`; a scheduled pod is deleted gracefully (30 s by default) and a delete with
gracePeriodSeconds=0 removes it; a namespace is Terminating until its `kubernetes` finalizer
is removed through /finalize; nothing can be created in a missing or terminating namespace;
default, kube-system and kube-public cannot be deleted.
"""

from __future__ import annotations

import pytest

from test_api_helpers import (api, configmap, names, namespace, ns_path, pod,  # noqa: F401
                              status_body, statefulset)

CM = ns_path("default", "configmaps")
PODS = ns_path("default", "pods")
STS = ns_path("default", "statefulsets", group="apps")


# ------------------------------------------------------------------------------ plain delete
async def test_delete_answers_a_success_status_for_most_kinds(api):
    created = await api.ok("POST", CM, configmap("a"))
    r = await api.delete(CM + "/a")
    assert r.status == 200
    assert r.body == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                      "details": {"name": "a", "kind": "configmaps",
                                  "uid": created["metadata"]["uid"]}}
    assert (await api.get(CM + "/a")).status == 404


async def test_delete_of_a_group_resource_names_the_group(api):
    created = await api.ok("POST", STS, statefulset("db"))
    r = await api.delete(STS + "/db")
    assert r.status == 200
    assert r.body["details"] == {"name": "db", "group": "apps", "kind": "statefulsets",
                                 "uid": created["metadata"]["uid"]}


# -------------------------------------------------------------------------------- finalizers
async def test_finalizers_keep_the_object_until_the_last_is_removed(api):
    await api.ok("POST", CM, configmap("a", finalizers=["example.com/x", "example.com/y"]))
    r = await api.delete(CM + "/a")
    assert r.status == 200
    obj = r.body
    assert obj["kind"] == "ConfigMap"
    assert obj["metadata"]["deletionTimestamp"]
    assert obj["metadata"]["deletionGracePeriodSeconds"] == 0
    assert obj["metadata"]["finalizers"] == ["example.com/x", "example.com/y"]
    got = await api.ok("GET", CM + "/a")
    assert got["metadata"]["deletionTimestamp"] == obj["metadata"]["deletionTimestamp"]
    # a second delete changes nothing
    again = await api.ok("DELETE", CM + "/a")
    assert again["metadata"]["resourceVersion"] == got["metadata"]["resourceVersion"]
    # removing one finalizer keeps it
    r = await api.ok("PATCH", CM + "/a", {"metadata": {"finalizers": ["example.com/y"]}})
    assert r["metadata"]["finalizers"] == ["example.com/y"]
    assert (await api.get(CM + "/a")).status == 200
    # other changes are still allowed while deleting
    r = await api.ok("PATCH", CM + "/a", {"data": {"k": "v"}})
    assert r["data"] == {"k": "v"}
    # removing the last one deletes it
    await api.ok("PATCH", CM + "/a", {"metadata": {"finalizers": None}})
    assert (await api.get(CM + "/a")).status == 404


async def test_removing_the_last_finalizer_with_put(api):
    await api.ok("POST", CM, configmap("a", finalizers=["example.com/x"]))
    cur = await api.ok("DELETE", CM + "/a")
    cur["metadata"]["finalizers"] = []
    r = await api.put(CM + "/a", cur)
    assert r.status == 200, r
    assert (await api.get(CM + "/a")).status == 404


async def test_deletion_timestamp_cannot_be_changed_or_cleared(api):
    await api.ok("POST", CM, configmap("a", finalizers=["example.com/x"]))
    cur = await api.ok("DELETE", CM + "/a")
    ts = cur["metadata"]["deletionTimestamp"]
    cur["metadata"]["deletionTimestamp"] = None
    r = await api.ok("PUT", CM + "/a", cur)
    assert r["metadata"]["deletionTimestamp"] == ts
    cur = await api.ok("GET", CM + "/a")
    cur["metadata"]["deletionTimestamp"] = "2001-01-01T00:00:00Z"
    r = await api.ok("PUT", CM + "/a", cur)
    assert r["metadata"]["deletionTimestamp"] == ts


async def test_creating_with_a_deletion_timestamp_is_ignored(api):
    r = await api.ok("POST", CM, configmap("a", deletionTimestamp="2001-01-01T00:00:00Z",
                                           deletionGracePeriodSeconds=5))
    assert "deletionTimestamp" not in r["metadata"]
    assert "deletionGracePeriodSeconds" not in r["metadata"]


async def test_no_new_finalizers_while_deleting(api):
    await api.ok("POST", CM, configmap("a", finalizers=["example.com/x"]))
    cur = await api.ok("DELETE", CM + "/a")
    r = await api.patch(CM + "/a", {"metadata": {"finalizers": ["example.com/x",
                                                                "example.com/new"]}})
    assert r.status == 422, r
    assert r.body["reason"] == "Invalid"
    cause = r.body["details"]["causes"]
    assert [(c["reason"], c["field"]) for c in cause] == [("FieldValueForbidden",
                                                           "metadata.finalizers")]
    assert cause[0]["message"].startswith("Forbidden: no new finalizers can be added if the "
                                          "object is being deleted, found new finalizers ")
    got = await api.ok("GET", CM + "/a")
    assert got["metadata"]["finalizers"] == ["example.com/x"]
    assert got["metadata"]["resourceVersion"] == cur["metadata"]["resourceVersion"]


async def test_no_new_finalizers_message_is_upstreams(api):
    await api.ok("POST", CM, configmap("a", finalizers=["example.com/x"]))
    await api.ok("DELETE", CM + "/a")
    r = await api.patch(CM + "/a", {"metadata": {"finalizers": ["example.com/x",
                                                                "example.com/new"]}})
    assert r.body["message"] == (
        'ConfigMap "a" is invalid: metadata.finalizers: Forbidden: no new finalizers can be '
        'added if the object is being deleted, found new finalizers []string{"example.com/new"}')


# ----------------------------------------------------------------------- propagation policy
@pytest.mark.parametrize("options, params, finalizer", [
    ({"propagationPolicy": "Foreground"}, None, "foregroundDeletion"),
    ({"propagationPolicy": "Orphan"}, None, "orphan"),
    (None, {"propagationPolicy": "Foreground"}, "foregroundDeletion"),
    (None, {"propagationPolicy": "Orphan"}, "orphan"),
    ({"orphanDependents": True}, None, "orphan"),
    (None, {"orphanDependents": "true"}, "orphan"),
])
async def test_propagation_policy_adds_its_finalizer(api, options, params, finalizer):
    await api.ok("POST", STS, statefulset("db"))
    body = dict(options or {}, kind="DeleteOptions", apiVersion="v1") if options else None
    r = await api.delete(STS + "/db", body, params=params)
    assert r.status == 200, r
    assert r.body["metadata"]["finalizers"] == [finalizer]
    assert r.body["metadata"]["deletionTimestamp"]
    got = await api.ok("GET", STS + "/db")
    assert got["metadata"]["finalizers"] == [finalizer]


@pytest.mark.parametrize("options", [{"propagationPolicy": "Background"},
                                     {"orphanDependents": False}, {}])
async def test_background_deletes_at_once(api, options):
    await api.ok("POST", STS, statefulset("db"))
    r = await api.delete(STS + "/db", dict(options, kind="DeleteOptions", apiVersion="v1"))
    assert r.status == 200 and r.body["status"] == "Success", r
    assert (await api.get(STS + "/db")).status == 404


async def test_foreground_replaces_orphan(api):
    await api.ok("POST", STS, statefulset("db", ))
    await api.ok("PATCH", STS + "/db", {"metadata": {"finalizers": ["example.com/keep"]}})
    r = await api.ok("DELETE", STS + "/db", {"propagationPolicy": "Orphan"})
    assert r["metadata"]["finalizers"] == ["example.com/keep", "orphan"]
    r = await api.ok("DELETE", STS + "/db", {"propagationPolicy": "Foreground"})
    assert r["metadata"]["finalizers"] == ["example.com/keep", "foregroundDeletion"]


async def test_unknown_propagation_policy_is_invalid(api):
    await api.ok("POST", CM, configmap("a"))
    r = await api.delete(CM + "/a", {"propagationPolicy": "Sideways"})
    assert r.status == 422, r
    assert r.body["reason"] == "Invalid"
    assert (await api.get(CM + "/a")).status == 200


# ---------------------------------------------------------------------------- preconditions
async def test_precondition_uid_matches(api):
    created = await api.ok("POST", CM, configmap("a"))
    r = await api.delete(CM + "/a", {"preconditions": {"uid": created["metadata"]["uid"]}})
    assert r.status == 200
    assert (await api.get(CM + "/a")).status == 404


async def test_precondition_failures_are_conflicts(api):
    created = await api.ok("POST", CM, configmap("a"))
    r = await api.delete(CM + "/a", {"preconditions": {"uid": "not-the-uid"}})
    assert r.status == 409 and r.body["reason"] == "Conflict", r
    await api.ok("PATCH", CM + "/a", {"data": {"k": "v"}})
    r = await api.delete(CM + "/a", {"preconditions": {
        "resourceVersion": created["metadata"]["resourceVersion"]}})
    assert r.status == 409 and r.body["reason"] == "Conflict", r
    assert (await api.get(CM + "/a")).status == 200


async def test_precondition_uid_message_is_upstreams(api):
    created = await api.ok("POST", CM, configmap("a"))
    uid = created["metadata"]["uid"]
    r = await api.delete(CM + "/a", {"preconditions": {"uid": "not-the-uid"}})
    assert r.body == status_body(
        409, "Conflict", f'Operation cannot be fulfilled on ConfigMap "a": the UID in the '
        f'precondition (not-the-uid) does not match the UID in record ({uid}). The object might '
        f'have been deleted and then recreated', {"name": "a", "kind": "ConfigMap"})


async def test_precondition_resource_version_message_is_upstreams(api):
    created = await api.ok("POST", CM, configmap("a"))
    now = await api.ok("PATCH", CM + "/a", {"data": {"k": "v"}})
    old = created["metadata"]["resourceVersion"]
    r = await api.delete(CM + "/a", {"preconditions": {"resourceVersion": old}})
    assert r.body == status_body(
        409, "Conflict", f'Operation cannot be fulfilled on ConfigMap "a": the ResourceVersion '
        f'in the precondition ({old}) does not match the ResourceVersion in record '
        f'({now["metadata"]["resourceVersion"]}). The object might have been modified',
        {"name": "a", "kind": "ConfigMap"})


# ---------------------------------------------------------------------------------- pods
async def test_unscheduled_pod_is_deleted_at_once(api):
    await api.ok("POST", PODS, pod("p"))
    r = await api.delete(PODS + "/p")
    assert r.status == 200
    assert r.body["kind"] == "Pod"          # pods answer with the object
    assert (await api.get(PODS + "/p")).status == 404


async def bind(api, name: str, node: str = "n1"):
    return await api.post(PODS + f"/{name}/binding", {
        "apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node}})


async def test_scheduled_pod_is_deleted_gracefully(api):
    await api.ok("POST", PODS, pod("p"))
    assert (await bind(api, "p")).status == 201
    r = await api.delete(PODS + "/p")
    assert r.status == 200
    md = r.body["metadata"]
    assert md["deletionGracePeriodSeconds"] == 30
    assert md["deletionTimestamp"]
    got = await api.ok("GET", PODS + "/p")
    assert got["metadata"]["deletionTimestamp"] == md["deletionTimestamp"]
    # a longer grace period cannot extend it; a shorter one shortens it
    r = await api.ok("DELETE", PODS + "/p", params={"gracePeriodSeconds": "60"})
    assert r["metadata"]["deletionGracePeriodSeconds"] == 30
    r = await api.ok("DELETE", PODS + "/p", params={"gracePeriodSeconds": "10"})
    assert r["metadata"]["deletionGracePeriodSeconds"] == 10
    # grace 0 (kubectl --force --grace-period=0) removes it
    r = await api.delete(PODS + "/p", params={"gracePeriodSeconds": "0"})
    assert r.status == 200
    assert (await api.get(PODS + "/p")).status == 404


async def test_pod_termination_grace_period_is_used(api):
    await api.ok("POST", PODS, pod("p", terminationGracePeriodSeconds=5))
    await bind(api, "p")
    r = await api.ok("DELETE", PODS + "/p")
    assert r["metadata"]["deletionGracePeriodSeconds"] == 5


async def test_scheduled_pod_deleted_with_grace_zero_in_the_body(api):
    await api.ok("POST", PODS, pod("p"))
    await bind(api, "p")
    r = await api.delete(PODS + "/p", {"gracePeriodSeconds": 0})
    assert r.status == 200
    assert (await api.get(PODS + "/p")).status == 404


async def test_finished_pod_is_deleted_at_once(api):
    await api.ok("POST", PODS, pod("p"))
    await bind(api, "p")
    await api.ok("PATCH", PODS + "/p/status", {"status": {"phase": "Succeeded"}})
    await api.ok("DELETE", PODS + "/p")
    assert (await api.get(PODS + "/p")).status == 404


# --------------------------------------------------------------------------- deletecollection
async def test_deletecollection_with_a_label_selector(api):
    for i in range(4):
        await api.ok("POST", CM, configmap(f"c{i}", labels={"batch": "x" if i < 3 else "y"}))
    await api.ok("POST", ns_path("kube-system", "configmaps"), configmap("c0",
                                                                         labels={"batch": "x"}))
    r = await api.delete(CM, params={"labelSelector": "batch=x"})
    assert r.status == 200, r
    assert r.body["kind"] == "ConfigMapList"
    assert sorted(names(r.body)) == ["c0", "c1", "c2"]
    assert names(await api.ok("GET", CM)) == ["c3"]
    assert names(await api.ok("GET", ns_path("kube-system", "configmaps"))) == ["c0"]


async def test_deletecollection_honours_finalizers(api):
    await api.ok("POST", CM, configmap("held", finalizers=["example.com/x"]))
    await api.ok("POST", CM, configmap("free"))
    await api.ok("DELETE", CM)
    remaining = await api.ok("GET", CM)
    assert names(remaining) == ["held"]
    assert remaining["items"][0]["metadata"]["deletionTimestamp"]


# -------------------------------------------------------------------------------- namespaces
async def test_namespace_lifecycle(api):
    await api.ok("POST", "/api/v1/namespaces", namespace("team"))
    await api.ok("POST", ns_path("team", "configmaps"), configmap("a"))
    r = await api.delete("/api/v1/namespaces/team")
    assert r.status == 200
    assert r.body["status"]["phase"] == "Terminating"
    assert r.body["metadata"]["deletionTimestamp"]
    assert r.body["spec"]["finalizers"] == ["kubernetes"]
    got = await api.ok("GET", "/api/v1/namespaces/team")
    assert got["status"]["phase"] == "Terminating"

    # nothing new may be created in it
    r = await api.post(ns_path("team", "configmaps"), configmap("b"))
    assert r.status == 403, r
    assert r.body["reason"] == "Forbidden"
    assert r.body["message"] == ('configmaps "b" is forbidden: unable to create new content in '
                                 'namespace team because it is being terminated')
    assert r.body["details"]["name"] == "b" and r.body["details"]["kind"] == "configmaps"
    # existing content can still change (the namespace controller deletes it)
    await api.ok("PATCH", ns_path("team", "configmaps", "a"), {"data": {"k": "v"}})

    # spec.finalizers only changes through /finalize: a plain update keeps it
    got["spec"]["finalizers"] = []
    r = await api.ok("PUT", "/api/v1/namespaces/team", got)
    assert r["spec"]["finalizers"] == ["kubernetes"]

    # /finalize removing the last finalizer deletes the namespace
    cur = await api.ok("GET", "/api/v1/namespaces/team")
    cur["spec"]["finalizers"] = []
    r = await api.put("/api/v1/namespaces/team/finalize", cur)
    assert r.status == 200, r
    assert (await api.get("/api/v1/namespaces/team")).status == 404


async def test_terminating_namespace_cause(api):
    await api.ok("POST", "/api/v1/namespaces", namespace("team"))
    await api.ok("DELETE", "/api/v1/namespaces/team")
    r = await api.post(ns_path("team", "configmaps"), configmap("b"))
    assert r.body["details"]["causes"] == [{"reason": "NamespaceTerminating",
                                            "message": "namespace team is being terminated",
                                            "field": "metadata.namespace"}]


async def test_finalize_keeps_a_namespace_with_finalizers_left(api):
    await api.ok("POST", "/api/v1/namespaces", {
        "metadata": {"name": "team"}, "spec": {"finalizers": ["kubernetes", "example.com/x"]}})
    await api.ok("DELETE", "/api/v1/namespaces/team")
    cur = await api.ok("GET", "/api/v1/namespaces/team")
    cur["spec"]["finalizers"] = ["example.com/x"]
    r = await api.ok("PUT", "/api/v1/namespaces/team/finalize", cur)
    assert r["spec"]["finalizers"] == ["example.com/x"]
    assert (await api.ok("GET", "/api/v1/namespaces/team"))["status"]["phase"] == "Terminating"


async def test_create_in_a_missing_namespace(api):
    r = await api.post(ns_path("nowhere", "configmaps"), configmap("a"))
    assert r.status == 404, r
    assert r.body == status_body(404, "NotFound", 'namespaces "nowhere" not found',
                                 {"name": "nowhere", "kind": "namespaces"})


@pytest.mark.parametrize("name", ["default", "kube-system", "kube-public"])
async def test_system_namespaces_cannot_be_deleted(api, name):
    r = await api.delete(f"/api/v1/namespaces/{name}")
    assert r.status == 403, r
    assert r.body["reason"] == "Forbidden"
    assert r.body["message"] == f'namespaces "{name}" is forbidden: this namespace may not be ' \
                                f'deleted'
    got = await api.ok("GET", f"/api/v1/namespaces/{name}")
    assert got["status"]["phase"] == "Active" and "deletionTimestamp" not in got["metadata"]
