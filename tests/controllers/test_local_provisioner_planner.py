"""The local provisioner's rules as a table, plus properties of the PV it builds."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, strategies as st

from k1s.controllers.local_provisioner import planner as p
from k1s.controllers.local_provisioner.planner import Fail, Params, Provision, Skip

UID = "0f8fad5b-d9cb-469f-a165-70867728950e"
NODE = "node-a"


def claim(**kw) -> dict:
    c = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
         "metadata": {"name": "data", "namespace": "ns", "uid": UID, "resourceVersion": "7",
                      "annotations": {p.ANN_STORAGE_PROVISIONER: p.PROVISIONER,
                                      p.ANN_BETA_STORAGE_PROVISIONER: p.PROVISIONER,
                                      p.ANN_SELECTED_NODE: NODE}},
         "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "standard",
                  "resources": {"requests": {"storage": "1Gi"}}},
         "status": {"phase": "Pending"}}
    for path, value in kw.items():
        obj = c
        keys = path.split("__")
        for k in keys[:-1]:
            obj = obj.setdefault(k, {})
        if value is None:
            obj.pop(keys[-1], None)
        else:
            obj[keys[-1]] = value
    return c


def sc(**kw) -> dict:
    s = {"metadata": {"name": "standard"}, "provisioner": p.PROVISIONER, "reclaimPolicy": "Delete",
         "volumeBindingMode": "WaitForFirstConsumer", "allowVolumeExpansion": True}
    s.update(kw)
    return s


ANN = "metadata__annotations__"
PROVISION = Provision(f"pvc-{UID}", 1 << 30, Params(), ())

CASES = [
    ("WFFC with this node selected", claim(), sc(), False, PROVISION),
    ("not annotated", claim(metadata__annotations={}), sc(), False, Skip),
    ("only the beta annotation is enough",
     claim(**{ANN + p.ANN_STORAGE_PROVISIONER: None}), sc(), False, PROVISION),
    ("annotated for another provisioner",
     claim(metadata__annotations={p.ANN_STORAGE_PROVISIONER: "other.io/x",
                                  p.ANN_SELECTED_NODE: NODE}), sc(), False, Skip),
    ("WFFC without a selected node", claim(**{ANN + p.ANN_SELECTED_NODE: None}), sc(), False, Skip),
    ("WFFC selected another node", claim(**{ANN + p.ANN_SELECTED_NODE: "node-b"}), sc(), False, Skip),
    ("Immediate without a selected node", claim(**{ANN + p.ANN_SELECTED_NODE: None}),
     sc(volumeBindingMode="Immediate"), False, PROVISION),
    ("Immediate selected another node", claim(**{ANN + p.ANN_SELECTED_NODE: "node-b"}),
     sc(volumeBindingMode="Immediate"), False, Skip),
    ("class missing", claim(), None, False, Skip),
    ("class of another provisioner", claim(), sc(provisioner="x.io/y"), False, Skip),
    ("volume exists already", claim(), sc(), True, Skip),
    ("being deleted", claim(metadata__deletionTimestamp="2026-01-01T00:00:00Z"), sc(), False, Skip),
    ("names a volume", claim(spec__volumeName="pv1"), sc(), False, Skip),
    ("bound", claim(status__phase="Bound"), sc(), False, Skip),
    ("selector", claim(spec__selector={"matchLabels": {"a": "b"}}), sc(), False,
     Fail("claim Selector is not supported")),
    ("block mode", claim(spec__volumeMode="Block"), sc(), False,
     Fail("volumeMode Block is not supported")),
    ("unknown parameter", claim(), sc(parameters={"zone": "a"}), False,
     Fail('invalid parameter "zone" for provisioner k1s.io/local')),
    ("bad fsType", claim(), sc(parameters={"fsType": "xfs"}), False,
     Fail('invalid fsType "xfs": supported are ext4, ext3, ext2')),
    ("fsType and mode", claim(), sc(parameters={"fsType": "ext3", "mode": "directory"}), False,
     Provision(f"pvc-{UID}", 1 << 30, Params("ext3", "directory"), ())),
    ("mount options", claim(), sc(mountOptions=["noatime"]), False,
     Provision(f"pvc-{UID}", 1 << 30, Params(), ("noatime",))),
    ("decimal request rounds up", claim(spec__resources__requests__storage="1.5k"), sc(), False,
     Provision(f"pvc-{UID}", 1500, Params(), ())),
]


@pytest.mark.parametrize("name,c,s,exists,want", CASES, ids=[c[0] for c in CASES])
def test_plan_claim(name, c, s, exists, want):
    got = p.plan_claim(c, s, NODE, exists)
    if isinstance(want, type):
        assert isinstance(got, want), got
    else:
        assert got == want


def test_build_pv_is_prebound_and_pinned():
    c = claim()
    pv = p.build_pv(c, sc(mountOptions=["noatime"], reclaimPolicy="Retain"), NODE, "/d/m", "ext4")
    assert pv["metadata"] == {"name": f"pvc-{UID}",
                              "annotations": {p.ANN_PROVISIONED_BY: p.PROVISIONER}}
    s = pv["spec"]
    assert s["claimRef"] == {"kind": "PersistentVolumeClaim", "apiVersion": "v1",
                             "namespace": "ns", "name": "data", "uid": UID, "resourceVersion": "7"}
    assert s["capacity"] == {"storage": "1Gi"}
    assert s["persistentVolumeReclaimPolicy"] == "Retain"
    assert s["mountOptions"] == ["noatime"]
    assert s["storageClassName"] == "standard" and s["volumeMode"] == "Filesystem"
    assert s["local"] == {"path": "/d/m", "fsType": "ext4"}
    assert p.pv_node(pv) == NODE and p.volume_is_ours(pv, NODE)
    assert not p.volume_is_ours(pv, "other")


@pytest.mark.parametrize("phase,policy,want", [
    ("Released", "Delete", "delete"), ("Released", "Retain", "keep"), ("Bound", "Delete", "keep"),
    ("Available", "Delete", "keep"), ("Pending", "Delete", "keep"),
])
def test_plan_volume(phase, policy, want):
    pv = p.build_pv(claim(), sc(reclaimPolicy=policy), NODE, "/x", None)
    pv["status"] = {"phase": phase}
    assert p.plan_volume(pv, NODE) == want
    assert p.plan_volume(pv, "other-node") is None
    foreign = copy.deepcopy(pv)
    foreign["metadata"]["annotations"] = {p.ANN_PROVISIONED_BY: "kubernetes.io/aws-ebs"}
    assert p.plan_volume(foreign, NODE) is None


def test_usage_patch_only_when_changed():
    pv = {"metadata": {"annotations": {}}}
    patch = p.usage_patch(pv, 10, 20)
    assert patch == {"metadata": {"annotations": {p.ANN_USAGE: "10", p.ANN_AVAILABLE: "20"}}}
    pv["metadata"]["annotations"].update(patch["metadata"]["annotations"])
    assert p.usage_patch(pv, 10, 20) is None


@given(st.dictionaries(st.sampled_from(["fsType", "mode", "zone", "type", "csi.storage.k8s.io/fstype"]),
                       st.sampled_from(["ext4", "ext3", "xfs", "auto", "image", "directory", ""])))
def test_parameters_are_accepted_or_explained(params):
    got = p.parse_parameters(params)
    if isinstance(got, str):
        assert got.startswith("invalid ")
    else:
        assert got.fs_type in p.FS_TYPES and got.mode in p.MODES
        assert not set(params) - {"fsType", "mode", "csi.storage.k8s.io/fstype"}


@given(st.sampled_from(["ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"]),
       st.integers(1, 1 << 40), st.sampled_from(["Immediate", "WaitForFirstConsumer"]))
def test_provision_asks_for_exactly_the_request(mode, size, binding):
    c = claim(spec__accessModes=[mode], spec__resources__requests__storage=str(size))
    got = p.plan_claim(c, sc(volumeBindingMode=binding), NODE, False)
    assert got == Provision(f"pvc-{UID}", size, Params(), ())
    pv = p.build_pv(c, sc(), NODE, "/m", None)
    assert pv["spec"]["accessModes"] == [mode] and pv["spec"]["capacity"]["storage"] == str(size)


@given(annotated=st.booleans(), selected=st.sampled_from([None, NODE, "node-b"]),
       binding=st.sampled_from(["Immediate", "WaitForFirstConsumer"]),
       phase=st.sampled_from(["Pending", "Bound", "Lost"]), volume_name=st.sampled_from(["", "pv"]),
       exists=st.booleans(), deleting=st.booleans())
def test_provisions_only_unbound_claims_for_this_node(annotated, selected, binding, phase,
                                                      volume_name, exists, deleting):
    ann = {p.ANN_STORAGE_PROVISIONER: p.PROVISIONER} if annotated else {}
    if selected:
        ann[p.ANN_SELECTED_NODE] = selected
    c = claim(metadata__annotations=ann, status__phase=phase, spec__volumeName=volume_name,
              metadata__deletionTimestamp="2026-01-01T00:00:00Z" if deleting else None)
    got = p.plan_claim(c, sc(volumeBindingMode=binding), NODE, exists)
    should = (annotated and not exists and not deleting and phase == "Pending"
              and not volume_name and (selected == NODE or (selected is None and binding == "Immediate")))
    assert isinstance(got, Provision) == should
    if should:
        assert got.pv_name == f"pvc-{UID}"
