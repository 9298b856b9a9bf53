"""PersistentVolume, PersistentVolumeClaim and StorageClass rules, with upstream's messages."""

import copy
import os

import pytest
import yaml

from k1s.api import registry as R
from k1s.api.defaults import apply_defaults
from k1s.api.validation import validate_create, validate_status_update, validate_update

PV = R.get("persistentvolumes")
PVC = R.get("persistentvolumeclaims")
SC = R.get("storageclasses.storage.k8s.io")
# the project's shared/ folder sits beside the checkout (CI lays a copy there too)
SEED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared",
                    "scenarios", "seed")


def strs(errs):
    return [str(e) for e in errs]


def pv(**spec):
    base = {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
            "hostPath": {"path": "/tmp/x"}}
    base.update(spec)
    obj = {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv1"},
           "spec": {k: v for k, v in base.items() if v is not None}}
    apply_defaults(PV, obj)
    return obj


@pytest.mark.skipif(not os.path.exists(SEED), reason="seed scenarios not present")
def test_seed_pv_as_printed_gives_exactly_access_modes_required():
    with open(os.path.join(SEED, "pv-volume-as-printed.yaml")) as f:
        obj = yaml.safe_load(f)
    apply_defaults(PV, obj)
    assert strs(validate_create(PV, obj)) == ["spec.accessModes: Required value"]
    with open(os.path.join(SEED, "pv-volume.yaml")) as f:
        fixed = yaml.safe_load(f)
    apply_defaults(PV, fixed)
    assert strs(validate_create(PV, fixed)) == []


NODE_AFFINITY = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
    {"key": "kubernetes.io/hostname", "operator": "In", "values": ["node-1"]}]}]}}

# Every PV source upstream accepts, in a minimal valid form.
VALID_SOURCES = {
    "hostPath": {"path": "/data"},
    "nfs": {"server": "10.0.0.1", "path": "/exports"},
    "rbd": {"monitors": ["10.16.154.78:6789"], "image": "foo"},
    "cephfs": {"monitors": ["10.0.0.1:6789"]},
    "iscsi": {"targetPortal": "10.0.0.1:3260", "iqn": "iqn.2001-04.com.example:storage", "lun": 0},
    "fc": {"targetWWNs": ["500a0982991b8dc5"], "lun": 2},
    "csi": {"driver": "hostpath.csi.k8s.io", "volumeHandle": "vol-1"},
    "local": {"path": "/mnt/disks/ssd1"},
    "gcePersistentDisk": {"pdName": "disk"},
    "awsElasticBlockStore": {"volumeID": "vol-1"},
    "glusterfs": {"endpoints": "glusterfs-cluster", "path": "kube_vol"},
    "cinder": {"volumeID": "id"},
    "flexVolume": {"driver": "example/lvm"},
    "azureFile": {"secretName": "s", "shareName": "share"},
    "azureDisk": {"diskName": "d", "diskURI": "https://acct.blob.core.windows.net/c/d.vhd"},
    "vsphereVolume": {"volumePath": "[ds] vol"},
    "portworxVolume": {"volumeID": "v"},
    "photonPersistentDisk": {"pdID": "p"},
    "quobyte": {"registry": "reg:7861", "volume": "v"},
    "scaleIO": {"gateway": "g", "system": "s", "volumeName": "v"},
    "storageos": {"volumeName": "v"},
    "flocker": {"datasetName": "d"},
}


@pytest.mark.parametrize("source", sorted(VALID_SOURCES))
def test_every_pv_source_is_accepted(source):
    spec = {"hostPath": None, source: VALID_SOURCES[source]}
    if source == "local":
        spec["nodeAffinity"] = NODE_AFFINITY
    assert strs(validate_create(PV, pv(**spec))) == []


@pytest.mark.parametrize("spec,expected", [
    ({"hostPath": None}, ["spec: Required value: must specify a volume type"]),
    ({"nfs": {"server": "s", "path": "/p"}},
     ["spec.nfs: Forbidden: may not specify more than 1 volume type"]),
    ({"accessModes": None}, ["spec.accessModes: Required value"]),
    ({"accessModes": ["ReadWriteSometimes"]},
     ['spec.accessModes: Unsupported value: "ReadWriteSometimes": supported values: '
      '"ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"']),
    ({"accessModes": ["ReadWriteOncePod", "ReadWriteOnce"]},
     ["spec.accessModes: Forbidden: may not use ReadWriteOncePod with other access modes"]),
    ({"capacity": None}, ["spec.capacity: Required value",
                          'spec.capacity: Unsupported value: null: supported values: "storage"']),
    ({"capacity": {"storage": "0"}},
     ['spec.capacity[storage]: Invalid value: "0": must be greater than zero']),
    ({"persistentVolumeReclaimPolicy": "Keep"},
     ['spec.persistentVolumeReclaimPolicy: Unsupported value: "Keep": supported values: '
      '"Delete", "Recycle", "Retain"']),
    ({"hostPath": {"path": "/"}, "persistentVolumeReclaimPolicy": "Recycle"},
     ["spec.persistentVolumeReclaimPolicy: Forbidden: may not be 'recycle' for a hostPath "
      "mount of '/'"]),
    ({"hostPath": None, "local": {"path": "/mnt"}},
     ["spec.nodeAffinity: Required value: Local volume requires node affinity"]),
    ({"storageClassName": "Fast"},
     ['spec.storageClassName: Invalid value: "Fast": a lowercase RFC 1123 subdomain must '
      "consist of lower case alphanumeric characters, '-' or '.', and must start and end with "
      "an alphanumeric character (e.g. 'example.com', regex used for validation is "
      "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"]),
    ({"volumeMode": "Raw"},
     ['spec.volumeMode: Unsupported value: "Raw": supported values: "Block", "Filesystem"']),
    ({"hostPath": {"path": "/a/../b"}}, ['spec.hostPath.path: Invalid value: "/a/../b": must '
                                         "not contain '..'"]),
    ({"hostPath": {"path": "/a", "type": "Dir"}},
     ['spec.hostPath.type: Unsupported value: "Dir": supported values: "", "BlockDevice", '
      '"CharDevice", "Directory", "DirectoryOrCreate", "File", "FileOrCreate", "Socket"']),
    ({"hostPath": None, "rbd": {"monitors": []}},
     ["spec.rbd.monitors: Required value", "spec.rbd.image: Required value"]),
    ({"hostPath": None, "nfs": {"server": "s", "path": "rel"}},
     ['spec.nfs.path: Invalid value: "rel": must be an absolute path']),
    ({"hostPath": None, "csi": {"driver": "", "volumeHandle": ""}},
     ["spec.csi.driver: Required value",
      'spec.csi.driver: Invalid value: "": a lowercase RFC 1123 subdomain must consist of lower '
      "case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric "
      "character (e.g. 'example.com', regex used for validation is "
      "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
      "spec.csi.volumeHandle: Required value"]),
    ({"hostPath": None, "iscsi": {"targetPortal": "t", "iqn": "bad", "lun": 300}},
     ['spec.iscsi.iqn: Invalid value: "bad": must be valid format',
      "spec.iscsi.lun: Invalid value: 300: must be between 0 and 255, inclusive"]),
    ({"hostPath": None, "fc": {}},
     ["spec.fc.targetWWNs: Required value: must specify either targetWWNs or wwids, but not both"]),
    ({"nodeAffinity": {"required": {"nodeSelectorTerms": []}}},
     ["spec.nodeAffinity.required.nodeSelectorTerms: Required value: must have at least one "
      "node selector term"]),
    ({"nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
        {"key": "k", "operator": "In"}]}]}}},
     ["spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0].values: Required "
      "value: must be specified when `operator` is 'In' or 'NotIn'"]),
])
def test_pv_create_rules(spec, expected):
    assert strs(validate_create(PV, pv(**spec))) == expected


def test_pv_defaults():
    obj = pv()
    assert obj["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    assert obj["spec"]["volumeMode"] == "Filesystem"
    assert obj["status"]["phase"] == "Pending"


def _stored(obj):
    obj = copy.deepcopy(obj)
    obj["metadata"].update({"resourceVersion": "1", "uid": "u"})
    return obj


def test_pv_source_is_immutable():
    old = _stored(pv())
    new = copy.deepcopy(old)
    new["spec"]["hostPath"]["path"] = "/other"
    out = strs(validate_update(PV, new, old))
    assert len(out) == 1
    assert out[0].startswith("spec.persistentvolumesource: Forbidden: spec.persistentvolumesource "
                             "is immutable after creation\n")
    assert "/other" in out[0]


def test_pv_mutable_fields_update():
    old = _stored(pv())
    new = copy.deepcopy(old)
    new["spec"]["persistentVolumeReclaimPolicy"] = "Delete"
    new["spec"]["claimRef"] = {"namespace": "default", "name": "c"}
    new["spec"]["capacity"] = {"storage": "2Gi"}
    assert strs(validate_update(PV, new, old)) == []
    new["spec"]["volumeMode"] = "Block"
    assert strs(validate_update(PV, new, old)) == [
        'volumeMode: Invalid value: "Block": field is immutable']


def test_pv_status_update():
    old = _stored(pv())
    new = copy.deepcopy(old)
    new["status"] = {"phase": "Bound"}
    assert strs(validate_status_update(PV, new, old)) == []
    new["status"] = {"phase": "Sleeping"}
    assert strs(validate_status_update(PV, new, old)) == [
        'status.phase: Unsupported value: "Sleeping": supported values: "Pending", "Available", '
        '"Bound", "Released", "Failed"']


# claims ----------------------------------------------------------------------------------
def pvc(**spec):
    base = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    base.update(spec)
    obj = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
           "metadata": {"name": "c", "namespace": "default"},
           "spec": {k: v for k, v in base.items() if v is not None}}
    apply_defaults(PVC, obj)
    return obj


@pytest.mark.parametrize("spec,expected", [
    ({}, []),
    ({"accessModes": None}, ["spec.accessModes: Required value: at least 1 access mode is "
                             "required"]),
    ({"resources": {}}, ["spec.resources[storage]: Required value"]),
    ({"resources": {"requests": {"storage": "0"}}},
     ['spec.resources[storage]: Invalid value: "0": must be greater than zero']),
    ({"resources": {"requests": {"storage": "1Gi"}, "limits": {"storage": "2Gi"}}}, []),
    ({"storageClassName": ""}, []),
    ({"volumeMode": "Raw"},
     ['spec.volumeMode: Unsupported value: "Raw": supported values: "Block", "Filesystem"']),
    ({"selector": {"matchExpressions": [{"key": "a", "operator": "Near"}]}},
     ['spec.selector.matchExpressions[0].operator: Invalid value: "Near": not a valid selector '
      'operator']),
    ({"dataSource": {"kind": "Snapshot", "name": "s"}},
     ['spec.dataSource: Invalid value: "Snapshot": must be \'PersistentVolumeClaim\' when '
      'referencing the default apiGroup']),
    ({"dataSource": {"kind": "PersistentVolumeClaim", "name": "a"},
      "dataSourceRef": {"kind": "PersistentVolumeClaim", "name": "b"}},
     ['spec: Invalid value: "spec.dataSource": must match dataSourceRef']),
])
def test_pvc_create_rules(spec, expected):
    assert strs(validate_create(PVC, pvc(**spec))) == expected


def test_pvc_defaults():
    obj = pvc()
    assert obj["spec"]["volumeMode"] == "Filesystem"
    assert obj["status"]["phase"] == "Pending"
    assert "storageClassName" not in obj["spec"]  # nil stays nil: admission picks the default


def _bound(obj, capacity="1Gi"):
    obj = _stored(obj)
    obj["spec"]["volumeName"] = "pv1"
    obj["status"] = {"phase": "Bound", "capacity": {"storage": capacity}}
    return obj


def test_pvc_spec_immutable_except_requests_when_bound():
    old = _bound(pvc())
    new = copy.deepcopy(old)
    new["spec"]["resources"]["requests"]["storage"] = "2Gi"
    assert strs(validate_update(PVC, new, old)) == []
    new["spec"]["accessModes"] = ["ReadWriteMany"]
    out = strs(validate_update(PVC, new, old))
    assert len(out) == 1
    assert out[0].startswith("spec: Forbidden: spec is immutable after creation except "
                             "resources.requests and volumeAttributesClassName for bound claims\n")


def test_pvc_resize_refused_while_unbound():
    old = _stored(pvc())
    new = copy.deepcopy(old)
    new["spec"]["resources"]["requests"]["storage"] = "2Gi"
    out = strs(validate_update(PVC, new, old))
    assert len(out) == 1 and out[0].startswith("spec: Forbidden: spec is immutable after creation")


def test_pvc_volume_name_and_class_set_once():
    old = _stored(pvc())
    new = copy.deepcopy(old)
    new["spec"]["volumeName"] = "pv1"
    new["spec"]["storageClassName"] = "standard"
    assert strs(validate_update(PVC, new, old)) == []
    older = copy.deepcopy(new)
    newer = copy.deepcopy(new)
    newer["spec"]["volumeName"] = "pv2"
    assert strs(validate_update(PVC, newer, older))[0].startswith("spec: Forbidden")


def test_pvc_shrink_refused_below_capacity():
    old = _bound(pvc(resources={"requests": {"storage": "2Gi"}}), capacity="2Gi")
    new = copy.deepcopy(old)
    new["spec"]["resources"]["requests"]["storage"] = "1Gi"
    assert strs(validate_update(PVC, new, old)) == [
        "spec.resources.requests.storage: Forbidden: field can not be less than status.capacity"]
    # recovering from a failed expansion: back down to above the real capacity is allowed
    old = _bound(pvc(resources={"requests": {"storage": "10Gi"}}), capacity="2Gi")
    new = copy.deepcopy(old)
    new["spec"]["resources"]["requests"]["storage"] = "3Gi"
    assert strs(validate_update(PVC, new, old)) == []


def test_pvc_beta_class_annotation_immutable():
    old = _stored(pvc())
    old["metadata"]["annotations"] = {"volume.beta.kubernetes.io/storage-class": "a"}
    new = copy.deepcopy(old)
    new["metadata"]["annotations"]["volume.beta.kubernetes.io/storage-class"] = "b"
    assert strs(validate_update(PVC, new, old)) == [
        'metadata.annotations.volume.beta.kubernetes.io/storage-class: Invalid value: "b": field '
        'is immutable']


def test_pvc_status_update():
    old = _stored(pvc())
    new = copy.deepcopy(old)
    new["status"] = {"phase": "Bound", "capacity": {"storage": "1Gi"},
                     "allocatedResourceStatuses": {"storage": "NodeResizePending"}}
    assert strs(validate_status_update(PVC, new, old)) == []
    new["status"]["allocatedResourceStatuses"] = {"storage": "Shrinking"}
    assert strs(validate_status_update(PVC, new, old)) == [
        'status.allocatedResourceStatus: Unsupported value: "storage": supported values: '
        '"ControllerResizeInProgress", "ControllerResizeInfeasible", "NodeResizeInProgress", '
        '"NodeResizeInfeasible", "NodeResizePending"']


# storage classes -------------------------------------------------------------------------
def sc(**fields):
    obj = {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
           "metadata": {"name": "standard"}, "provisioner": "rancher.io/local-path"}
    obj.update(fields)
    obj = {k: v for k, v in obj.items() if v is not None}
    apply_defaults(SC, obj)
    return obj


@pytest.mark.parametrize("fields,expected", [
    ({}, []),
    ({"provisioner": None}, ["provisioner: Required value"]),
    ({"provisioner": "a/b/c"}, [
        "provisioner: Invalid value: \"a/b/c\": a valid label key must consist of alphanumeric "
        "characters, '-', '_' or '.', and must start and end with an alphanumeric character "
        "(e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
        "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and "
        "'/' (e.g. 'example.com/MyName')"]),
    ({"reclaimPolicy": "Recycle"},
     ['reclaimPolicy: Unsupported value: "Recycle": supported values: "Delete", "Retain"']),
    ({"volumeBindingMode": "Later"},
     ['volumeBindingMode: Unsupported value: "Later": supported values: "Immediate", '
      '"WaitForFirstConsumer"']),
    ({"allowedTopologies": [{"matchLabelExpressions": []}]},
     ["allowedTopologies[0]: Required value: must have at least one label expression"]),
    ({"parameters": {"": "x"}}, ['parameters: Invalid value: "": field can not be empty.']),
])
def test_storage_class_create(fields, expected):
    assert strs(validate_create(SC, sc(**fields))) == expected


def test_storage_class_defaults():
    obj = sc()
    assert obj["reclaimPolicy"] == "Delete" and obj["volumeBindingMode"] == "Immediate"


@pytest.mark.parametrize("change,expected", [
    ({"allowVolumeExpansion": True}, []),
    ({"metadata": {"name": "standard", "resourceVersion": "1", "uid": "u",
                   "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}}, []),
    ({"parameters": {"a": "b"}}, ["parameters: Forbidden: updates to parameters are forbidden."]),
    ({"provisioner": "other.io/p"},
     ["provisioner: Forbidden: updates to provisioner are forbidden."]),
    ({"reclaimPolicy": "Retain"},
     ["reclaimPolicy: Forbidden: updates to reclaimPolicy are forbidden."]),
    ({"volumeBindingMode": "WaitForFirstConsumer"},
     ['volumeBindingMode: Invalid value: "WaitForFirstConsumer": field is immutable']),
])
def test_storage_class_update(change, expected):
    old = sc()
    old["metadata"].update({"resourceVersion": "1", "uid": "u"})
    new = copy.deepcopy(old)
    new.update(change)
    assert strs(validate_update(SC, new, old)) == expected
