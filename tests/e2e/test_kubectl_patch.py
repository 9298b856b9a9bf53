"""kubectl patch (strategic, merge, json), label, annotate and scale, against `k1s up`
(spec/kubectl-wire.md §7, §9)."""

from __future__ import annotations

import json

import pytest

from e2e_util import lines, manifest


def _containers(kubectl, ns: str, name: str = "demo") -> list[dict]:
    return kubectl.json("get", "sts", name, "-n", ns)["spec"]["template"]["spec"]["containers"]


@pytest.fixture
def demo(kubectl, namespace):
    """StatefulSet `demo` (containers app + sidecar) and ConfigMap `settings`."""
    kubectl.ok("create", "-n", namespace, "-f", manifest("apply-v1.yaml"))
    return namespace


def test_strategic_merges_containers_by_name(anykubectl, demo):
    k = anykubectl
    patch = {"spec": {"template": {"spec": {"containers": [
        {"name": "sidecar", "image": "busybox:1.37"},
        {"name": "extra", "image": "redis:7"}]}}}}
    out = k.ok("patch", "sts", "demo", "-n", demo, "-p", json.dumps(patch))
    assert out.strip() == "statefulset.apps/demo patched"
    cs = _containers(k, demo)
    assert [(c["name"], c["image"]) for c in cs] == [
        ("app", "nginx:1.25"), ("sidecar", "busybox:1.37"), ("extra", "redis:7")]
    # The untouched container keeps its env, merged lists keep their other items.
    assert cs[0]["env"] == [{"name": "MODE", "value": "fast"}, {"name": "DEBUG", "value": "1"}]
    assert cs[2]["imagePullPolicy"] == "IfNotPresent"     # defaults apply to the new item


def test_strategic_env_by_name_and_delete_directive(kubectl, demo):
    patch = {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "env": [{"name": "DEBUG", "value": "0"}, {"name": "NEW", "value": "y"}]},
        {"name": "sidecar", "$patch": "delete"}]}}}}
    kubectl.ok("patch", "sts", "demo", "-n", demo, "--type=strategic", "-p", json.dumps(patch))
    cs = _containers(kubectl, demo)
    assert [c["name"] for c in cs] == ["app"]
    assert cs[0]["env"] == [{"name": "MODE", "value": "fast"}, {"name": "DEBUG", "value": "0"},
                            {"name": "NEW", "value": "y"}]


def test_strategic_on_pod_image(kubectl, namespace):
    kubectl.ok("create", "-n", namespace, "-f", manifest("pods.yaml"))
    kubectl.ok("patch", "pod", "p1", "-n", namespace, "-p",
               '{"spec":{"containers":[{"name":"side","image":"busybox:1.36"}]}}')
    out = kubectl.ok("get", "pod", "p1", "-n", namespace, "-o",
                     "jsonpath={range .spec.containers[*]}{.name}={.image} {end}")
    assert out.strip() == "main=nginx side=busybox:1.36"


def test_merge_patch_replaces_lists_and_deletes_with_null(anykubectl, demo):
    k = anykubectl
    out = k.ok("patch", "cm", "settings", "-n", demo, "--type=merge",
               "-p", '{"data":{"retries":null,"level":"2"}}')
    assert out.strip() == "configmap/settings patched"
    assert k.json("get", "cm", "settings", "-n", demo)["data"] == {"mode": "fast", "level": "2"}
    # A merge patch replaces a list wholesale: only the one container remains.
    k.ok("patch", "sts", "demo", "-n", demo, "--type=merge", "-p", json.dumps(
        {"spec": {"template": {"spec": {"containers": [{"name": "solo", "image": "nginx"}]}}}}))
    assert [c["name"] for c in _containers(k, demo)] == ["solo"]


def test_patch_without_change(kubectl, demo):
    out = kubectl.ok("patch", "cm", "settings", "-n", demo, "-p", '{"data":{"mode":"fast"}}')
    assert out.strip() == "configmap/settings patched (no change)"


def test_json_patch_operations(kubectl, demo):
    ops = [{"op": "add", "path": "/data/new", "value": "1"},
           {"op": "replace", "path": "/data/mode", "value": "slow"},
           {"op": "remove", "path": "/data/retries"},
           {"op": "test", "path": "/data/new", "value": "1"},
           {"op": "copy", "from": "/data/mode", "path": "/data/mode2"},
           {"op": "move", "from": "/data/new", "path": "/data/moved"},
           {"op": "add", "path": "/metadata/labels/tier", "value": "be"}]
    out = kubectl.ok("patch", "cm", "settings", "-n", demo, "--type=json", "-p", json.dumps(ops))
    assert out.strip() == "configmap/settings patched"
    cm = kubectl.json("get", "cm", "settings", "-n", demo)
    assert cm["data"] == {"mode": "slow", "mode2": "slow", "moved": "1"}
    assert cm["metadata"]["labels"] == {"app": "demo", "tier": "be"}
    # Append to a list with "-".
    kubectl.ok("patch", "sts", "demo", "-n", demo, "--type=json", "-p", json.dumps(
        [{"op": "add", "path": "/spec/template/spec/containers/0/env/-",
          "value": {"name": "Z", "value": "z"}}]))
    assert [e["name"] for e in _containers(kubectl, demo)[0]["env"]] == ["MODE", "DEBUG", "Z"]


def test_json_patch_failing_test_is_422(kubectl, demo):
    before = kubectl.json("get", "cm", "settings", "-n", demo)
    p = kubectl("patch", "cm", "settings", "-n", demo, "--type=json", "-v=6", "-p",
                '[{"op":"replace","path":"/data/mode","value":"x"},'
                '{"op":"test","path":"/data/retries","value":"4"}]')
    assert p.returncode == 1
    assert 'verb="PATCH"' in p.stderr and 'status="422 Unprocessable Entity"' in p.stderr
    assert "The request is invalid" in p.stderr
    # The patch is all or nothing: the replace before the failed test is not stored.
    after = kubectl.json("get", "cm", "settings", "-n", demo)
    assert after["data"] == before["data"]
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


def test_json_patch_failing_test_message(kubectl, demo):
    # Upstream answers NewGenericServerResponse(422, ..., isUnexpectedResponse=false): empty
    # details, no causes, so kubectl prints only the generic text.
    p = kubectl("patch", "cm", "settings", "-n", demo, "--type=json", "-p",
                '[{"op":"test","path":"/data/retries","value":"4"}]')
    assert p.returncode == 1
    assert p.stderr.strip() == ("The request is invalid: the server rejected our request due "
                                "to an error in our request")


def test_patch_that_breaks_validation(kubectl, demo):
    p = kubectl("patch", "sts", "demo", "-n", demo, "--type=merge",
                "-p", '{"spec":{"replicas":-2}}')
    assert p.returncode == 1
    assert p.stderr.strip() == ('The StatefulSet "demo" is invalid: spec.replicas: Invalid '
                                'value: -2: must be greater than or equal to 0')


def test_patch_cannot_change_status_or_identity(kubectl, demo):
    before = kubectl.json("get", "sts", "demo", "-n", demo)
    kubectl.ok("patch", "sts", "demo", "-n", demo, "--type=merge", "-p", json.dumps(
        {"status": {"replicas": 7}, "metadata": {"labels": {"x": "y"}}}))
    after = kubectl.json("get", "sts", "demo", "-n", demo)
    assert after.get("status", {}).get("replicas", 0) != 7
    assert after["metadata"]["labels"] == {"x": "y"}
    assert after["metadata"]["uid"] == before["metadata"]["uid"]


def test_label_add_overwrite_remove(anykubectl, demo):
    k = anykubectl
    run = lambda *a: k("label", "cm", "settings", "-n", demo, *a)  # noqa: E731
    p = run("color=red")
    assert p.returncode == 0 and p.stdout.strip() == "configmap/settings labeled"
    p = run("color=blue")
    assert p.returncode == 1
    assert p.stderr.strip() == "error: 'color' already has a value (red), and --overwrite is false"
    p = run("color=blue", "--overwrite")
    assert p.stdout.strip() == "configmap/settings labeled"
    assert k.json("get", "cm", "settings", "-n", demo)["metadata"]["labels"] == \
        {"app": "demo", "color": "blue"}
    p = run("color-")
    assert p.stdout.strip() == "configmap/settings unlabeled"
    assert k.json("get", "cm", "settings", "-n", demo)["metadata"]["labels"] == {"app": "demo"}


def test_label_by_selector(kubectl, namespace):
    kubectl.ok("create", "-n", namespace, "-f", manifest("pods.yaml"))
    out = kubectl.ok("label", "pods", "-n", namespace, "-l", "app=web", "checked=yes")
    assert lines(out) == ["pod/p1 labeled", "pod/p3 labeled"]
    out = kubectl.ok("get", "pods", "-n", namespace, "-l", "checked=yes", "-o", "name")
    assert lines(out) == ["pod/p1", "pod/p3"]


def test_annotate_add_overwrite_remove(kubectl, demo):
    run = lambda *a: kubectl("annotate", "cm", "settings", "-n", demo, *a)  # noqa: E731
    assert run("note=hello").stdout.strip() == "configmap/settings annotated"
    p = run("note=bye")
    assert p.returncode == 1
    assert p.stderr.strip() == \
        "error: --overwrite is false but found the following declared annotation(s): 'note' already has a value (hello)"
    assert run("note=bye", "--overwrite").stdout.strip() == "configmap/settings annotated"
    assert kubectl.json("get", "cm", "settings", "-n", demo)["metadata"]["annotations"] == \
        {"note": "bye"}
    assert run("note-").stdout.strip() == "configmap/settings annotated"
    assert not kubectl.json("get", "cm", "settings", "-n", demo)["metadata"].get("annotations")


def test_emptied_maps_are_dropped(kubectl, demo):
    # Upstream decodes into Go maps; omitempty leaves an emptied map out.
    kubectl.ok("annotate", "cm", "settings", "-n", demo, "note=hello")
    kubectl.ok("annotate", "cm", "settings", "-n", demo, "note-")
    kubectl.ok("label", "cm", "settings", "-n", demo, "app-")
    meta = kubectl.json("get", "cm", "settings", "-n", demo)["metadata"]
    assert "annotations" not in meta and "labels" not in meta


def test_scale_statefulset(kubectl, namespace):
    out = kubectl.ok("create", "-n", namespace, "-f", manifest("statefulset.yaml"))
    assert lines(out) == ["service/db created", "statefulset.apps/db created"]
    gen = kubectl.json("get", "sts", "db", "-n", namespace)["metadata"]["generation"]
    out = kubectl.ok("scale", "sts", "db", "-n", namespace, "--replicas=3")
    assert out.strip() == "statefulset.apps/db scaled"
    assert kubectl.ok("get", "sts", "db", "-n", namespace, "-o", "jsonpath={.spec.replicas}") \
        == "3"
    assert kubectl.json("get", "sts", "db", "-n", namespace)["metadata"]["generation"] == gen + 1


def test_scale_with_precondition(kubectl, namespace):
    kubectl.ok("create", "-n", namespace, "-f", manifest("statefulset.yaml"))
    kubectl.ok("scale", "sts", "db", "-n", namespace, "--replicas=3")
    # The precondition form: PUT of the whole Scale, refused when the count is stale.
    p = kubectl("scale", "sts", "db", "-n", namespace, "--current-replicas=2", "--replicas=1")
    assert p.returncode == 1
    assert "Expected replicas to be 2, was 3" in p.stderr
    out = kubectl.ok("scale", "sts", "db", "-n", namespace, "--current-replicas=3",
                     "--replicas=0")
    assert out.strip() == "statefulset.apps/db scaled"
    assert kubectl.ok("get", "sts", "db", "-n", namespace, "-o", "jsonpath={.spec.replicas}") \
        == "0"


def test_scale_subresource_patch(kubectl, namespace):
    kubectl.ok("create", "-n", namespace, "-f", manifest("statefulset.yaml"))
    out = kubectl.ok("patch", "sts", "db", "-n", namespace, "--subresource=scale",
                     "--type=merge", "-p", '{"spec":{"replicas":4}}')
    assert out.strip() == "scale.autoscaling/db patched"
    scale = kubectl.json("get", "sts", "db", "-n", namespace, "--subresource=scale")
    assert (scale["kind"], scale["apiVersion"]) == ("Scale", "autoscaling/v1")
    assert scale["spec"] == {"replicas": 4}
    assert scale["status"]["selector"] == "app=db"


def test_scale_a_service_fails(kubectl, namespace):
    kubectl.ok("create", "-n", namespace, "-f", manifest("statefulset.yaml"))
    p = kubectl("scale", "svc", "db", "-n", namespace, "--replicas=2")
    assert p.returncode == 1
    assert "the server could not find the requested resource" in p.stderr
