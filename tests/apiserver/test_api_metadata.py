"""Server-owned metadata and the status subresource, against the real in-process API server.

Upstream rules checked here: uid/creationTimestamp/resourceVersion are the server's (a client's
values are ignored on create), generateName adds a 5-character suffix and retries a taken name,
metadata.generation is tracked for StatefulSets (1 on create, bumped only by spec changes),
name/uid/creationTimestamp cannot change on update, label and annotation syntax errors are 422
with one cause per field; a write to the main resource keeps status, a write to /status keeps
everything else, and PrepareForCreate resets the status of pods, claims and namespaces.
"""

from __future__ import annotations

import re

import pytest

from test_api_helpers import (api, configmap, namespace, ns_path, pod, rv,  # noqa: F401
                              status_body, statefulset)

CM = ns_path("default", "configmaps")
STS = ns_path("default", "statefulsets", group="apps")
SUFFIX = re.compile(r"^[bcdfghjklmnpqrstvwxz2456789]{5}$")


# ------------------------------------------------------------------------- server-set fields
async def test_create_ignores_client_uid_timestamp_and_resource_version(api):
    body = configmap("a", uid="11111111-1111-1111-1111-111111111111",
                     creationTimestamp="2001-01-01T00:00:00Z", resourceVersion="999999",
                     generation=7)
    created = await api.ok("POST", CM, body)
    md = created["metadata"]
    assert md["uid"] != "11111111-1111-1111-1111-111111111111"
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", md["uid"])
    assert md["creationTimestamp"] != "2001-01-01T00:00:00Z"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", md["creationTimestamp"])
    assert md["resourceVersion"] != "999999"
    assert "generation" not in md            # not tracked for ConfigMaps
    got = await api.ok("GET", CM + "/a")
    assert got["metadata"] == md


async def test_every_write_gets_a_higher_resource_version(api):
    a = await api.ok("POST", CM, configmap("a"))
    b = await api.ok("POST", CM, configmap("b"))
    a2 = await api.ok("PATCH", CM + "/a", {"data": {"k": "v"}})
    assert rv(a) < rv(b) < rv(a2)


async def test_generate_name_adds_five_character_suffix(api):
    body = configmap("")
    del body["metadata"]["name"]
    body["metadata"]["generateName"] = "web-"
    seen = set()
    for _ in range(5):
        r = await api.post(CM, body)
        assert r.status == 201, r
        name = r.body["metadata"]["name"]
        assert name.startswith("web-") and SUFFIX.match(name[4:]), name
        assert r.body["metadata"]["generateName"] == "web-"
        seen.add(name)
    assert len(seen) == 5


async def test_generate_name_retries_a_taken_name(api, monkeypatch):
    import k1s.apiserver.objects as objects
    await api.ok("POST", CM, configmap("web-taken"))
    tries = iter(["web-taken", "web-taken", "web-fresh"])
    monkeypatch.setattr(objects, "generate_name", lambda prefix: next(tries))
    r = await api.post(CM, {"metadata": {"generateName": "web-"}})
    assert r.status == 201, r
    assert r.body["metadata"]["name"] == "web-fresh"


async def test_generate_name_gives_up_with_already_exists(api, monkeypatch):
    import k1s.apiserver.objects as objects
    await api.ok("POST", CM, configmap("web-taken"))
    monkeypatch.setattr(objects, "generate_name", lambda prefix: "web-taken")
    r = await api.post(CM, {"metadata": {"generateName": "web-"}})
    assert r.status == 409, r
    assert r.body["reason"] == "AlreadyExists"


async def test_name_or_generate_name_is_required(api):
    r = await api.post(CM, {"metadata": {}})
    assert r.status == 422, r
    assert r.body["reason"] == "Invalid"
    assert [c["field"] for c in r.body["details"]["causes"]] == ["metadata.name"]
    assert r.body["details"]["causes"][0]["reason"] == "FieldValueRequired"


# -------------------------------------------------------------------------------- generation
async def test_statefulset_generation_tracks_spec_changes_only(api):
    created = await api.ok("POST", STS, statefulset("web", replicas=1))
    assert created["metadata"]["generation"] == 1
    # labels: not the spec
    r = await api.ok("PATCH", STS + "/web", {"metadata": {"labels": {"x": "y"}}})
    assert r["metadata"]["generation"] == 1
    # status: not the spec
    r = await api.ok("PATCH", STS + "/web/status", {"status": {"replicas": 1}})
    assert r["metadata"]["generation"] == 1
    # spec: bumped once per change
    r = await api.ok("PATCH", STS + "/web", {"spec": {"replicas": 3}})
    assert r["metadata"]["generation"] == 2
    # a client cannot set generation itself
    cur = await api.ok("GET", STS + "/web")
    cur["metadata"]["generation"] = 40
    r = await api.ok("PUT", STS + "/web", cur)
    assert r["metadata"]["generation"] == 2
    # the same spec again: no bump
    r = await api.ok("PATCH", STS + "/web", {"spec": {"replicas": 3}})
    assert r["metadata"]["generation"] == 2


async def test_statefulset_create_ignores_client_generation(api):
    body = statefulset("web")
    body["metadata"]["generation"] = 9
    created = await api.ok("POST", STS, body)
    assert created["metadata"]["generation"] == 1


# ----------------------------------------------------------------------- immutable metadata
async def test_update_keeps_creation_timestamp(api):
    created = await api.ok("POST", CM, configmap("a"))
    body = dict(created)
    body["metadata"] = dict(created["metadata"], creationTimestamp="2001-01-01T00:00:00Z")
    r = await api.ok("PUT", CM + "/a", body)
    assert r["metadata"]["creationTimestamp"] == created["metadata"]["creationTimestamp"]
    assert r["metadata"]["uid"] == created["metadata"]["uid"]


async def test_update_without_uid_keeps_uid(api):
    created = await api.ok("POST", CM, configmap("a"))
    body = configmap("a", {"k": "v"})
    r = await api.ok("PUT", CM + "/a", body)
    assert r["metadata"]["uid"] == created["metadata"]["uid"]


async def test_update_with_another_uid_is_a_conflict(api):
    created = await api.ok("POST", CM, configmap("a"))
    body = configmap("a", {"k": "v"}, uid="11111111-1111-1111-1111-111111111111")
    r = await api.put(CM + "/a", body)
    assert r.status == 409, r
    assert r.body["reason"] == "Conflict"
    assert r.body["message"] == (
        'Operation cannot be fulfilled on configmaps "a": StorageError: invalid object, Code: 4, '
        'Key: /registry/configmaps/default/a, ResourceVersion: 0, AdditionalErrorMsg: '
        'Precondition failed: UID in precondition: 11111111-1111-1111-1111-111111111111, UID in '
        'object meta: ' + created["metadata"]["uid"])
    assert (await api.ok("GET", CM + "/a")).get("data") in (None, {})


async def test_update_cannot_rename(api):
    await api.ok("POST", CM, configmap("a"))
    r = await api.put(CM + "/a", configmap("b"))
    assert r.status == 400, r
    assert r.body == status_body(400, "BadRequest",
                                 "the name of the object (b) does not match the name on the URL "
                                 "(a)")
    assert (await api.get(CM + "/b")).status == 404


# ------------------------------------------------------------------- labels and annotations
LABEL_KEY_MSG = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must "
                 "start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  "
                 "or '123-abc', regex used for validation is "
                 "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, "
                   "'-', '_' or '.', and must start and end with an alphanumeric character (e.g. "
                   "'MyValue',  or 'my_value',  or '12345', regex used for validation is "
                   "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")


@pytest.mark.parametrize("labels, annotations, want", [
    ({"bad key!": "v"}, None,
     [("metadata.labels", f'Invalid value: "bad key!": {LABEL_KEY_MSG}')]),
    ({"k": "-bad-"}, None,
     [("metadata.labels", f'Invalid value: "-bad-": {LABEL_VALUE_MSG}')]),
    (None, {"bad key!": "v"},
     [("metadata.annotations", f'Invalid value: "bad key!": {LABEL_KEY_MSG}')]),
    ({"bad key!": "v"}, {"also bad!": "v"},
     [("metadata.labels", f'Invalid value: "bad key!": {LABEL_KEY_MSG}'),
      ("metadata.annotations", f'Invalid value: "also bad!": {LABEL_KEY_MSG}')]),
])
async def test_label_and_annotation_syntax_errors(api, labels, annotations, want):
    body = configmap("a", labels=labels)
    if annotations is not None:
        body["metadata"]["annotations"] = annotations
    r = await api.post(CM, body)
    assert r.status == 422, r
    assert r.body["reason"] == "Invalid"
    causes = r.body["details"]["causes"]
    assert [(c["field"], c["message"]) for c in causes] == want
    assert all(c["reason"] == "FieldValueInvalid" for c in causes)
    assert r.body["details"]["name"] == "a" and r.body["details"]["kind"] == "ConfigMap"
    if len(want) == 1:
        assert r.body["message"] == f'ConfigMap "a" is invalid: {want[0][0]}: {want[0][1]}'
    assert (await api.get(CM + "/a")).status == 404


async def test_label_errors_on_update_leave_the_object_alone(api):
    created = await api.ok("POST", CM, configmap("a", labels={"ok": "1"}))
    r = await api.patch(CM + "/a", {"metadata": {"labels": {"bad key!": "v"}}})
    assert r.status == 422, r
    got = await api.ok("GET", CM + "/a")
    assert got["metadata"]["labels"] == {"ok": "1"}
    assert got["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


# ----------------------------------------------------------------------- status subresource
async def test_main_resource_writes_keep_status(api):
    await api.ok("POST", STS, statefulset("web"))
    await api.ok("PATCH", STS + "/web/status", {"status": {"replicas": 1, "readyReplicas": 1}})
    cur = await api.ok("GET", STS + "/web")
    cur["status"] = {"replicas": 5, "readyReplicas": 5}
    r = await api.ok("PUT", STS + "/web", cur)
    assert r["status"]["replicas"] == 1 and r["status"]["readyReplicas"] == 1
    r = await api.ok("PATCH", STS + "/web", {"status": {"replicas": 9}})
    assert r["status"]["replicas"] == 1


async def test_status_writes_keep_spec_and_labels(api):
    await api.ok("POST", STS, statefulset("web", replicas=2, labels={"a": "1"}))
    cur = await api.ok("GET", ns_path("default", "statefulsets", "web", "status", group="apps"))
    cur["spec"]["replicas"] = 7
    cur["metadata"]["labels"] = {"a": "2"}
    cur["status"] = {"replicas": 2, "readyReplicas": 1}
    r = await api.ok("PUT", STS + "/web/status", cur)
    assert r["spec"]["replicas"] == 2
    assert r["metadata"]["labels"] == {"a": "1"}
    assert r["status"]["readyReplicas"] == 1
    assert r["metadata"]["generation"] == 1
    got = await api.ok("GET", STS + "/web")
    assert got["spec"]["replicas"] == 2 and got["status"]["readyReplicas"] == 1


async def test_status_patch_keeps_spec_and_labels(api):
    await api.ok("POST", STS, statefulset("web", replicas=2, labels={"a": "1"}))
    r = await api.ok("PATCH", STS + "/web/status", {"metadata": {"labels": {"a": "2"}},
                                                    "spec": {"replicas": 9},
                                                    "status": {"replicas": 2}})
    assert r["metadata"]["labels"] == {"a": "1"}
    assert r["spec"]["replicas"] == 2
    assert r["status"]["replicas"] == 2


async def test_pod_status_write_cannot_move_the_pod(api):
    await api.ok("POST", ns_path("default", "pods"), pod("p"))
    r = await api.ok("PATCH", ns_path("default", "pods", "p", "status"),
                     {"spec": {"nodeName": "n9"}, "status": {"phase": "Running"}})
    assert r["status"]["phase"] == "Running"
    assert "nodeName" not in r["spec"]


async def test_status_put_with_stale_resource_version_conflicts(api):
    created = await api.ok("POST", STS, statefulset("web"))
    await api.ok("PATCH", STS + "/web", {"metadata": {"labels": {"x": "1"}}})
    created["status"] = {"replicas": 1}
    r = await api.put(STS + "/web/status", created)
    assert r.status == 409, r
    assert r.body["reason"] == "Conflict"


# -------------------------------------------------------------------------- PrepareForCreate
async def test_pod_create_resets_status_to_pending_with_qos(api):
    body = pod("p")
    body["status"] = {"phase": "Running", "podIP": "1.2.3.4"}
    r = await api.ok("POST", ns_path("default", "pods"), body)
    assert r["status"] == {"phase": "Pending", "qosClass": "BestEffort"}


@pytest.mark.parametrize("resources, qos", [
    ({}, "BestEffort"),
    ({"requests": {"cpu": "100m"}}, "Burstable"),
    ({"limits": {"cpu": "1", "memory": "1Gi"}}, "Guaranteed"),
    ({"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
     "Guaranteed"),
    ({"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
     "Burstable"),
])
async def test_pod_qos_class(api, resources, qos):
    body = pod("p")
    body["spec"]["containers"][0]["resources"] = resources
    r = await api.ok("POST", ns_path("default", "pods"), body)
    assert r["status"]["qosClass"] == qos


async def test_pvc_create_resets_status_to_pending(api):
    body = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "c"},
            "spec": {"accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": "1Gi"}}},
            "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}}}
    r = await api.ok("POST", ns_path("default", "persistentvolumeclaims"), body)
    assert r["status"] == {"phase": "Pending"}


async def test_namespace_create_is_active_with_kubernetes_finalizer(api):
    body = namespace("team")
    body["status"] = {"phase": "Terminating"}
    r = await api.ok("POST", "/api/v1/namespaces", body)
    assert r["status"] == {"phase": "Active"}
    assert r["spec"] == {"finalizers": ["kubernetes"]}
    assert r["metadata"]["labels"]["kubernetes.io/metadata.name"] == "team"


# ------------------------------------------------------------------- an independent client
async def test_lightkube_sees_server_set_metadata(api_server):
    from lightkube import AsyncClient, KubeConfig
    from lightkube.models.meta_v1 import ObjectMeta
    from lightkube.resources.apps_v1 import StatefulSet
    from lightkube.resources.core_v1 import ConfigMap

    client = AsyncClient(config=KubeConfig.from_file(api_server.kubeconfig))
    try:
        cm = await client.create(ConfigMap(metadata=ObjectMeta(generateName="lk-"),
                                           data={"a": "b"}), namespace="default")
        assert cm.metadata.name.startswith("lk-") and SUFFIX.match(cm.metadata.name[3:])
        assert cm.metadata.uid and cm.metadata.resourceVersion
        got = await client.get(ConfigMap, cm.metadata.name, namespace="default")
        assert got.metadata.uid == cm.metadata.uid
        sts = await client.create(StatefulSet.from_dict(statefulset("lk")), namespace="default")
        assert sts.metadata.generation == 1
        sts = await client.patch(StatefulSet, "lk", {"spec": {"replicas": 4}},
                                 namespace="default")
        assert sts.metadata.generation == 2 and sts.spec.replicas == 4
    finally:
        await client.close()
