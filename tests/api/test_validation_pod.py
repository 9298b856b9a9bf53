"""Pod, container and pod-update rules; StatefulSet and ControllerRevision rules."""

import copy

import pytest

from k1s.api import registry as R
from k1s.api.defaults import apply_defaults
from k1s.api.validation import validate_create, validate_status_update, validate_update

POD = R.get("pods")
STS = R.get("statefulsets.apps")
CR = R.get("controllerrevisions.apps")


def strs(errs):
    return [str(e) for e in errs]


def pod(containers=None, **spec):
    obj = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
           "spec": {"containers": containers if containers is not None else
                    [{"name": "web", "image": "nginx", "ports": [{"containerPort": 80}]}]}}
    obj["spec"].update(spec)
    apply_defaults(POD, obj)
    return obj


def ctr(**fields):
    c = {"name": "web", "image": "nginx"}
    c.update(fields)
    return [c]


@pytest.mark.parametrize("p,expected", [
    (pod(), []),
    (pod(containers=[]), ["spec.containers: Required value"]),
    (pod(ctr(name="Web")), [
        "spec.containers[0].name: Invalid value: \"Web\": a lowercase RFC 1123 label must consist "
        "of lower case alphanumeric characters or '-', and must start and end with an "
        "alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
        "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"]),
    (pod(ctr(image="")), ["spec.containers[0].image: Required value"]),
    (pod([{"name": "a", "image": "x"}, {"name": "a", "image": "y"}]),
     ['spec.containers[1].name: Duplicate value: "a"']),
    (pod(ctr(ports=[{"containerPort": 70000}])),
     ["spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and "
      "65535, inclusive"]),
    (pod(ctr(ports=[{"containerPort": 80, "protocol": "HTTP"}])),
     ['spec.containers[0].ports[0].protocol: Unsupported value: "HTTP": supported values: '
      '"SCTP", "TCP", "UDP"']),
    (pod(ctr(ports=[{"containerPort": 80, "name": "http-server-long-name"}])),
     ['spec.containers[0].ports[0].name: Invalid value: "http-server-long-name": must be no '
      'more than 15 bytes']),
    (pod(ctr(volumeMounts=[{"name": "data", "mountPath": "/d"}])),
     ['spec.containers[0].volumeMounts[0].name: Not found: "data"']),
    (pod(ctr(env=[{"name": "A=B", "value": "x"}])),
     ['spec.containers[0].env[0].name: Invalid value: "A=B": a valid environment variable name '
      "must consist only of printable ASCII characters other than '='"]),
    (pod(ctr(env=[{"name": "A", "valueFrom": {}}])),
     ['spec.containers[0].env[0].valueFrom: Invalid value: "": must specify one of: `fieldRef`, '
      '`resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`']),
    (pod(ctr(env=[{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "spec.bogus"}}}])),
     ['spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: Unsupported value: "spec.bogus": '
      'supported values: "metadata.name", "metadata.namespace", "metadata.uid", '
      '"spec.nodeName", "spec.serviceAccountName", "status.hostIP", "status.hostIPs", '
      '"status.podIP", "status.podIPs"']),
    (pod(ctr(imagePullPolicy="Sometimes")),
     ['spec.containers[0].imagePullPolicy: Unsupported value: "Sometimes": supported values: '
      '"Always", "IfNotPresent", "Never"']),
    (pod(ctr(resources={"requests": {"cpu": "2"}, "limits": {"cpu": "1"}})),
     ['spec.containers[0].resources.requests: Invalid value: "2": must be less than or equal '
      'to cpu limit of 1']),
    (pod(ctr(resources={"limits": {"gpu": "1"}})),
     ['spec.containers[0].resources.limits[gpu]: Invalid value: "gpu": must be a standard '
      'resource type or fully qualified',
      'spec.containers[0].resources.limits[gpu]: Invalid value: "gpu": must be a standard '
      'resource for containers',
      # defaulting copied the limit into requests, so the request is refused too
      'spec.containers[0].resources.requests[gpu]: Invalid value: "gpu": must be a standard '
      'resource type or fully qualified',
      'spec.containers[0].resources.requests[gpu]: Invalid value: "gpu": must be a standard '
      'resource for containers']),
    (pod(ctr(livenessProbe={"httpGet": {"port": 80}, "successThreshold": 2})),
     ["spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1"]),
    (pod(ctr(readinessProbe={"periodSeconds": 5})),
     ["spec.containers[0].readinessProbe: Required value: must specify a handler type"]),
    (pod(ctr(readinessProbe={"tcpSocket": {"port": "http"}})), []),
    (pod(restartPolicy="Sometimes"),
     ['spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", '
      '"OnFailure", "Never"']),
    (pod(dnsPolicy="None"),
     ["spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None"]),
    (pod(volumes=[{"name": "data"}]), []),  # defaulted to emptyDir
    (pod(volumes=[{"name": "d", "hostPath": {"path": "/x"}, "nfs": {"server": "s", "path": "/"}}]),
     ["spec.volumes[0].nfs: Forbidden: may not specify more than 1 volume type"]),
    (pod(volumes=[{"name": "d", "persistentVolumeClaim": {}}]),
     ["spec.volumes[0].persistentVolumeClaim.claimName: Required value"]),
    (pod(volumes=[{"name": "d", "configMap": {"name": "c", "defaultMode": 1000}}]),
     ["spec.volumes[0].configMap.defaultMode: Invalid value: 1000: must be a number between 0 "
      "and 0777 (octal), both inclusive"]),
    (pod(volumes=[{"name": "d", "emptyDir": {}}, {"name": "d", "emptyDir": {}}]),
     ['spec.volumes[1].name: Duplicate value: "d"']),
    (pod(tolerations=[{"operator": "Equal", "value": "x"}]),
     ['spec.tolerations[0].operator: Invalid value: "Equal": operator must be Exists when `key` '
      'is empty, which means "match all values and all keys"']),
    (pod(activeDeadlineSeconds=0),
     ["spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, "
      "inclusive"]),
    (pod(initContainers=[{"name": "init", "image": "busybox", "readinessProbe": {
        "exec": {"command": ["true"]}}}]),
     ["spec.initContainers[0].readinessProbe: Forbidden: may not be set for init containers "
      "without restartPolicy=Always"]),
])
def test_pod_create(p, expected):
    assert strs(validate_create(POD, p)) == expected


def test_seed_style_pvc_pod_is_valid():
    p = pod(ctr(ports=[{"containerPort": 80, "name": "http-server"}],
                volumeMounts=[{"mountPath": "/usr/share/nginx/html", "name": "pv-storage"}]),
            volumes=[{"name": "pv-storage", "persistentVolumeClaim": {"claimName": "pv-claim"}}])
    assert strs(validate_create(POD, p)) == []


def _stored(obj):
    obj = copy.deepcopy(obj)
    obj["metadata"].update({"resourceVersion": "1", "uid": "u"})
    return obj


def test_pod_update_allows_image_and_deadline():
    old = _stored(pod())
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = "nginx:1.27"
    new["spec"]["activeDeadlineSeconds"] = 100
    new["metadata"]["labels"] = {"a": "b"}
    assert strs(validate_update(POD, new, old)) == []


def test_pod_update_refuses_other_spec_changes():
    old = _stored(pod())
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["ports"][0]["containerPort"] = 81
    out = strs(validate_update(POD, new, old))
    assert len(out) == 1
    assert out[0].startswith(
        "spec: Forbidden: pod updates may not change fields other than "
        "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,"
        "`spec.tolerations` (only additions to existing tolerations),"
        "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously "
        "negative)\n")
    assert "containerPort" in out[0]


def test_pod_update_container_count():
    old = _stored(pod())
    new = copy.deepcopy(old)
    new["spec"]["containers"].append({"name": "b", "image": "x"})
    apply_defaults(POD, new)
    assert "spec.containers: Forbidden: pod updates may not add or remove containers" in \
        strs(validate_update(POD, new, old))


def test_pod_update_deadline_may_only_shrink():
    old = _stored(pod(activeDeadlineSeconds=10))
    new = copy.deepcopy(old)
    new["spec"]["activeDeadlineSeconds"] = 20
    assert strs(validate_update(POD, new, old)) == [
        "spec.activeDeadlineSeconds: Invalid value: 20: must be less than or equal to previous "
        "value"]


def test_pod_status_update():
    old = _stored(pod())
    new = copy.deepcopy(old)
    new["status"] = {"phase": "Running", "podIP": "10.0.0.5", "podIPs": [{"ip": "10.0.0.5"}]}
    assert strs(validate_status_update(POD, new, old)) == []
    new["status"]["podIPs"] = [{"ip": "not-an-ip"}]
    assert strs(validate_status_update(POD, new, old)) == [
        'status.podIPs[0]: Invalid value: "not-an-ip": must be a valid IP address, (e.g. '
        '10.9.8.7 or 2001:db8::ffff)']
    new = copy.deepcopy(old)
    new["spec"]["nodeName"] = "n1"
    assert strs(validate_status_update(POD, new, old)) == [
        "status.nodeName: Forbidden: may not be changed directly"]


# StatefulSet -----------------------------------------------------------------------------
def sts(**spec):
    base = {"serviceName": "nginx", "replicas": 2,
            "selector": {"matchLabels": {"app": "nginx"}},
            "template": {"metadata": {"labels": {"app": "nginx"}},
                         "spec": {"containers": [{"name": "nginx", "image": "nginx:1.9.1"}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "www"}, "spec": {
                "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}
    base.update(spec)
    obj = {"apiVersion": "apps/v1", "kind": "StatefulSet",
           "metadata": {"name": "web", "namespace": "default"},
           "spec": {k: v for k, v in base.items() if v is not None}}
    apply_defaults(STS, obj)
    return obj


@pytest.mark.parametrize("obj,expected", [
    (sts(), []),
    (sts(selector=None), ["spec.selector: Required value"]),
    (sts(selector={}), ["spec.selector: Invalid value: {}: empty selector is invalid for "
                        "statefulset"]),
    (sts(selector={"matchLabels": {"app": "other"}}),
     ['spec.template.metadata.labels: Invalid value: {"app":"nginx"}: `selector` does not match '
      'template `labels`']),
    (sts(replicas=-1), ["spec.replicas: Invalid value: -1: must be greater than or equal to 0"]),
    (sts(podManagementPolicy="Random"),
     ['spec.podManagementPolicy: Invalid value: "Random": must be \'OrderedReady\' or '
      '\'Parallel\'']),
    (sts(updateStrategy={"type": "OnDelete", "rollingUpdate": {"partition": 0}}),
     ['spec.updateStrategy.rollingUpdate: Invalid value: {"partition":0}: only allowed for '
      "updateStrategy 'RollingUpdate'"]),
    (sts(updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": -1}}),
     ["spec.updateStrategy.rollingUpdate.partition: Invalid value: -1: must be greater than or "
      "equal to 0"]),
    (sts(persistentVolumeClaimRetentionPolicy={"whenDeleted": "Keep", "whenScaled": "Retain"}),
     ['spec.persistentVolumeClaimRetentionPolicy.whenDeleted: Unsupported value: "Keep": '
      'supported values: "Retain", "Delete"']),
    (sts(ordinals={"start": -2}),
     ["spec.ordinals.start: Invalid value: -2: must be greater than or equal to 0"]),
])
def test_statefulset_create(obj, expected):
    assert strs(validate_create(STS, obj)) == expected


def test_statefulset_template_rules():
    obj = sts()
    obj["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    obj["spec"]["template"]["spec"]["activeDeadlineSeconds"] = 5
    assert strs(validate_create(STS, obj)) == [
        'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: '
        '"Always"',
        "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in "
        "StatefulSet is not Supported"]


def test_statefulset_name_is_dns_label():
    obj = sts()
    obj["metadata"]["name"] = "web.v1"
    assert strs(validate_create(STS, obj)) == [
        'metadata.name: Invalid value: "web.v1": must not contain dots']


FORBIDDEN = ("spec: Forbidden: updates to statefulset spec for fields other than 'replicas', "
             "'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', "
             "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden")


@pytest.mark.parametrize("path,value,expected", [
    (("replicas",), 5, []),
    (("template", "spec", "containers", 0, "image"), "nginx:1.27", []),
    (("updateStrategy", "rollingUpdate", "partition"), 1, []),
    (("minReadySeconds",), 10, []),
    (("revisionHistoryLimit",), 3, []),
    (("serviceName",), "other", [FORBIDDEN]),
    (("podManagementPolicy",), "Parallel", [FORBIDDEN]),
    (("volumeClaimTemplates", 0, "spec", "resources", "requests", "storage"), "2Gi", [FORBIDDEN]),
])
def test_statefulset_update(path, value, expected):
    old = _stored(sts())
    new = copy.deepcopy(old)
    target = new["spec"]
    for p in path[:-1]:
        target = target[p]
    target[path[-1]] = value
    assert strs(validate_update(STS, new, old)) == expected


def test_statefulset_status_update():
    old = _stored(sts())
    new = copy.deepcopy(old)
    new["status"] = {"replicas": 2, "readyReplicas": 3, "availableReplicas": 1,
                     "collisionCount": 0}
    old["status"] = {"collisionCount": 1}
    assert strs(validate_status_update(STS, new, old)) == [
        "status.readyReplicas: Invalid value: 3: cannot be greater than status.replicas",
        "status.collisionCount: Invalid value: 0: cannot be decremented"]


def test_controller_revision():
    cr = {"metadata": {"name": "web-6b8d5d7c9f", "namespace": "default"}, "revision": 1,
          "data": {"spec": {}}}
    assert strs(validate_create(CR, cr)) == []
    bad = {"metadata": {"name": "web-1", "namespace": "default"}, "revision": -1}
    assert strs(validate_create(CR, bad)) == [
        "data: Required value: data is mandatory",
        "revision: Invalid value: -1: must be greater than or equal to 0"]
    old = _stored(cr)
    new = copy.deepcopy(old)
    new["data"] = {"spec": {"x": 1}}
    assert strs(validate_update(CR, new, old)) == [
        'data: Invalid value: {"spec":{"x":1}}: field is immutable']
