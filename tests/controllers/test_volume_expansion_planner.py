"""The expansion stages and the claim status sequence, as tables and a property."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from k1s.controllers.local_provisioner import planner as prov
from k1s.controllers.volume_expansion import planner as p

NODE = "node-a"
UID = "0f8fad5b-d9cb-469f-a165-70867728950e"
NOW = "2026-01-01T00:00:00Z"


def objs(req="2Gi", have="1Gi", pv_cap="1Gi", phase="Bound", allow=True, node=NODE,
         volume_name=f"pvc-{UID}"):
    claim = {"metadata": {"name": "c", "namespace": "ns", "uid": UID},
             "spec": {"volumeName": volume_name, "resources": {"requests": {"storage": req}},
                      "storageClassName": "standard"},
             "status": {"phase": phase, "capacity": {"storage": have}}}
    pv = {"metadata": {"name": f"pvc-{UID}",
                       "annotations": {prov.ANN_PROVISIONED_BY: prov.PROVISIONER}},
          "spec": {"capacity": {"storage": pv_cap}, "nodeAffinity": {"required": {
              "nodeSelectorTerms": [{"matchExpressions": [
                  {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}}}
    sc = {"metadata": {"name": "standard"}, "provisioner": prov.PROVISIONER,
          "allowVolumeExpansion": allow}
    return claim, pv, sc


@pytest.mark.parametrize("kw,want", [
    ({}, "controller"),
    ({"pv_cap": "2Gi"}, "node"),
    ({"pv_cap": "3Gi"}, "node"),
    ({"req": "1Gi"}, None),
    ({"req": "1024Mi"}, None),                  # equal quantities in other units
    ({"req": "2Gi", "have": "2Gi", "pv_cap": "2Gi"}, None),
    ({"phase": "Pending"}, None),
    ({"allow": False}, None),
    ({"node": "node-b"}, None),
    ({"volume_name": "other"}, None),
])
def test_stage(kw, want):
    claim, pv, sc = objs(**kw)
    assert p.stage(claim, pv, sc, NODE) == want


def test_stage_needs_pv_and_class():
    claim, pv, sc = objs()
    assert p.stage(claim, None, sc, NODE) is None
    assert p.stage(claim, pv, None, NODE) is None


def test_status_sequence_matches_upstream():
    s0 = {"phase": "Bound", "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"]}
    s1 = p.start_status(s0, "2Gi", NOW)
    assert s1["conditions"] == [{"type": "Resizing", "status": "True", "lastProbeTime": None,
                                 "lastTransitionTime": NOW}]
    assert s1["allocatedResources"] == {"storage": "2Gi"}
    assert s1["allocatedResourceStatuses"] == {"storage": "ControllerResizeInProgress"}
    assert s1["capacity"] == {"storage": "1Gi"}
    s2 = p.node_pending_status(s1, NOW)
    assert [c["type"] for c in s2["conditions"]] == ["FileSystemResizePending"]
    assert s2["conditions"][0]["message"] == p.FS_PENDING_MESSAGE
    assert s2["allocatedResourceStatuses"] == {"storage": "NodeResizePending"}
    s3 = p.finished_status(s2, "2Gi")
    assert s3 == {"phase": "Bound", "capacity": {"storage": "2Gi"},
                  "accessModes": ["ReadWriteOnce"], "allocatedResources": {"storage": "2Gi"}}
    assert s0 == {"phase": "Bound", "capacity": {"storage": "1Gi"},
                  "accessModes": ["ReadWriteOnce"]}         # inputs are not mutated


def test_failure_replaces_resizing_with_error_and_restart_clears_it():
    s1 = p.start_status({"capacity": {"storage": "1Gi"}}, "2Gi", NOW)
    f = p.failed_status(s1, "boom", NOW)
    assert [(c["type"], c.get("message")) for c in f["conditions"]] == [("ControllerResizeError", "boom")]
    again = p.start_status(f, "2Gi", NOW)
    assert [c["type"] for c in again["conditions"]] == ["Resizing"]


@given(st.lists(st.sampled_from(["start", "pending", "fail", "finish"]), max_size=8))
def test_finish_always_leaves_a_clean_status(steps):
    s = {"phase": "Bound", "capacity": {"storage": "1Gi"},
         "conditions": [{"type": "Other", "status": "True"}]}
    for step in steps:
        s = {"start": lambda x: p.start_status(x, "2Gi", NOW),
             "pending": lambda x: p.node_pending_status(x, NOW),
             "fail": lambda x: p.failed_status(x, "e", NOW),
             "finish": lambda x: p.finished_status(x, "2Gi")}[step](s)
        types = [c["type"] for c in s.get("conditions") or ()]
        assert len(types) == len(set(types))                # never a duplicate condition
    s = p.finished_status(s, "2Gi")
    assert s["capacity"] == {"storage": "2Gi"}
    assert [c["type"] for c in s["conditions"]] == ["Other"]
    assert "storage" not in (s.get("allocatedResourceStatuses") or {})
