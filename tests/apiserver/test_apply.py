"""Server-side apply: merging, pruning, ownership and conflicts (kubectl-wire.md §4.4)."""

import copy

import pytest
from hypothesis import given, settings, strategies as st

from k1s.api.errors import StatusError
from k1s.apiserver.patch import update_managed_fields
from k1s.apiserver.patch.apply import apply
from k1s.apiserver.patch.fieldset import from_fields_v1

STS = "io.k8s.api.apps.v1.StatefulSet"
CM = "io.k8s.api.core.v1.ConfigMap"
T0, T1, T2, T3 = ("2024-01-0%dT00:00:00Z" % i for i in range(1, 5))


def config(replicas=3, image="postgres:16", labels=None, containers=None):
    spec = {"serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}},
                         "spec": {"containers": containers or [
                             {"name": "pg", "image": image,
                              "ports": [{"containerPort": 5432}]}]}}}
    if replicas is not None:
        spec["replicas"] = replicas
    return {"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "db", "namespace": "default",
                         "labels": labels if labels is not None else {"app": "db"}},
            "spec": spec}


def stored(obj):
    """What the API server would store: the result plus server-set metadata."""
    obj = copy.deepcopy(obj)
    obj["metadata"].update(uid="u-1", resourceVersion="7",
                           creationTimestamp="2024-01-01T00:00:00Z")
    return obj


def fields_of(entries, manager, operation="Apply"):
    for e in entries:
        if e["manager"] == manager and e["operation"] == operation:
            return from_fields_v1(e["fieldsV1"])
    return None


def test_create_with_apply():
    obj, mf = apply(None, config(), STS, "kubectl", False, [], now=T0)
    assert obj["spec"]["replicas"] == 3
    assert obj["metadata"]["managedFields"] == mf
    assert mf == [{
        "manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1", "time": T0,
        "fieldsType": "FieldsV1",
        "fieldsV1": {
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {
                "f:replicas": {}, "f:selector": {}, "f:serviceName": {},
                "f:template": {
                    "f:metadata": {"f:labels": {"f:app": {}}},
                    "f:spec": {"f:containers": {'k:{"name":"pg"}': {
                        ".": {}, "f:image": {}, "f:name": {},
                        "f:ports": {'k:{"containerPort":5432,"protocol":"TCP"}': {
                            ".": {}, "f:containerPort": {}}}}}}}}}}]


def test_reapply_unchanged_is_a_noop():
    obj, mf = apply(None, config(), STS, "kubectl", False, [], now=T0)
    live = stored(obj)
    again, mf2 = apply(live, config(), STS, "kubectl", False, now=T1)
    assert again == live
    assert mf2 == mf  # the time is not bumped either


def test_removing_a_field_from_the_config_removes_it():
    obj, _ = apply(None, config(labels={"app": "db", "tier": "data"}), STS, "kubectl", False,
                   [], now=T0)
    live = stored(obj)
    out, mf = apply(live, config(replicas=None), STS, "kubectl", False, now=T1)
    assert "replicas" not in out["spec"]
    assert out["metadata"]["labels"] == {"app": "db"}
    assert out["metadata"]["uid"] == "u-1"  # server fields are never pruned
    owned = fields_of(mf, "kubectl")
    assert ("f:spec", "f:replicas") not in owned
    assert mf[0]["time"] == T1


def test_dropping_all_metadata_fields_keeps_server_metadata():
    obj, _ = apply(None, config(labels={"app": "db"}), STS, "kubectl", False, [], now=T0)
    cfg = config(replicas=None)
    cfg["metadata"] = {"name": "db"}
    out, mf = apply(stored(obj), cfg, STS, "kubectl", False, now=T1)
    assert "labels" not in out["metadata"]
    assert {k: out["metadata"][k] for k in ("name", "namespace", "uid", "resourceVersion")} \
        == {"name": "db", "namespace": "default", "uid": "u-1", "resourceVersion": "7"}
    assert not any(p[0] == "f:metadata" for p in fields_of(mf, "kubectl"))


def test_removing_a_container_from_the_config_removes_it():
    two = [{"name": "pg", "image": "postgres:16"}, {"name": "side", "image": "busybox"}]
    obj, _ = apply(None, config(containers=two), STS, "kubectl", False, [], now=T0)
    out, _ = apply(stored(obj), config(containers=two[:1]), STS, "kubectl", False, now=T1)
    assert [c["name"] for c in out["spec"]["template"]["spec"]["containers"]] == ["pg"]


def _updated_by_csa(live, replicas):
    """kubectl (client-side apply) changes spec.replicas with an ordinary PATCH."""
    new = copy.deepcopy(live)
    new["spec"]["replicas"] = replicas
    mf = update_managed_fields(live, new, "kubectl-client-side-apply", "Update", "apps/v1", "",
                               live["metadata"]["managedFields"], T1)
    new["metadata"]["managedFields"] = mf
    return new


def test_conflict_with_an_updater():
    obj, _ = apply(None, config(), STS, "kubectl", False, [], now=T0)
    live = _updated_by_csa(stored(obj), 5)
    with pytest.raises(StatusError) as e:
        apply(live, config(replicas=4), STS, "kubectl", False, now=T2)
    err = e.value
    assert (err.code, err.reason) == (409, "Conflict")
    assert err.message == ('Apply failed with 1 conflict: conflict with '
                           '"kubectl-client-side-apply" using apps/v1: .spec.replicas')
    assert err.details == {"causes": [{
        "reason": "FieldManagerConflict",
        "message": 'conflict with "kubectl-client-side-apply" using apps/v1',
        "field": ".spec.replicas"}]}


def test_force_takes_ownership():
    obj, _ = apply(None, config(), STS, "kubectl", False, [], now=T0)
    live = _updated_by_csa(stored(obj), 5)
    out, mf = apply(live, config(replicas=4), STS, "kubectl", True, now=T2)
    assert out["spec"]["replicas"] == 4
    assert ("f:spec", "f:replicas") in fields_of(mf, "kubectl")
    # the updater owned nothing else, so its entry is gone
    assert fields_of(mf, "kubectl-client-side-apply", "Update") is None


def test_applying_the_value_another_manager_set_is_no_conflict():
    obj, _ = apply(None, config(), STS, "kubectl", False, [], now=T0)
    live = _updated_by_csa(stored(obj), 5)
    out, mf = apply(live, config(replicas=5), STS, "kubectl", False, now=T2)
    assert out["spec"]["replicas"] == 5
    assert ("f:spec", "f:replicas") in fields_of(mf, "kubectl")
    assert ("f:spec", "f:replicas") in fields_of(mf, "kubectl-client-side-apply", "Update")


def test_two_appliers_share_a_field():
    obj, _ = apply(None, config(), STS, "alice", False, [], now=T0)
    live = stored(obj)
    out, mf = apply(live, config(), STS, "bob", False, now=T1)
    assert out == live | {"metadata": out["metadata"]}
    assert ("f:spec", "f:replicas") in fields_of(mf, "alice")
    assert ("f:spec", "f:replicas") in fields_of(mf, "bob")
    assert "time" not in [e for e in mf if e["manager"] == "bob"][0]  # no-op: no time
    # bob changing the shared field conflicts with alice, in the plural form when >1
    with pytest.raises(StatusError) as e:
        apply(stored(out), config(replicas=9, image="pg:17"), STS, "bob", False, now=T2)
    assert e.value.message == (
        'Apply failed with 2 conflicts: conflicts with "alice":\n'
        '- .spec.replicas\n'
        '- .spec.template.spec.containers[name="pg"].image')
    assert [c["field"] for c in e.value.details["causes"]] == [
        ".spec.replicas", '.spec.template.spec.containers[name="pg"].image']
    # a field still owned by another applier is not pruned when bob drops it
    out2, _ = apply(stored(out), config(replicas=None), STS, "bob", False, now=T2)
    assert out2["spec"]["replicas"] == 3


def test_map_list_merges_by_key():
    obj, _ = apply(None, config(), STS, "kubectl", False, [], now=T0)
    side = {"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "db", "namespace": "default"},
            "spec": {"template": {"spec": {"containers": [
                {"name": "sidecar", "image": "busybox"}]}}}}
    out, mf = apply(stored(obj), side, STS, "injector", False, now=T1)
    cs = out["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in cs] == ["pg", "sidecar"]
    assert cs[0]["image"] == "postgres:16" and cs[0]["ports"] == [{"containerPort": 5432}]
    assert out["spec"]["replicas"] == 3
    assert fields_of(mf, "injector") == {
        ("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"sidecar"}'),
        ("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"sidecar"}', "f:name"),
        ("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"sidecar"}', "f:image")}


def test_labels_merge_and_conflict_per_key():
    obj, _ = apply(None, config(), STS, "kubectl", False, [], now=T0)
    other = {"apiVersion": "apps/v1", "kind": "StatefulSet",
             "metadata": {"name": "db", "labels": {"team": "storage"}}}
    out, _ = apply(stored(obj), other, STS, "labeller", False, now=T1)
    assert out["metadata"]["labels"] == {"app": "db", "team": "storage"}
    with pytest.raises(StatusError) as e:
        apply(stored(out), {**other, "metadata": {"name": "db", "labels": {"app": "web"}}},
              STS, "labeller", False, now=T2)
    assert e.value.message == ('Apply failed with 1 conflict: conflict with "kubectl": '
                               '.metadata.labels.app')


def test_atomic_list_is_replaced():
    obj, _ = apply(None, config(containers=[{"name": "pg", "image": "x", "args": ["a", "b"]}]),
                   STS, "kubectl", False, [], now=T0)
    out, _ = apply(stored(obj), config(containers=[{"name": "pg", "image": "x",
                                                    "args": ["c"]}]),
                   STS, "kubectl", False, now=T1)
    assert out["spec"]["template"]["spec"]["containers"][0]["args"] == ["c"]


def test_first_apply_on_an_untracked_object_sees_its_fields():
    live = stored(config())
    live["metadata"].pop("managedFields", None)
    with pytest.raises(StatusError) as e:
        apply(live, config(replicas=1), STS, "kubectl", False, [], now=T1)
    assert e.value.message == ('Apply failed with 1 conflict: conflict with '
                               '"before-first-apply" using apps/v1: .spec.replicas')


@pytest.mark.parametrize("applied, message", [
    ({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "db"}},
     "invalid object type: apps/v1, Kind=Deployment"),
    ({"apiVersion": "v1", "kind": "StatefulSet", "metadata": {"name": "db"}},
     "invalid object type: /v1, Kind=StatefulSet"),
    ({"apiVersion": "apps/v1", "kind": "StatefulSet",
      "metadata": {"name": "db", "managedFields": []}}, "metadata.managedFields must be nil"),
    ({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
      "spec": {"nope": 1}},
     "failed to create typed patch object (db; apps/v1, Kind=StatefulSet): .spec.nope: "
     "field not declared in schema"),
    ({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
      "spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}},
     "failed to create typed patch object (db; apps/v1, Kind=StatefulSet): "
     ".spec.template.spec.containers: element 0: associative list with keys has an element "
     "that omits key field \"name\" (and doesn't have default value)"),
])
def test_bad_configurations_are_400(applied, message):
    with pytest.raises(StatusError) as e:
        apply(None, applied, STS, "kubectl", False, [])
    assert (e.value.code, e.value.message) == (400, message)


def test_reset_fields_are_not_owned():
    cfg = config()
    cfg["status"] = {"replicas": 9}
    _, mf = apply(None, cfg, STS, "kubectl", False, [], now=T0, reset_fields=["status"])
    assert not any(p[0] == "f:status" for p in fields_of(mf, "kubectl"))


def test_subresource_applier_is_its_own_manager():
    obj, _ = apply(None, config(), STS, "kubectl", False, [], now=T0)
    status = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
              "status": {"replicas": 3}}
    _, mf = apply(stored(obj), status, STS, "kubectl", False, now=T1, subresource="status")
    assert [(e["manager"], e.get("subresource")) for e in mf] == [
        ("kubectl", None), ("kubectl", "status")]


# Property: for any two ConfigMap configurations a, b applied in turn by one manager, the
# result holds exactly b's data plus what another manager owns (pruning is precise).
data = st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), st.text("xy", max_size=2),
                       max_size=4)


@settings(max_examples=60, deadline=None)
@given(data, data, data)
def test_apply_sequence_property(a, b, other):
    def cm(d):
        return {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "c", "namespace": "default"}, "data": d}
    live, _ = apply(None, cm(other), CM, "other", False, [], now=T0)
    live = stored(live)
    try:
        live, _ = apply(live, cm(a), CM, "me", False, now=T1)
    except StatusError as e:
        # a conflict only where the values differ on a key the other manager owns
        assert e.code == 409
        assert any(other[k] != v for k, v in a.items() if k in other)
        return
    live = stored(live)
    live, mf = apply(live, cm(b), CM, "me", True, now=T2)
    got = live.get("data", {})
    for k, v in b.items():
        assert got[k] == v
    for k in got:
        assert k in b or k in other
    for k in other:
        if k not in b:
            assert got[k] == other[k]
    mine = fields_of(mf, "me") or set()
    # an empty map is itself a field (upstream keeps {} and null apart)
    assert mine == ({("f:data", "f:" + k) for k in b} if b else {("f:data",)})
