"""kubectl create / run / get-by-name and the errors kubectl prints, against `k1s up`.

Expected texts are what kubectl prints against a real cluster (spec/kubectl-wire.md §1, §4).
"""

from __future__ import annotations

import base64
import json
import re

import pytest

from e2e_util import SEED, deleted_line, lines, manifest, uniq, wait_until

def test_create_multi_document_file(anykubectl, namespace):
    out = anykubectl.ok("create", "-n", namespace, "-f", manifest("multi.yaml"))
    assert lines(out) == ["configmap/multi-cm created", "secret/multi-secret created",
                          "service/multi-svc created", "pod/multi-pod created"]
    names = anykubectl.ok("get", "-n", namespace, "cm,secret,svc,pod", "-l", "suite=multi",
                          "-o", "name")
    assert set(lines(names)) == {"configmap/multi-cm", "secret/multi-secret",
                                 "service/multi-svc", "pod/multi-pod"}


def test_created_objects_are_defaulted(kubectl, namespace):
    kubectl.ok("create", "-n", namespace, "-f", manifest("multi.yaml"))
    secret = kubectl.json("get", "-n", namespace, "secret", "multi-secret")
    # stringData is write-only: the server folds it into base64 data.
    assert "stringData" not in secret
    assert base64.b64decode(secret["data"]["password"]) == b"s3cret"
    svc = kubectl.json("get", "-n", namespace, "svc", "multi-svc")
    assert svc["spec"]["type"] == "ClusterIP"
    assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", svc["spec"]["clusterIP"])
    assert svc["spec"]["ports"][0] == {"port": 80, "protocol": "TCP", "targetPort": 8080}
    assert svc["spec"]["sessionAffinity"] == "None"
    pod = kubectl.json("get", "-n", namespace, "pod", "multi-pod")
    c = pod["spec"]["containers"][0]
    assert c["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
    assert c["imagePullPolicy"] == "Always"          # untagged image means :latest
    assert c["terminationMessagePath"] == "/dev/termination-log"
    assert pod["spec"]["restartPolicy"] == "Always"
    assert pod["spec"]["dnsPolicy"] == "ClusterFirst"
    assert pod["status"]["phase"] == "Pending"
    for obj in (secret, svc, pod):
        meta = obj["metadata"]
        assert meta["uid"] and meta["resourceVersion"] and meta["creationTimestamp"]


GENERATORS = [
    (["create", "configmap", "gen", "--from-literal=k=v"], "configmap/gen created",
     ("cm", "gen", "{.data.k}", "v")),
    (["create", "secret", "generic", "gen", "--from-literal=k=v"], "secret/gen created",
     ("secret", "gen", "{.data.k}", base64.b64encode(b"v").decode())),
    (["create", "service", "clusterip", "gen", "--tcp=80:8080"], "service/gen created",
     ("svc", "gen", "{.spec.ports[0].targetPort}", "8080")),
]


@pytest.mark.parametrize("args,printed,check", GENERATORS, ids=["configmap", "secret", "svc"])
def test_generators(kubectl, namespace, args, printed, check):
    # The typed generators POST a protobuf body (application/vnd.kubernetes.protobuf).
    p = kubectl(*args, "-n", namespace)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == printed
    kind, name, path, want = check
    assert kubectl.ok("get", "-n", namespace, kind, name, "-o", f"jsonpath={path}") == want


def test_generator_create_namespace(kubectl):
    name = uniq("e2e-gen-ns")
    p = kubectl("create", "namespace", name)
    try:
        assert p.returncode == 0, p.stderr
        assert p.stdout.strip() == f"namespace/{name} created"
    finally:
        kubectl("delete", "namespace", name, "--wait=false")


@pytest.mark.parametrize("args,printed,check", GENERATORS, ids=["configmap", "secret", "svc"])
def test_generator_objects_via_json(kubectl, namespace, args, printed, check):
    """What the generators build is accepted when sent as JSON (--dry-run=client | create)."""
    built = kubectl.ok(*args, "-n", namespace, "--dry-run=client", "-o", "json")
    out = kubectl.ok("create", "-n", namespace, "-f", "-", input=built)
    assert out.strip() == printed
    kind, name, path, want = check
    assert kubectl.ok("get", "-n", namespace, kind, name, "-o", f"jsonpath={path}") == want


def test_generator_service_ports(kubectl, namespace):
    built = kubectl.ok("create", "service", "clusterip", "gen", "--tcp=80:8080", "-n",
                       namespace, "--dry-run=client", "-o", "json")
    kubectl.ok("create", "-n", namespace, "-f", "-", input=built)
    svc = kubectl.json("get", "-n", namespace, "svc", "gen")
    assert svc["spec"]["ports"] == [{"name": "80-8080", "port": 80, "protocol": "TCP",
                                     "targetPort": 8080}]
    assert svc["spec"]["selector"] == {"app": "gen"}
    assert svc["spec"]["type"] == "ClusterIP"


def test_run_creates_pod(anykubectl, namespace):
    kubectl = anykubectl
    # kubectl 1.32 sends metadata.creationTimestamp: null (1.37 leaves it out); the server
    # always sets its own.
    sent = json.loads(kubectl.ok("run", "web", "--image=nginx:1.27", "-n", namespace,
                                 "--dry-run=client", "-o", "json"))
    if kubectl.minor <= 32:
        assert sent["metadata"]["creationTimestamp"] is None
    out = kubectl.ok("run", "web", "--image=nginx:1.27", "--restart=Never", "--port=80",
                     "--env=MODE=test", "--labels=app=web,tier=fe", "-n", namespace)
    assert out.strip() == "pod/web created"
    pod = kubectl.json("get", "pod", "web", "-n", namespace)
    meta = pod["metadata"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", meta["creationTimestamp"])
    assert re.fullmatch(r"[0-9a-f-]{36}", meta["uid"])
    assert meta["labels"] == {"app": "web", "tier": "fe"}
    spec = pod["spec"]
    assert spec["restartPolicy"] == "Never"
    c = spec["containers"][0]
    assert (c["name"], c["image"]) == ("web", "nginx:1.27")
    assert c["imagePullPolicy"] == "IfNotPresent"   # tagged, not :latest
    assert c["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert c["env"] == [{"name": "MODE", "value": "test"}]
    p = kubectl("run", "web", "--image=nginx", "-n", namespace)
    assert p.returncode == 1
    assert p.stderr.strip() == 'Error from server (AlreadyExists): pods "web" already exists'


def test_null_creation_timestamp_is_replaced(kubectl, namespace):
    doc = json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                      "metadata": {"name": "ts", "creationTimestamp": None}})
    assert kubectl.ok("create", "-n", namespace, "-f", "-", input=doc).strip() == \
        "configmap/ts created"
    ts = kubectl.ok("get", "-n", namespace, "cm", "ts", "-o",
                    "jsonpath={.metadata.creationTimestamp}")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", ts)


def test_create_get_delete_by_name(anykubectl, namespace):
    k = anykubectl
    doc = json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                      "metadata": {"name": "plain"}, "data": {"a": "1", "b": "2"}})
    assert k.ok("create", "-n", namespace, "-f", "-", input=doc).strip() == \
        "configmap/plain created"
    out = k.ok("get", "-n", namespace, "configmap", "plain")
    assert lines(out)[0].split() == ["NAME", "DATA", "AGE"]
    assert lines(out)[1].split()[:2] == ["plain", "2"]
    out = k.ok("delete", "-n", namespace, "configmap", "plain")
    assert out.strip() == deleted_line(k.minor, "configmap", "plain", namespace)
    p = k("get", "-n", namespace, "configmap", "plain")
    assert p.returncode == 1
    assert p.stderr.strip() == 'Error from server (NotFound): configmaps "plain" not found'


NOT_FOUND = [
    (["get", "configmap", "nope"], 'configmaps "nope" not found'),
    (["get", "sts", "nope"], 'statefulsets.apps "nope" not found'),
    (["get", "pvc", "nope"], 'persistentvolumeclaims "nope" not found'),
    (["get", "pv", "nope"], 'persistentvolumes "nope" not found'),
    (["get", "sc", "nope"], 'storageclasses.storage.k8s.io "nope" not found'),
    (["delete", "pod", "nope"], 'pods "nope" not found'),
    (["patch", "cm", "nope", "-p", "{}"], 'configmaps "nope" not found'),
    (["describe", "pod", "nope"], 'pods "nope" not found'),
]


@pytest.mark.parametrize("args,message", NOT_FOUND, ids=[" ".join(a[:2]) for a, _ in NOT_FOUND])
def test_not_found_messages(kubectl, namespace, args, message):
    p = kubectl(*args, "-n", namespace)
    assert p.returncode == 1
    assert p.stderr.strip() == f"Error from server (NotFound): {message}"


def test_get_several_names_one_missing(kubectl, namespace):
    kubectl.ok("create", "-n", namespace, "-f", manifest("multi.yaml"))
    p = kubectl("get", "-n", namespace, "configmap", "multi-cm", "nope")
    assert p.returncode == 1
    assert [ln.split()[0] for ln in lines(p.stdout)] == ["NAME", "multi-cm"]
    assert p.stderr.strip() == 'Error from server (NotFound): configmaps "nope" not found'


def test_unknown_resource_type(kubectl, namespace):
    p = kubectl("get", "foos", "-n", namespace)
    assert p.returncode == 1
    assert p.stderr.strip() == 'error: the server doesn\'t have a resource type "foos"'


def test_already_exists_from_file(kubectl, namespace):
    path = manifest("multi.yaml")
    kubectl.ok("create", "-n", namespace, "-f", path)
    p = kubectl("create", "-n", namespace, "-f", path)
    assert p.returncode == 1
    err = lines(p.stderr)
    assert err[0] == (f'Error from server (AlreadyExists): error when creating "{path}": '
                      'configmaps "multi-cm" already exists')
    assert len(err) == 4 and 'pods "multi-pod" already exists' in err[3]


INVALID = [
    ({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bad"},
      "spec": {"containers": [{"name": "c", "image": "x", "ports": [{"containerPort": -1}]}]}},
     'The Pod "bad" is invalid: spec.containers[0].ports[0].containerPort: Invalid value: -1: '
     'must be between 1 and 65535, inclusive'),
    ({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "bad"},
      "spec": {"replicas": -1, "selector": {"matchLabels": {"a": "b"}},
               "template": {"metadata": {"labels": {"a": "b"}},
                            "spec": {"containers": [{"name": "c", "image": "x"}]}}}},
     'The StatefulSet "bad" is invalid: spec.replicas: Invalid value: -1: '
     'must be greater than or equal to 0'),
    ({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "bad"},
      "spec": {"resources": {}}},
     'The PersistentVolumeClaim "bad" is invalid: \n'
     '* spec.accessModes: Required value: at least 1 access mode is required\n'
     '* spec.resources[storage]: Required value'),
    ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Bad_Name"}},
     'The ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a '
     "lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
     "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex "
     "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"),
]


@pytest.mark.parametrize("obj,message", INVALID, ids=["pod-port", "sts-replicas",
                                                      "pvc-two-causes", "bad-name"])
def test_invalid_messages(kubectl, namespace, obj, message):
    p = kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(obj))
    assert p.returncode == 1
    assert p.stderr.rstrip("\n") == message


def test_strict_validation_refuses_unknown_fields(kubectl, namespace):
    path = manifest("unknown-fields.yaml")
    p = kubectl("create", "-n", namespace, "-f", path)
    assert p.returncode == 1
    assert p.stderr.strip() == (
        f'Error from server (BadRequest): error when creating "{path}": ConfigMap in version '
        '"v1" cannot be handled as a ConfigMap: strict decoding error: unknown field "extra", '
        'unknown field "metadata.bogus"')
    assert kubectl("get", "-n", namespace, "cm", "unk").returncode == 1


def test_validate_warn_prints_warnings_and_drops(kubectl, namespace):
    p = kubectl("create", "-n", namespace, "-f", manifest("unknown-fields.yaml"),
                "--validate=warn")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "configmap/unk created"
    assert lines(p.stderr) == ['Warning: unknown field "extra"',
                               'Warning: unknown field "metadata.bogus"']


def test_validate_false_drops_unknown_fields(anykubectl, namespace):
    p = anykubectl("create", "-n", namespace, "-f", manifest("unknown-fields.yaml"),
                   "--validate=false")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "configmap/unk created"
    assert p.stderr == ""
    cm = anykubectl.json("get", "-n", namespace, "cm", "unk")
    assert "extra" not in cm and "bogus" not in cm["metadata"]
    assert cm["data"] == {"a": "b"}


def test_seed_pv_as_printed_is_refused(kubectl):
    """The seed's PV as printed has no accessModes: refused as upstream refuses it. Its rbd
    imageformat/imagefeatures (StorageClass parameters, not PV fields) only draw warnings:
    k1s tolerates these two so the seed's walkthrough applies (docs/compatibility.md)."""
    path = f"{SEED}/pv-volume-as-printed.yaml"
    for extra in ((), ("--validate=false",)):
        p = kubectl("create", "-f", path, *extra)
        assert p.returncode == 1
        assert p.stderr.strip().endswith(
            'The PersistentVolume "pv-volume" is invalid: spec.accessModes: Required value')
    assert kubectl("get", "pv", "pv-volume").returncode == 1


def test_seed_pv_is_stored_without_its_storageclass_parameters(kubectl):
    """The seed's corrected PV (accessModes added) names rbd fields the API does not have
    (imageformat, imagefeatures): stored without them, with kubectl's unknown-field warnings;
    any other unknown field is still refused under strict validation."""
    path = f"{SEED}/pv-volume.yaml"
    p = kubectl("create", "-f", path)
    try:
        assert p.returncode == 0, p.stderr
        assert p.stdout.strip() == "persistentvolume/pv-volume created"
        assert 'Warning: unknown field "spec.rbd.imagefeatures"' in p.stderr
        bad = open(path).read().replace("pool: kube", "pool: kube\n    bogus: 1")
        p = kubectl("create", "-f", "-", input=bad.replace("pv-volume", "pv-volume-b"))
        assert p.returncode == 1
        assert p.stderr.strip().endswith('strict decoding error: unknown field "spec.rbd.bogus"')
        pv = kubectl.json("get", "pv", "pv-volume")
        assert pv["spec"]["rbd"] == {
            "monitors": ["10.16.154.78:6789", "10.16.154.82:6789", "10.16.154.83:6789"],
            "pool": "kube", "image": "foo", "fsType": "ext4", "readOnly": True,
            "user": "admin", "keyring": "/etc/ceph/keyring"}
        assert pv["spec"]["accessModes"] == ["ReadWriteOnce"]
        assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"   # static PV default
        assert pv["spec"]["volumeMode"] == "Filesystem"
    finally:
        kubectl("delete", "pv", "pv-volume", "--wait=false")
        kubectl("patch", "pv", "pv-volume", "--type=merge", "-p",
                '{"metadata":{"finalizers":null}}')


def test_storage_protection_finalizers(kubectl, namespace):
    pv = uniq("e2e-pv")
    kubectl.ok("create", "-n", namespace, "-f", "-", input="\n---\n".join(json.dumps(d) for d in [
        {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": pv},
         "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                  "storageClassName": "e2e-none", "hostPath": {"path": "/tmp/" + pv}}},
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "c"},
         "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "e2e-other",
                  "resources": {"requests": {"storage": "1Gi"}}}}]))
    try:
        def fin(kind, name, *ns):
            return kubectl.ok("get", kind, name, *ns, "-o", "jsonpath={.metadata.finalizers}")
        assert wait_until(lambda: fin("pvc", "c", "-n", namespace), timeout=3) == \
            '["kubernetes.io/pvc-protection"]'
        assert wait_until(lambda: fin("pv", pv), timeout=3) == '["kubernetes.io/pv-protection"]'
    finally:
        kubectl("delete", "pv", pv, "--wait=false")
