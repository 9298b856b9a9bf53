"""Error answers: the exact Status bodies upstream sends, and nothing stored after a refusal.

Each case is a request the server must refuse, the Status it must answer with (code, reason,
message, details), and a check that the refused write left the store as it was (same revision,
no object).
"""

from __future__ import annotations

import pytest

from test_api_helpers import (api, configmap, ns_path, pod, status_body, statefulset)  # noqa: F401

CM = ns_path("default", "configmaps")
STS = ns_path("default", "statefulsets", group="apps")


@pytest.fixture
async def unchanged(api_server):
    """Asserts, after the test body, that no write reached the store."""
    before = api_server.server.objects.store.current_revision()
    yield
    assert api_server.server.objects.store.current_revision() == before


# ---------------------------------------------------------------------------------- 404
async def test_get_missing_object(api):
    r = await api.get(CM + "/nope")
    assert r.status == 404
    assert r.body == status_body(404, "NotFound", 'configmaps "nope" not found',
                                 {"name": "nope", "kind": "configmaps"})
    assert r.headers["Content-Type"].startswith("application/json")


async def test_get_missing_object_of_a_group(api):
    r = await api.get(STS + "/db")
    assert r.body == status_body(404, "NotFound", 'statefulsets.apps "db" not found',
                                 {"name": "db", "group": "apps", "kind": "statefulsets"})


async def test_delete_and_patch_missing_object(api, unchanged):
    r = await api.delete(CM + "/nope")
    assert r.status == 404 and r.body["message"] == 'configmaps "nope" not found'
    r = await api.patch(CM + "/nope", {"data": {"a": "b"}})
    assert r.status == 404 and r.body["message"] == 'configmaps "nope" not found'
    r = await api.put(CM + "/nope", configmap("nope"))
    assert r.status == 404 and r.body["message"] == 'configmaps "nope" not found'


@pytest.mark.parametrize("path", [
    "/api/v1/namespaces/default/widgets",
    "/apis/nosuch.example.com/v1/things",
    "/api/v2/pods",
    "/nothing/here",
    "/api/v1/namespaces/default/pods/p/nosuchsub",
])
async def test_unknown_path(api, path):
    r = await api.get(path)
    assert r.status == 404, r
    assert (r.body["code"], r.body["reason"], r.body["message"]) == (
        404, "NotFound", "the server could not find the requested resource")


async def test_unknown_path_status_body_exact(api):
    r = await api.get("/api/v1/namespaces/default/widgets")
    assert r.body == status_body(404, "NotFound",
                                 "the server could not find the requested resource", {})


# ---------------------------------------------------------------------------------- 409
async def test_create_existing(api):
    first = await api.ok("POST", CM, configmap("a", {"k": "1"}))
    r = await api.post(CM, configmap("a", {"k": "2"}))
    assert r.status == 409
    assert r.body == status_body(409, "AlreadyExists", 'configmaps "a" already exists',
                                 {"name": "a", "kind": "configmaps"})
    got = await api.ok("GET", CM + "/a")
    assert got == first


async def test_update_with_stale_resource_version(api):
    old = await api.ok("POST", CM, configmap("a", {"k": "1"}))
    newer = await api.ok("PATCH", CM + "/a", {"data": {"k": "2"}})
    old["data"] = {"k": "3"}
    r = await api.put(CM + "/a", old)
    assert r.status == 409
    assert r.body == status_body(
        409, "Conflict", 'Operation cannot be fulfilled on configmaps "a": the object has been '
        'modified; please apply your changes to the latest version and try again',
        {"name": "a", "kind": "configmaps"})
    assert await api.ok("GET", CM + "/a") == newer


async def test_stale_resource_version_of_a_group(api):
    old = await api.ok("POST", STS, statefulset("db"))
    await api.ok("PATCH", STS + "/db", {"spec": {"replicas": 2}})
    r = await api.put(STS + "/db", old)
    assert r.body == status_body(
        409, "Conflict", 'Operation cannot be fulfilled on statefulsets.apps "db": the object '
        'has been modified; please apply your changes to the latest version and try again',
        {"name": "db", "group": "apps", "kind": "statefulsets"})


async def test_patch_with_stale_resource_version_in_body(api):
    old = await api.ok("POST", CM, configmap("a"))
    await api.ok("PATCH", CM + "/a", {"data": {"k": "2"}})
    r = await api.patch(CM + "/a", {"metadata": {"resourceVersion": old["metadata"][
        "resourceVersion"]}, "data": {"k": "3"}})
    assert r.status == 409 and r.body["reason"] == "Conflict"
    assert (await api.ok("GET", CM + "/a"))["data"] == {"k": "2"}


async def test_put_without_resource_version_is_unconditional(api):
    await api.ok("POST", CM, configmap("a"))
    await api.ok("PATCH", CM + "/a", {"data": {"k": "2"}})
    r = await api.ok("PUT", CM + "/a", configmap("a", {"k": "3"}))
    assert r["data"] == {"k": "3"}


# ---------------------------------------------------------------------------------- 422
async def test_invalid_object(api, unchanged):
    body = statefulset("db", replicas=-1)
    r = await api.post(STS, body)
    assert r.status == 422, r
    assert r.body["reason"] == "Invalid"
    assert r.body["details"] == {
        "name": "db", "group": "apps", "kind": "StatefulSet",
        "causes": [{"reason": "FieldValueInvalid",
                    "message": "Invalid value: -1: must be greater than or equal to 0",
                    "field": "spec.replicas"}]}


async def test_invalid_message_qualifies_the_kind_with_its_group(api, unchanged):
    r = await api.post(STS, statefulset("db", replicas=-1))
    assert r.body["message"] == ('StatefulSet.apps "db" is invalid: spec.replicas: Invalid '
                                 'value: -1: must be greater than or equal to 0')


async def test_invalid_core_object_message(api, unchanged):
    body = pod("BAD_NAME")
    r = await api.post(ns_path("default", "pods"), body)
    assert r.status == 422, r
    assert r.body["message"].startswith('Pod "BAD_NAME" is invalid: metadata.name: Invalid value: '
                                        '"BAD_NAME": a lowercase RFC 1123 subdomain')
    assert r.body["details"]["kind"] == "Pod" and "group" not in r.body["details"]


async def test_several_causes_are_listed(api, unchanged):
    body = {"metadata": {"name": "c"}, "spec": {}}
    r = await api.post(ns_path("default", "persistentvolumeclaims"), body)
    assert r.status == 422, r
    fields = [c["field"] for c in r.body["details"]["causes"]]
    assert "spec.accessModes" in fields and "spec.resources[storage]" in fields
    assert r.body["message"].startswith('PersistentVolumeClaim "c" is invalid: [')


# ---------------------------------------------------------------------------------- 400
async def test_malformed_json(api, unchanged):
    r = await api.post(CM, data=b'{"metadata": {"name": ', content_type="application/json")
    assert r.status == 400, r
    assert r.body["reason"] == "BadRequest"
    assert r.body["message"].startswith("couldn't get version/kind; json parse error: ")


async def test_empty_body(api, unchanged):
    r = await api.post(CM, data=b"", content_type="application/json")
    assert r.status == 400 and r.body["reason"] == "BadRequest", r


async def test_wrong_kind_in_body_message(api, unchanged):
    r = await api.post(CM, pod("p"))
    assert r.body == status_body(400, "BadRequest",
                                 'Pod in version "v1" cannot be handled as a ConfigMap: '
                                 'converting (v1.Pod) to (core.ConfigMap): unknown conversion')


async def test_wrong_kind_in_body(api, unchanged):
    r = await api.post(CM, pod("p"))
    assert r.status == 400, r
    assert r.body["reason"] == "BadRequest"
    assert "ConfigMap" in r.body["message"]
    assert (await api.get(ns_path("default", "pods", "p"))).status == 404
    assert (await api.get(CM + "/p")).status == 404


async def test_wrong_api_version_in_body(api, unchanged):
    body = configmap("a")
    body["apiVersion"] = "apps/v1"
    r = await api.post(CM, body)
    assert r.status == 400, r
    assert r.body["reason"] == "BadRequest"
    assert r.body["message"] == ("the API version in the data (apps/v1) does not match the "
                                 "expected API version (v1)")


async def test_namespace_mismatch(api, unchanged):
    body = configmap("a")
    body["metadata"]["namespace"] = "kube-system"
    r = await api.post(CM, body)
    assert r.body == status_body(400, "BadRequest",
                                 "the namespace of the provided object does not match the "
                                 "namespace sent on the request")
    assert (await api.get(ns_path("kube-system", "configmaps", "a"))).status == 404


async def test_namespace_mismatch_on_update(api):
    await api.ok("POST", CM, configmap("a"))
    body = configmap("a", {"k": "v"})
    body["metadata"]["namespace"] = "kube-system"
    r = await api.put(CM + "/a", body)
    assert r.status == 400 and r.body["message"] == (
        "the namespace of the provided object does not match the namespace sent on the request")


async def test_unknown_field_strict(api, unchanged):
    body = configmap("a")
    body["spec"] = {"x": 1}
    body["metadata"]["bogus"] = True
    r = await api.post(CM, body, params={"fieldValidation": "Strict"})
    assert r.status == 400, r
    assert r.body["reason"] == "BadRequest"
    assert r.body["message"].startswith(
        'ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: ')
    assert 'unknown field "spec"' in r.body["message"]
    assert 'unknown field "metadata.bogus"' in r.body["message"]
    assert (await api.get(CM + "/a")).status == 404


async def test_unknown_field_warn_drops_it_and_warns(api):
    body = configmap("a", {"k": "v"})
    body["spec"] = {"x": 1}
    r = await api.post(CM, body, params={"fieldValidation": "Warn"})
    assert r.status == 201, r
    assert r.headers.getall("Warning") == ['299 - "unknown field \\"spec\\""']
    assert "spec" not in r.body
    got = await api.ok("GET", CM + "/a")
    assert "spec" not in got and got["data"] == {"k": "v"}


async def test_unknown_field_default_is_warn(api):
    body = configmap("a")
    body["extra"] = 1
    r = await api.post(CM, body)
    assert r.status == 201
    assert r.headers.getall("Warning") == ['299 - "unknown field \\"extra\\""']


async def test_unknown_field_ignore_is_silent(api):
    body = configmap("a")
    body["extra"] = 1
    r = await api.post(CM, body, params={"fieldValidation": "Ignore"})
    assert r.status == 201 and "Warning" not in r.headers and "extra" not in r.body


async def test_unknown_field_strict_on_patch(api):
    await api.ok("POST", CM, configmap("a"))
    r = await api.patch(CM + "/a", {"spec": {"x": 1}}, params={"fieldValidation": "Strict"})
    assert r.status == 400, r
    assert 'unknown field "spec"' in r.body["message"]


@pytest.mark.parametrize("body, message", [
    (configmap("a", {"k": 1}),
     'ConfigMap in version "v1" cannot be handled as a ConfigMap: json: cannot unmarshal number '
     'into Go struct field ConfigMap.data of type string'),
    (configmap("a", {"k": "v"}, annotations={"a": True}),
     'ConfigMap in version "v1" cannot be handled as a ConfigMap: json: cannot unmarshal bool '
     'into Go struct field ObjectMeta.metadata.annotations of type string'),
    ({"metadata": {"name": "a", "labels": ["x"]}},
     'ConfigMap in version "v1" cannot be handled as a ConfigMap: json: cannot unmarshal array '
     'into Go struct field ObjectMeta.metadata.labels of type map[string]string'),
    ({"metadata": {"name": 5}},
     'ConfigMap in version "v1" cannot be handled as a ConfigMap: json: cannot unmarshal number '
     'into Go struct field ObjectMeta.metadata.name of type string'),
])
async def test_wrong_json_type(api, unchanged, body, message):
    r = await api.post(CM, body)
    assert r.status == 400, r
    assert r.body == status_body(400, "BadRequest", message)


async def test_wrong_json_type_in_a_nested_struct(api, unchanged):
    body = statefulset("db")
    body["spec"]["replicas"] = "three"
    r = await api.post(STS, body)
    assert r.status == 400, r
    assert r.body["message"] == (
        'StatefulSet in version "v1" cannot be handled as a StatefulSet: json: cannot unmarshal '
        'string into Go struct field StatefulSetSpec.spec.replicas of type int32')


async def test_bad_field_validation_value(api, unchanged):
    r = await api.post(CM, configmap("a"), params={"fieldValidation": "Loose"})
    assert r.status == 400 and r.body["reason"] == "BadRequest", r


# ---------------------------------------------------------------------------------- 405
@pytest.mark.parametrize("method, path", [
    ("PUT", "/api/v1/namespaces/default/configmaps"),
    ("PATCH", "/api/v1/namespaces/default/configmaps"),
    ("POST", "/api/v1/namespaces/default/configmaps/a"),
    ("DELETE", "/api/v1/namespaces/default/pods/p/status"),
    ("POST", "/version"),
])
async def test_method_not_allowed(api, unchanged, method, path):
    r = await api.request(method, path, {"a": 1})
    assert r.status == 405, r
    assert (r.body["code"], r.body["reason"], r.body["message"]) == (
        405, "MethodNotAllowed", "the server does not allow this method on the requested "
        "resource")


async def test_method_not_allowed_status_body_exact(api):
    r = await api.put(CM, configmap("a"))
    assert r.body == status_body(405, "MethodNotAllowed", "the server does not allow this "
                                 "method on the requested resource", {})


# ---------------------------------------------------------------------------------- 413
async def test_body_over_three_mebibytes(api, unchanged):
    body = configmap("big", {"k": "x" * (3 * 1024 * 1024 + 10)})
    r = await api.post(CM, body)
    assert r.status == 413, r
    assert r.body == status_body(413, "RequestEntityTooLarge",
                                 "Request entity too large: limit is 3145728")
    assert (await api.get(CM + "/big")).status == 404


async def test_patch_body_over_three_mebibytes(api):
    await api.ok("POST", CM, configmap("a"))
    r = await api.patch(CM + "/a", {"data": {"k": "x" * (3 * 1024 * 1024 + 10)}})
    assert r.status == 413, r
    assert r.body["reason"] == "RequestEntityTooLarge"


async def test_body_just_under_the_limit_is_accepted_by_the_decoder(api):
    # 1 MiB of data: well within the request limit
    r = await api.post(CM, configmap("mid", {"k": "x" * (1024 * 1024)}))
    assert r.status == 201, r


# ---------------------------------------------------------------------------------- 415
@pytest.mark.parametrize("ctype", ["text/plain", "application/xml", "application/json"])
async def test_unknown_patch_content_type(api, ctype):
    created = await api.ok("POST", CM, configmap("a"))
    r = await api.patch(CM + "/a", {"data": {"k": "v"}}, content_type=ctype)
    assert r.status == 415, r
    assert r.body["reason"] == "UnsupportedMediaType" and r.body["code"] == 415
    assert r.body["message"].startswith("the body of the request was in an unknown format - "
                                        "accepted media types include: ")
    for t in ("application/json-patch+json", "application/merge-patch+json",
              "application/strategic-merge-patch+json", "application/apply-patch+yaml"):
        assert t in r.body["message"]
    assert await api.ok("GET", CM + "/a") == created


async def test_unknown_body_content_type_on_create(api, unchanged):
    r = await api.post(CM, data=b"<xml/>", content_type="application/xml")
    assert r.status == 415 and r.body["reason"] == "UnsupportedMediaType", r


# ----------------------------------------------------------------------- dry run stores nothing
async def test_dry_run_create_and_delete_store_nothing(api):
    created = await api.ok("POST", CM, configmap("keep"))
    before = (await api.ok("GET", CM))["metadata"]["resourceVersion"]
    r = await api.post(CM, configmap("dry"), params={"dryRun": "All"})
    assert r.status == 201 and r.body["metadata"]["name"] == "dry"
    r = await api.delete(CM + "/keep", params={"dryRun": "All"})
    assert r.status == 200
    assert (await api.get(CM + "/dry")).status == 404
    assert await api.ok("GET", CM + "/keep") == created
    assert (await api.ok("GET", CM))["metadata"]["resourceVersion"] == before
