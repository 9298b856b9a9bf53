"""apply_defaults: upstream's v1 defaults per kind; idempotent; never overwrites client values."""

import copy

import pytest
from hypothesis import given, strategies as st

from k1s.api import registry as R
from k1s.api.defaults import apply_defaults, pull_policy_for


def defaulted(plural, obj):
    obj = copy.deepcopy(obj)
    apply_defaults(R.get(plural), obj)
    return obj


POD = {"metadata": {"name": "p"}, "spec": {
    "containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 80}],
                    "env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath":
                                                                      "metadata.name"}}}],
                    "livenessProbe": {"httpGet": {"port": 80}},
                    "resources": {"limits": {"cpu": "1"}}}],
    "volumes": [{"name": "scratch"}, {"name": "cfg", "configMap": {"name": "c"}},
                {"name": "sec", "secret": {"secretName": "s"}},
                {"name": "host", "hostPath": {"path": "/x"}}]}}


def test_pod_defaults():
    p = defaulted("pods", POD)
    spec = p["spec"]
    assert {k: spec[k] for k in ("restartPolicy", "dnsPolicy", "schedulerName",
                                 "terminationGracePeriodSeconds", "securityContext",
                                 "enableServiceLinks")} == {
        "restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
        "schedulerName": "default-scheduler", "terminationGracePeriodSeconds": 30,
        "securityContext": {}, "enableServiceLinks": True}
    c = spec["containers"][0]
    assert c["imagePullPolicy"] == "Always"
    assert c["terminationMessagePath"] == "/dev/termination-log"
    assert c["terminationMessagePolicy"] == "File"
    assert c["ports"][0]["protocol"] == "TCP"
    assert c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"] == "v1"
    assert c["livenessProbe"] == {"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"},
                                  "timeoutSeconds": 1, "periodSeconds": 10,
                                  "successThreshold": 1, "failureThreshold": 3}
    assert c["resources"]["requests"] == {"cpu": "1"}
    vols = {v["name"]: v for v in spec["volumes"]}
    assert vols["scratch"]["emptyDir"] == {}
    assert vols["cfg"]["configMap"]["defaultMode"] == 420
    assert vols["sec"]["secret"]["defaultMode"] == 420
    assert vols["host"]["hostPath"]["type"] == ""


@pytest.mark.parametrize("image,policy", [
    ("nginx", "Always"), ("nginx:latest", "Always"), ("nginx:1.9.1", "IfNotPresent"),
    ("localhost:5000/nginx", "Always"), ("localhost:5000/nginx:1", "IfNotPresent"),
    ("nginx@sha256:" + "a" * 64, "IfNotPresent"),
])
def test_pull_policy(image, policy):
    assert pull_policy_for(image) == policy


def test_client_values_are_kept():
    p = copy.deepcopy(POD)
    p["spec"]["restartPolicy"] = "Never"
    p["spec"]["containers"][0]["imagePullPolicy"] = "Never"
    p = defaulted("pods", p)
    assert p["spec"]["restartPolicy"] == "Never"
    assert p["spec"]["containers"][0]["imagePullPolicy"] == "Never"


STS = {"metadata": {"name": "web"}, "spec": {
    "selector": {"matchLabels": {"app": "nginx"}}, "serviceName": "nginx",
    "template": {"metadata": {"labels": {"app": "nginx"}},
                 "spec": {"containers": [{"name": "nginx", "image": "nginx:1.9.1"}]}},
    "volumeClaimTemplates": [{"metadata": {"name": "www"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}}


def test_statefulset_defaults():
    s = defaulted("statefulsets.apps", STS)["spec"]
    assert s["replicas"] == 1
    assert s["podManagementPolicy"] == "OrderedReady"
    assert s["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert s["revisionHistoryLimit"] == 10
    assert s["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain",
                                                         "whenScaled": "Retain"}
    tspec = s["template"]["spec"]
    assert tspec["restartPolicy"] == "Always"
    assert tspec["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert "enableServiceLinks" not in tspec  # pod-only default
    vct = s["volumeClaimTemplates"][0]
    assert vct["spec"]["volumeMode"] == "Filesystem"
    assert vct["status"] == {"phase": "Pending"}


def test_ondelete_keeps_no_rolling_update():
    sts = copy.deepcopy(STS)
    sts["spec"]["updateStrategy"] = {"type": "OnDelete"}
    s = defaulted("statefulsets.apps", sts)["spec"]
    assert s["updateStrategy"] == {"type": "OnDelete"}


@pytest.mark.parametrize("plural,obj,expected", [
    ("persistentvolumes", {"spec": {"rbd": {"monitors": ["m"], "image": "foo"}}},
     {"spec": {"rbd": {"monitors": ["m"], "image": "foo", "pool": "rbd", "user": "admin",
                       "keyring": "/etc/ceph/keyring"},
               "persistentVolumeReclaimPolicy": "Retain", "volumeMode": "Filesystem"},
      "status": {"phase": "Pending"}}),
    ("persistentvolumeclaims", {"spec": {}},
     {"spec": {"volumeMode": "Filesystem"}, "status": {"phase": "Pending"}}),
    ("storageclasses.storage.k8s.io", {"provisioner": "p"},
     {"provisioner": "p", "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate"}),
    ("services", {"spec": {"ports": [{"port": 80}]}},
     {"spec": {"ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
               "sessionAffinity": "None", "type": "ClusterIP",
               "internalTrafficPolicy": "Cluster"}}),
    ("namespaces", {"metadata": {"name": "a"}},
     {"metadata": {"name": "a", "labels": {"kubernetes.io/metadata.name": "a"}},
      "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}),
    ("secrets", {}, {"type": "Opaque"}),
    ("endpoints", {"subsets": [{"ports": [{"port": 80}]}]},
     {"subsets": [{"ports": [{"port": 80, "protocol": "TCP"}]}]}),
    ("endpointslices.discovery.k8s.io", {"ports": [{"port": 80}]},
     {"ports": [{"port": 80, "protocol": "TCP", "name": ""}]}),
    ("configmaps", {"data": {"a": "b"}}, {"data": {"a": "b"}}),
])
def test_kind_defaults(plural, obj, expected):
    assert defaulted(plural, obj) == expected


KINDS = ["pods", "statefulsets.apps", "persistentvolumes", "persistentvolumeclaims", "services",
         "namespaces", "secrets", "nodes", "endpoints", "storageclasses.storage.k8s.io",
         "endpointslices.discovery.k8s.io", "configmaps", "leases.coordination.k8s.io"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["spec", "containers", "ports", "image", "volumes", "name", "type",
                         "template", "status", "metadata", "updateStrategy", "rollingUpdate",
                         "hostPath", "subsets"]), inner, max_size=4),
    max_leaves=12)


@given(st.sampled_from(KINDS), st.dictionaries(st.sampled_from(["spec", "metadata", "status",
                                                                 "subsets", "ports", "type"]),
                                                json_values, max_size=3))
def test_defaulting_is_idempotent_and_total(plural, obj):
    once = defaulted(plural, obj)  # never raises on odd shapes
    assert defaulted(plural, once) == once


@given(st.sampled_from(["pods", "statefulsets.apps"]))
def test_defaulted_seed_objects_validate(plural):
    from k1s.api.validation import validate_create
    obj = copy.deepcopy(POD if plural == "pods" else STS)
    obj["metadata"]["namespace"] = "default"
    apply_defaults(R.get(plural), obj)
    assert validate_create(R.get(plural), obj) == []
