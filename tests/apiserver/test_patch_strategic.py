"""Strategic merge patch, with the bodies kubectl sends (kubectl-wire.md §4.3, §8.3, §8.4)."""

import copy

import pytest
from hypothesis import given, strategies as st

from k1s.api.errors import StatusError
from k1s.apiserver.patch import merge_patch, strategic_merge_patch

STS = "io.k8s.api.apps.v1.StatefulSet"
POD = "io.k8s.api.core.v1.Pod"
SVC = "io.k8s.api.core.v1.Service"


def sts():
    return {
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": "default", "labels": {"app": "db"},
                     "finalizers": ["a", "b"]},
        "spec": {
            "replicas": 1, "serviceName": "db",
            "selector": {"matchLabels": {"app": "db"}},
            "template": {
                "metadata": {"labels": {"app": "db"}},
                "spec": {
                    "containers": [
                        {"name": "pg", "image": "postgres:16",
                         "args": ["-c", "fsync=on"],
                         "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                         "ports": [{"containerPort": 5432, "protocol": "TCP"}],
                         "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
                        {"name": "side", "image": "busybox"},
                    ],
                    "volumes": [{"name": "scratch", "emptyDir": {}}],
                    "tolerations": [{"key": "k", "operator": "Exists"}],
                }}}}


def containers(obj):
    return obj["spec"]["template"]["spec"]["containers"]


def test_client_side_apply_body():
    """The PATCH `kubectl apply` sends for a changed image and replica count."""
    patch = {"metadata": {"annotations": {
        "kubectl.kubernetes.io/last-applied-configuration": "{}\n"}},
        "spec": {"replicas": 3, "template": {"spec": {
            "$setElementOrder/containers": [{"name": "pg"}, {"name": "side"}],
            "containers": [{"image": "postgres:17", "name": "pg"}]}}}}
    out = strategic_merge_patch(sts(), patch, STS)
    assert out["spec"]["replicas"] == 3
    assert out["metadata"]["annotations"] == {
        "kubectl.kubernetes.io/last-applied-configuration": "{}\n"}
    pg, side = containers(out)
    assert pg["image"] == "postgres:17"
    assert pg["env"] == sts()["spec"]["template"]["spec"]["containers"][0]["env"]
    assert side == {"name": "side", "image": "busybox"}
    assert "$setElementOrder/containers" not in out["spec"]["template"]["spec"]


def test_rollout_undo_replaces_the_template():
    """`rollout undo` re-sends ControllerRevision.data: the whole template, `$patch: replace`."""
    template = {"metadata": {"labels": {"app": "db"}, "creationTimestamp": None},
                "spec": {"containers": [{"name": "pg", "image": "postgres:15"}]}}
    patch = {"spec": {"template": dict(template, **{"$patch": "replace"})}}
    out = strategic_merge_patch(sts(), patch, STS)
    assert out["spec"]["template"] == {"metadata": {"labels": {"app": "db"}},
                                       "spec": {"containers": [{"name": "pg",
                                                                "image": "postgres:15"}]}}
    assert out["spec"]["replicas"] == 1  # only the template is replaced


def test_rollout_restart_annotation():
    patch = {"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": "2024-01-01T00:00:00Z"}}}}}
    out = strategic_merge_patch(sts(), patch, STS)
    assert out["spec"]["template"]["metadata"] == {
        "labels": {"app": "db"},
        "annotations": {"kubectl.kubernetes.io/restartedAt": "2024-01-01T00:00:00Z"}}


def _pg(patch_container):
    patch = {"spec": {"template": {"spec": {"containers": [
        dict({"name": "pg"}, **patch_container)]}}}}
    return containers(strategic_merge_patch(sts(), patch, STS))[0]


@pytest.mark.parametrize("patch_container, field, expected", [
    # env merges by name
    ({"env": [{"name": "B", "value": "3"}]}, "env",
     [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}]),
    # volumeMounts merge by mountPath
    ({"volumeMounts": [{"name": "logs", "mountPath": "/logs"}]}, "volumeMounts",
     [{"name": "logs", "mountPath": "/logs"}, {"name": "data", "mountPath": "/data"}]),
    ({"volumeMounts": [{"mountPath": "/data", "readOnly": True}]}, "volumeMounts",
     [{"name": "data", "mountPath": "/data", "readOnly": True}]),
    # container ports merge by containerPort
    ({"ports": [{"containerPort": 5432, "name": "pg"}]}, "ports",
     [{"containerPort": 5432, "protocol": "TCP", "name": "pg"}]),
    # args has no strategy: replaced
    ({"args": ["-c", "fsync=off"]}, "args", ["-c", "fsync=off"]),
    # null deletes a key
    ({"args": None}, "args", None),
    # $patch: delete removes the item with that merge key
    ({"env": [{"name": "A", "$patch": "delete"}]}, "env", [{"name": "B", "value": "2"}]),
    # $patch: replace in a list replaces the whole list
    ({"env": [{"$patch": "replace"}, {"name": "C", "value": "9"}]}, "env",
     [{"name": "C", "value": "9"}]),
])
def test_container_lists(patch_container, field, expected):
    assert _pg(patch_container).get(field) == expected


def test_new_item_without_order_goes_first_as_upstream():
    """Without $setElementOrder, upstream puts patch-only items before server-only ones."""
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "new", "image": "x"}]}}}}
    names = [c["name"] for c in containers(strategic_merge_patch(sts(), patch, STS))]
    assert names == ["new", "pg", "side"]


def test_set_element_order_reorders():
    patch = {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "side"}, {"name": "new"}, {"name": "pg"}],
        "containers": [{"name": "new", "image": "x"}]}}}}
    names = [c["name"] for c in containers(strategic_merge_patch(sts(), patch, STS))]
    assert names == ["side", "new", "pg"]


def test_set_element_order_that_contradicts_the_list_is_400():
    patch = {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "pg"}],
        "containers": [{"name": "new", "image": "x"}]}}}}
    with pytest.raises(StatusError) as e:
        strategic_merge_patch(sts(), patch, STS)
    assert e.value.code == 400
    assert "doesn't match $setElementOrder list" in e.value.message


def test_tolerations_are_atomic():
    patch = {"spec": {"template": {"spec": {"tolerations": [{"key": "z", "operator": "Exists"}]}}}}
    out = strategic_merge_patch(sts(), patch, STS)
    assert out["spec"]["template"]["spec"]["tolerations"] == [{"key": "z", "operator": "Exists"}]


def test_finalizers_union_and_delete_from_primitive_list():
    out = strategic_merge_patch(sts(), {"metadata": {"finalizers": ["c", "a"]}}, STS)
    assert sorted(out["metadata"]["finalizers"]) == ["a", "b", "c"]
    out = strategic_merge_patch(sts(), {"metadata": {
        "$setElementOrder/finalizers": ["c", "a"],
        "finalizers": ["c"],
        "$deleteFromPrimitiveList/finalizers": ["b"]}}, STS)
    assert out["metadata"]["finalizers"] == ["c", "a"]


def test_retain_keys_switches_volume_source():
    """Volumes are `merge,retainKeys`: kubectl sends $retainKeys when the source changes."""
    patch = {"spec": {"template": {"spec": {"volumes": [
        {"name": "scratch", "$retainKeys": ["hostPath", "name"], "hostPath": {"path": "/x"}}]}}}}
    out = strategic_merge_patch(sts(), patch, STS)
    assert out["spec"]["template"]["spec"]["volumes"] == [
        {"name": "scratch", "hostPath": {"path": "/x"}}]


def test_retain_keys_must_cover_the_patch():
    patch = {"spec": {"template": {"spec": {"volumes": [
        {"name": "scratch", "$retainKeys": ["name"], "hostPath": {"path": "/x"}}]}}}}
    with pytest.raises(StatusError) as e:
        strategic_merge_patch(sts(), patch, STS)
    assert (e.value.code, e.value.message) == (400, "invalid patch format of retainKeys")


def test_patch_delete_on_a_map_empties_it_and_replace_takes_the_patch():
    out = strategic_merge_patch(sts(), {"spec": {"selector": {"$patch": "delete"}}}, STS)
    assert out["spec"]["selector"] == {}
    out = strategic_merge_patch(sts(), {"metadata": {"labels": {"$patch": "replace",
                                                                "new": "1"}}}, STS)
    assert out["metadata"]["labels"] == {"new": "1"}


def test_service_ports_by_port_and_pod_conditions_by_type():
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db"},
           "spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443}]}}
    out = strategic_merge_patch(svc, {"spec": {"ports": [{"port": 80, "targetPort": 9090}]}},
                                SVC)
    assert out["spec"]["ports"] == [{"port": 80, "targetPort": 9090}, {"port": 443}]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "status": {"conditions": [{"type": "Ready", "status": "False"},
                                     {"type": "Initialized", "status": "True"}]}}
    out = strategic_merge_patch(pod, {"status": {"conditions": [
        {"type": "Ready", "status": "True"}]}}, POD)
    assert out["status"]["conditions"] == [{"type": "Ready", "status": "True"},
                                           {"type": "Initialized", "status": "True"}]


@pytest.mark.parametrize("patch, code, message", [
    ({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}, 400,
     "map: map[image:x] does not contain declared merge key: name"),
    ({"spec": {"template": {"spec": {"containers": [{"name": "pg", "$patch": "merge"}]}}}},
     400, "merging lists cannot yet be specified in the patch"),
    ({"spec": {"selector": {"$patch": "merge"}}}, 400,
     "unknown patch type: merge in map: map[$patch:merge]"),
    ({"metadata": {"$deleteFromPrimitiveList": ["a"]}}, 400,
     "invalid patch format of primitive list"),
    ({"spec": {"template": {"spec": {"$setElementOrder/containers": "x"}}}}, 400,
     "expected a []interface {}, but received a string"),
])
def test_errors(patch, code, message):
    with pytest.raises(StatusError) as e:
        strategic_merge_patch(sts(), patch, STS)
    assert (e.value.code, e.value.message) == (code, message)


def test_non_object_patch_is_400():
    with pytest.raises(StatusError) as e:
        strategic_merge_patch(sts(), [1], STS)
    assert e.value.code == 400


def test_inputs_are_not_modified():
    original = sts()
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "pg", "$patch": "delete"}]}}}}
    before = copy.deepcopy(patch)
    strategic_merge_patch(original, patch, STS)
    assert original == sts() and patch == before


# Without directives, a strategic patch over maps that have no schema (labels, data, unknown
# fields) is a JSON merge patch.
scalars = st.none() | st.booleans() | st.integers(-3, 3) | st.text("xy", max_size=2)
no_null_scalars = st.booleans() | st.integers(-3, 3) | st.text("xy", max_size=2)
values = st.recursive(
    scalars,
    lambda children: st.dictionaries(st.sampled_from("abc"), children, max_size=3)
    | st.lists(no_null_scalars, max_size=3),
    max_leaves=8)
docs = st.dictionaries(st.sampled_from("abcd"), values, max_size=4)


@given(docs, docs)
def test_schemaless_strategic_patch_equals_merge_patch(doc, patch):
    assert strategic_merge_patch(doc, patch, None) == merge_patch(doc, patch)


@given(st.dictionaries(st.sampled_from(["app", "tier", "x"]), st.text("ab", max_size=2)),
       st.dictionaries(st.sampled_from(["app", "tier", "y"]),
                       st.none() | st.text("ab", max_size=2)))
def test_labels_patch_equals_merge_patch(labels, patch):
    obj = sts()
    obj["metadata"]["labels"] = labels
    body = {"metadata": {"labels": patch}}
    assert strategic_merge_patch(obj, body, STS) == merge_patch(obj, body)
