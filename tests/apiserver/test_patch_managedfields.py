"""managedFields for ordinary writes, and the FieldsV1 field-set encoding."""

import copy

import pytest
from hypothesis import given, strategies as st

from k1s.apiserver.patch import managed_fields_for_write, update_managed_fields
from k1s.apiserver.patch.fieldset import (compare, from_fields_v1, path_string, root_type,
                                          to_fields_v1)

POD = "io.k8s.api.core.v1.Pod"
T0, T1, T2 = "2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z", "2024-01-03T00:00:00Z"


def pod():
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"},
                         "uid": "u", "resourceVersion": "1", "generation": 1,
                         "creationTimestamp": T0},
            "spec": {"containers": [{"name": "c", "image": "nginx", "resources": {}}],
                     "restartPolicy": "Always"},
            "status": {"phase": "Pending"}}


def test_create_owns_everything_but_server_and_reset_fields():
    mf = update_managed_fields(None, pod(), "kubectl-create", "Update", "v1", "", [], T0,
                               reset_fields=["status"])
    assert mf == [{
        "manager": "kubectl-create", "operation": "Update", "apiVersion": "v1", "time": T0,
        "fieldsType": "FieldsV1",
        "fieldsV1": {
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {"f:containers": {'k:{"name":"c"}': {
                ".": {}, "f:image": {}, "f:name": {}, "f:resources": {}}},
                "f:restartPolicy": {}}}}]


def _write(old, mutate, manager, now, subresource=""):
    new = copy.deepcopy(old)
    mutate(new)
    mf = update_managed_fields(old, new, manager, "Update", "v1", subresource,
                               old["metadata"].get("managedFields", []), now,
                               reset_fields=["status"] if not subresource else ["spec"])
    new["metadata"]["managedFields"] = mf
    return new


def created():
    obj = pod()
    obj["metadata"]["managedFields"] = update_managed_fields(
        None, obj, "kubectl-create", "Update", "v1", "", [], T0, reset_fields=["status"])
    return obj


def test_label_moves_ownership_of_what_changed():
    obj = _write(created(), lambda o: o["metadata"]["labels"].update(app="api", tier="fe"),
                 "kubectl-label", T1)
    mf = {e["manager"]: e for e in obj["metadata"]["managedFields"]}
    assert mf["kubectl-label"]["fieldsV1"] == {
        "f:metadata": {"f:labels": {"f:app": {}, "f:tier": {}}}}
    assert mf["kubectl-label"]["time"] == T1
    assert from_fields_v1(mf["kubectl-create"]["fieldsV1"]).isdisjoint(
        {("f:metadata", "f:labels", "f:app")})
    assert mf["kubectl-create"]["time"] == T0
    # entries sorted by time within one operation
    assert [e["manager"] for e in obj["metadata"]["managedFields"]] == [
        "kubectl-create", "kubectl-label"]


def test_removed_fields_leave_every_manager_and_empty_entries_go():
    obj = _write(created(), lambda o: o["metadata"]["labels"].update(tier="fe"),
                 "kubectl-label", T1)
    obj = _write(obj, lambda o: o["metadata"]["labels"].pop("tier"), "kubectl-label", T2)
    managers = [e["manager"] for e in obj["metadata"]["managedFields"]]
    assert managers == ["kubectl-create"]


def test_a_write_that_changes_nothing_leaves_entries_alone():
    obj = created()
    again = _write(obj, lambda o: None, "someone", T1)
    assert again["metadata"]["managedFields"] == obj["metadata"]["managedFields"]


def test_status_writes_are_a_separate_subresource_entry():
    obj = _write(created(), lambda o: o["status"].update(phase="Running"), "kubelet", T1,
                 subresource="status")
    e = [e for e in obj["metadata"]["managedFields"] if e["manager"] == "kubelet"][0]
    assert e["subresource"] == "status"
    assert e["fieldsV1"] == {"f:status": {"f:phase": {}}}


def test_untracked_existing_objects_stay_untracked():
    obj = pod()  # has a uid, no managedFields
    new = copy.deepcopy(obj)
    new["spec"]["restartPolicy"] = "Never"
    assert update_managed_fields(obj, new, "m", "Update", "v1", "", [], T1) == []


@pytest.mark.parametrize("live_mf, new_mf, sub, expected", [
    ([{"manager": "a"}], None, "", [{"manager": "a"}]),             # client dropped them
    ([{"manager": "a"}], [{"manager": "b", "fieldsV1": {}}], "", [{"manager": "b",
                                                                   "fieldsV1": {}}]),
    ([{"manager": "a"}], [{}], "", []),                              # [{}] resets
    ([{"manager": "a"}], [{"manager": "b"}], "status", [{"manager": "a"}]),
])
def test_managed_fields_for_write(live_mf, new_mf, sub, expected):
    live = {"metadata": {"managedFields": live_mf}}
    new = {"metadata": {} if new_mf is None else {"managedFields": new_mf}}
    assert managed_fields_for_write(live, new, sub) == expected


def test_compare_reports_list_items_and_leaves():
    old = pod()
    new = copy.deepcopy(old)
    new["spec"]["containers"].append({"name": "d", "image": "redis"})
    new["spec"]["containers"][0]["image"] = "nginx:2"
    c = compare(old, new, root_type(POD))
    item = ("f:spec", "f:containers", 'k:{"name":"d"}')
    assert c.added == {item, item + ("f:name",), item + ("f:image",)}
    assert c.modified == {("f:spec", "f:containers", 'k:{"name":"c"}', "f:image")}
    assert c.removed == set()
    assert path_string(item + ("f:image",)) == '.spec.containers[name="d"].image'


pe = st.one_of(
    st.text("abc.", min_size=1, max_size=3).map(lambda s: "f:" + s),
    st.integers(0, 3).map(lambda i: 'k:{"name":"%d"}' % i),
    st.sampled_from(['v:"x"', "v:1", "i:0"]))
paths = st.sets(st.lists(pe, min_size=1, max_size=4).map(tuple), max_size=8)


@given(paths)
def test_fields_v1_round_trips(s):
    assert from_fields_v1(to_fields_v1(s)) == s


class _Opts:
    def __init__(self, field_manager):
        self.field_manager = field_manager


def test_store_hook_records_creates_and_updates_but_not_applies_twice():
    from k1s.api import registry
    from k1s.apiserver.patch import managed_fields_hook
    from k1s.apiserver.patch.apply import server_side_apply

    pods = registry.get("pods")
    obj = pod()
    managed_fields_hook(pods, None, obj, _Opts("kubectl-create"), "Update", None)
    [entry] = obj["metadata"]["managedFields"]
    assert (entry["manager"], entry["operation"], entry["apiVersion"]) == (
        "kubectl-create", "Update", "v1")
    assert "f:status" not in entry["fieldsV1"]  # the main resource does not own status

    applied = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
               "spec": {"containers": [{"name": "c", "image": "nginx:2"}]}}
    new = server_side_apply(obj, applied, POD, "kubectl", True)
    recorded = copy.deepcopy(new["metadata"]["managedFields"])
    managed_fields_hook(pods, obj, new, _Opts("kubectl"), "Update", None)
    assert new["metadata"]["managedFields"] == recorded  # not re-recorded as an Update
    assert [e["operation"] for e in recorded] == ["Apply", "Update"]
