"""Server-side Tables: columns, pod status rules and every kind's cells, as kube-apiserver 1.32."""

import pytest

from k1s.api import registry
from k1s.api.humantime import parse_rfc3339
from k1s.api.tables import (
    access_modes_string, build_table, column_definitions, pod_status_reason, row_cells,
)

NOW = parse_rfc3339("2024-05-01T12:00:00Z")
T_5M = "2024-05-01T11:55:00Z"
T_2D = "2024-04-29T12:00:00Z"
R = registry.get


def meta(name="x", ns="default", created=T_2D, **extra):
    m = {"name": name, "namespace": ns, "uid": "u-" + name, "resourceVersion": "7",
         "creationTimestamp": created}
    m.update(extra)
    return m


def pod(statuses=None, init_statuses=None, phase="Running", init=(), containers=("app",),
        conditions=None, reason=None, deletion=None, **spec_extra):
    spec = {"containers": [{"name": c, "image": "busybox"} for c in containers], **spec_extra}
    if init:
        spec["initContainers"] = [dict(i) for i in init]
    status = {"phase": phase}
    if statuses is not None:
        status["containerStatuses"] = statuses
    if init_statuses is not None:
        status["initContainerStatuses"] = init_statuses
    if conditions is not None:
        status["conditions"] = conditions
    if reason:
        status["reason"] = reason
    md = meta("p")
    if deletion:
        md["deletionTimestamp"] = deletion
    return {"metadata": md, "spec": spec, "status": status}


def running(name="app", ready=True, restarts=0, last_finished=None):
    cs = {"name": name, "ready": ready, "restartCount": restarts,
          "state": {"running": {"startedAt": T_2D}}}
    if last_finished:
        cs["lastState"] = {"terminated": {"exitCode": 1, "finishedAt": last_finished}}
    return cs


def waiting(reason, name="app", restarts=0):
    return {"name": name, "ready": False, "restartCount": restarts,
            "state": {"waiting": {"reason": reason}}}


def terminated(reason=None, code=1, name="app", signal=0):
    t = {"exitCode": code}
    if reason:
        t["reason"] = reason
    if signal:
        t["signal"] = signal
    return {"name": name, "ready": False, "restartCount": 0, "state": {"terminated": t}}


SIDECAR = {"name": "side", "image": "envoy", "restartPolicy": "Always"}

POD_CASES = [
    ("running", pod([running()]), "1/1", "Running", "0"),
    ("pending, no statuses", pod(phase="Pending"), "0/1", "Pending", "0"),
    ("creating", pod([waiting("ContainerCreating")], phase="Pending"), "0/1",
     "ContainerCreating", "0"),
    ("crashloop", pod([{**waiting("CrashLoopBackOff", restarts=5),
                        "lastState": {"terminated": {"exitCode": 1, "finishedAt": T_5M}}}]),
     "0/1", "CrashLoopBackOff", "5 (5m ago)"),
    ("image pull", pod([waiting("ErrImagePull")], phase="Pending"), "0/1", "ErrImagePull", "0"),
    ("completed", pod([terminated("Completed", 0)], phase="Succeeded"), "0/1", "Completed", "0"),
    ("error", pod([terminated("Error", 1)], phase="Failed"), "0/1", "Error", "0"),
    ("oom", pod([terminated("OOMKilled", 137)]), "0/1", "OOMKilled", "0"),
    ("exit code", pod([terminated(None, 2)]), "0/1", "ExitCode:2", "0"),
    ("signal", pod([terminated(None, 0, signal=9)]), "0/1", "Signal:9", "0"),
    ("first container wins", pod([waiting("ErrImagePull", "a"), waiting("CrashLoopBackOff", "b")],
                                 containers=("a", "b")), "0/2", "ErrImagePull", "0"),
    ("partly ready", pod([running("a"), running("b", ready=False)], containers=("a", "b")),
     "1/2", "Running", "0"),
    ("init running", pod([waiting("PodInitializing")], [{"name": "i", "ready": False,
                                                         "restartCount": 0,
                                                         "state": {"running": {}}}],
                         phase="Pending", init=[{"name": "i"}]), "0/1", "Init:0/1", "0"),
    ("init waiting PodInitializing", pod(None, [waiting("PodInitializing", "i")],
                                         phase="Pending", init=[{"name": "i"}]),
     "0/1", "Init:0/1", "0"),
    ("second init", pod(None, [terminated("Completed", 0, "i1"), waiting("", "i2")],
                        phase="Pending", init=[{"name": "i1"}, {"name": "i2"}]),
     "0/1", "Init:1/2", "0"),
    ("init error", pod(None, [terminated("Error", 1, "i")], phase="Pending", init=[{"name": "i"}]),
     "0/1", "Init:Error", "0"),
    ("init crashloop", pod(None, [waiting("CrashLoopBackOff", "i", restarts=3)], phase="Pending",
                           init=[{"name": "i"}]), "0/1", "Init:CrashLoopBackOff", "3"),
    ("init exit code", pod(None, [terminated(None, 3, "i")], phase="Pending", init=[{"name": "i"}]),
     "0/1", "Init:ExitCode:3", "0"),
    ("init signal", pod(None, [terminated(None, 143, "i", signal=15)], phase="Pending",
                        init=[{"name": "i"}]), "0/1", "Init:Signal:15", "0"),
    ("init done, main waiting", pod([waiting("ContainerCreating")],
                                    [terminated("Completed", 0, "i")], phase="Pending",
                                    init=[{"name": "i"}]), "0/1", "ContainerCreating", "0"),
    ("sidecar ready", pod([running()], [{**running("side"), "started": True}], init=[SIDECAR]),
     "2/2", "Running", "0"),
    ("terminating", pod([running()], deletion=T_5M), "1/1", "Terminating", "0"),
    ("deleted but finished", pod([terminated("Completed", 0)], phase="Succeeded",
                                 deletion=T_5M), "0/1", "Completed", "0"),
    ("node lost", pod([running()], reason="NodeLost", deletion=T_5M), "1/1", "Unknown", "0"),
    ("evicted", pod([], phase="Failed", reason="Evicted"), "0/1", "Evicted", "0"),
    ("scheduling gated", pod(phase="Pending", conditions=[
        {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]),
     "0/1", "SchedulingGated", "0"),
    ("completed but one running, ready", pod(
        [terminated("Completed", 0, "a"), running("b")], containers=("a", "b"),
        conditions=[{"type": "Ready", "status": "True"}]), "1/2", "Running", "0"),
    ("completed but one running, not ready", pod(
        [terminated("Completed", 0, "a"), running("b")], containers=("a", "b")),
     "1/2", "NotReady", "0"),
    ("restarts without a time", pod([running(restarts=2)]), "1/1", "Running", "2"),
    ("restarts summed, latest time", pod(
        [running("a", restarts=1, last_finished=T_2D), running("b", restarts=2,
                                                             last_finished=T_5M)],
        containers=("a", "b")), "2/2", "Running", "3 (5m ago)"),
]


@pytest.mark.parametrize("name,obj,ready,status,restarts", POD_CASES,
                         ids=[c[0] for c in POD_CASES])
def test_pod_status(name, obj, ready, status, restarts):
    cells = row_cells(R("pods"), obj, NOW)
    assert cells[1:4] == [ready, status, restarts]
    assert pod_status_reason(obj) == status


def test_pod_wide_cells():
    p = pod([running()], nodeName="n1", readinessGates=[{"conditionType": "g1"},
                                                       {"conditionType": "g2"}],
            conditions=[{"type": "g1", "status": "True"}, {"type": "g2", "status": "False"}])
    p["status"]["podIPs"] = [{"ip": "10.0.0.6"}]
    assert row_cells(R("pods"), p, NOW) == ["p", "1/1", "Running", "0", "2d", "10.0.0.6", "n1",
                                            "<none>", "1/2"]
    bare = pod(phase="Pending")
    assert row_cells(R("pods"), bare, NOW)[5:] == ["<none>", "<none>", "<none>", "<none>"]


def test_pod_columns():
    cols = column_definitions(R("pods"))
    assert [(c["name"], c["priority"]) for c in cols] == [
        ("Name", 0), ("Ready", 0), ("Status", 0), ("Restarts", 0), ("Age", 0), ("IP", 1),
        ("Node", 1), ("Nominated Node", 1), ("Readiness Gates", 1)]
    assert cols[0]["format"] == "name" and cols[1]["format"] == ""
    assert all(c["type"] == "string" for c in cols)
    assert cols[5]["description"] == ("podIP address allocated to the pod. Routable at least "
                                      "within the cluster. Empty if not yet allocated.")
    assert set(cols[0]) == {"name", "type", "format", "description", "priority"}


COLUMN_NAMES = {
    "namespaces": ["Name", "Status", "Age"],
    "services": ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age", "Selector"],
    "endpoints": ["Name", "Endpoints", "Age"],
    "events": ["Last Seen", "Type", "Reason", "Object", "Subobject", "Source", "Message",
               "First Seen", "Count", "Name"],
    "nodes": ["Name", "Status", "Roles", "Age", "Version", "Internal-IP", "External-IP",
              "OS-Image", "Kernel-Version", "Container-Runtime"],
    "persistentvolumes": ["Name", "Capacity", "Access Modes", "Reclaim Policy", "Status", "Claim",
                          "StorageClass", "VolumeAttributesClass", "Reason", "Age", "VolumeMode"],
    "persistentvolumeclaims": ["Name", "Status", "Volume", "Capacity", "Access Modes",
                               "StorageClass", "VolumeAttributesClass", "Age", "VolumeMode"],
    "configmaps": ["Name", "Data", "Age"],
    "secrets": ["Name", "Type", "Data", "Age"],
    "serviceaccounts": ["Name", "Secrets", "Age"],
    "statefulsets.apps": ["Name", "Ready", "Age", "Containers", "Images"],
    "controllerrevisions.apps": ["Name", "Controller", "Revision", "Age"],
    "storageclasses.storage.k8s.io": ["Name", "Provisioner", "ReclaimPolicy", "VolumeBindingMode",
                                      "AllowVolumeExpansion", "Age"],
    "endpointslices.discovery.k8s.io": ["Name", "AddressType", "Ports", "Endpoints", "Age"],
    "leases.coordination.k8s.io": ["Name", "Holder", "Age"],
}


@pytest.mark.parametrize("qualified,names", COLUMN_NAMES.items())
def test_column_names(qualified, names):
    assert [c["name"] for c in column_definitions(R(qualified))] == names


def test_every_served_kind_has_a_printer_matching_its_columns():
    samples = {r.qualified: SAMPLES.get(r.qualified, {"metadata": meta()}) for r in
               registry.RESOURCES}
    for r in registry.RESOURCES:
        cols = column_definitions(r)
        assert cols[0]["name"] in ("Name", "Last Seen")
        assert len(row_cells(r, samples[r.qualified], NOW)) == len(cols), r.qualified


SVC = {"metadata": meta("web"),
       "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                "ports": [{"port": 80, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}],
                "selector": {"app": "web", "tier": "fe"}}}
HEADLESS = {"metadata": meta("db"), "spec": {"type": "ClusterIP", "clusterIP": "None",
                                             "clusterIPs": ["None"]}}
NODEPORT = {"metadata": meta("np"), "spec": {"type": "NodePort", "clusterIPs": ["10.96.0.11"],
                                             "externalIPs": ["1.2.3.4"],
                                             "ports": [{"port": 80, "nodePort": 30080,
                                                        "protocol": "TCP"}]}}
LB = {"metadata": meta("lb"), "spec": {"type": "LoadBalancer", "clusterIPs": ["10.96.0.12"],
                                       "ports": [{"port": 443, "protocol": "TCP"}]},
      "status": {"loadBalancer": {}}}
EXTNAME = {"metadata": meta("ext"), "spec": {"type": "ExternalName",
                                             "externalName": "db.example.com"}}

EP = {"metadata": meta("web"), "subsets": [
    {"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}],
     "ports": [{"port": 80}, {"port": 443}]}]}
EP_V6 = {"metadata": meta("v6"), "subsets": [{"addresses": [{"ip": "fd00::1"}],
                                              "ports": [{"port": 80}]}]}
EP_HEADLESS = {"metadata": meta("h"), "subsets": [{"addresses": [{"ip": "10.0.0.3"}]}]}

EVENT = {"metadata": meta("web.17", created=T_5M),
         "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default",
                            "fieldPath": "spec.containers{app}"},
         "reason": "Pulled", "message": "  Successfully pulled image\n", "type": "Normal",
         "source": {"component": "kubelet", "host": "n1"}, "firstTimestamp": T_2D,
         "lastTimestamp": T_5M, "count": 3}
EVENT_NEW = {"metadata": meta("pvc.1", created=T_5M),
             "regarding": {"kind": "PersistentVolumeClaim", "name": "data-db-0"},
             "note": "waiting for first consumer", "reason": "WaitForFirstConsumer",
             "type": "Normal", "eventTime": "2024-05-01T11:55:00.000000Z",
             "reportingController": "persistentvolume-controller", "reportingInstance": "k1s"}

NODE = {"metadata": {**meta("n1", ns=None), "labels": {
            "node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "worker"}},
        "spec": {"unschedulable": True},
        "status": {"conditions": [{"type": "MemoryPressure", "status": "False"},
                                  {"type": "Ready", "status": "True"}],
                   "addresses": [{"type": "InternalIP", "address": "192.168.1.5"},
                                 {"type": "Hostname", "address": "n1"}],
                   "nodeInfo": {"kubeletVersion": "v1.32.4", "osImage": "Debian 12",
                                "kernelVersion": "6.1.0", "containerRuntimeVersion": ""}}}

PV = {"metadata": meta("pv-1", ns=None),
      "spec": {"capacity": {"storage": "1024Mi"}, "accessModes": ["ReadWriteMany",
                                                                  "ReadWriteOnce"],
               "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "local",
               "claimRef": {"namespace": "default", "name": "data-db-0"},
               "volumeMode": "Filesystem"},
      "status": {"phase": "Bound"}}
PVC_BOUND = {"metadata": meta("data-db-0"),
             "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "local",
                      "volumeName": "pv-1", "resources": {"requests": {"storage": "1Gi"}},
                      "volumeMode": "Filesystem"},
             "status": {"phase": "Bound", "accessModes": ["ReadWriteOnce"],
                        "capacity": {"storage": "1024Mi"}}}
PVC_PENDING = {"metadata": {**meta("data-db-1"), "annotations": {
                   "volume.beta.kubernetes.io/storage-class": "old"}},
               "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "local",
                        "resources": {"requests": {"storage": "1Gi"}}},
               "status": {"phase": "Pending"}}

STS = {"metadata": meta("db"), "spec": {"replicas": 3, "template": {"spec": {"containers": [
    {"name": "db", "image": "postgres:16"}, {"name": "exporter", "image": "exp:1"}]}}},
    "status": {"readyReplicas": 2}}
CR = {"metadata": {**meta("db-7d9f"), "ownerReferences": [
    {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db", "uid": "u",
     "controller": True}]}, "revision": 2, "data": {}}
SC = {"metadata": {**meta("local", ns=None), "annotations": {
    "storageclass.kubernetes.io/is-default-class": "true"}},
    "provisioner": "k1s.io/local", "volumeBindingMode": "WaitForFirstConsumer"}
SLICE = {"metadata": meta("web-abc"), "addressType": "IPv4",
         "ports": [{"name": "http", "port": 80}, {"name": "x"}, {}, {"port": 9}],
         "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2", "10.0.0.3",
                                                                   "10.0.0.4"]}]}
LEASE = {"metadata": meta("n1", ns="kube-node-lease"), "spec": {"holderIdentity": "n1"}}

SAMPLES = {"pods": pod([running()]), "services": SVC, "endpoints": EP, "events": EVENT,
           "nodes": NODE, "persistentvolumes": PV, "persistentvolumeclaims": PVC_BOUND,
           "statefulsets.apps": STS, "controllerrevisions.apps": CR,
           "storageclasses.storage.k8s.io": SC, "endpointslices.discovery.k8s.io": SLICE,
           "leases.coordination.k8s.io": LEASE}

CELLS = [
    ("namespaces", {"metadata": meta("dev", ns=None), "status": {"phase": "Active"}},
     ["dev", "Active", "2d"]),
    ("namespaces", {"metadata": {**meta("old", ns=None), "deletionTimestamp": T_5M},
                    "status": {"phase": "Terminating"}}, ["old", "Terminating", "2d"]),
    ("services", SVC, ["web", "ClusterIP", "10.96.0.10", "<none>", "80/TCP,53/UDP", "2d",
                       "app=web,tier=fe"]),
    ("services", HEADLESS, ["db", "ClusterIP", "None", "<none>", "<none>", "2d", "<none>"]),
    ("services", NODEPORT, ["np", "NodePort", "10.96.0.11", "1.2.3.4", "80:30080/TCP", "2d",
                            "<none>"]),
    ("services", LB, ["lb", "LoadBalancer", "10.96.0.12", "<pending>", "443/TCP", "2d",
                      "<none>"]),
    ("services", EXTNAME, ["ext", "ExternalName", "<none>", "db.example.com", "<none>", "2d",
                           "<none>"]),
    ("endpoints", EP, ["web", "10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 1 more...", "2d"]),
    ("endpoints", EP_V6, ["v6", "[fd00::1]:80", "2d"]),
    ("endpoints", EP_HEADLESS, ["h", "10.0.0.3", "2d"]),
    ("endpoints", {"metadata": meta("none")}, ["none", "<none>", "2d"]),
    ("events", EVENT, ["5m", "Normal", "Pulled", "pod/web", "spec.containers{app}",
                       "kubelet, n1", "Successfully pulled image", "2d", 3, "web.17"]),
    ("events", EVENT_NEW, ["5m", "Normal", "WaitForFirstConsumer",
                           "persistentvolumeclaim/data-db-0", "",
                           "persistentvolume-controller, k1s", "waiting for first consumer",
                           "5m", 1, "pvc.1"]),
    ("events.events.k8s.io", EVENT_NEW, ["5m", "Normal", "WaitForFirstConsumer",
                                         "persistentvolumeclaim/data-db-0", "",
                                         "persistentvolume-controller, k1s",
                                         "waiting for first consumer", "5m", 1, "pvc.1"]),
    ("events", {**EVENT, "series": {"count": 9, "lastObservedTime": "2024-05-01T11:59:00.000000Z"}},
     ["60s", "Normal", "Pulled", "pod/web", "spec.containers{app}", "kubelet, n1",
      "Successfully pulled image", "2d", 9, "web.17"]),
    ("nodes", NODE, ["n1", "Ready,SchedulingDisabled", "control-plane,worker", "2d", "v1.32.4",
                     "192.168.1.5", "<none>", "Debian 12", "6.1.0", "<unknown>"]),
    ("nodes", {"metadata": meta("n2", ns=None), "status": {}},
     ["n2", "Unknown", "<none>", "2d", "", "<none>", "<none>", "<unknown>", "<unknown>",
      "<unknown>"]),
    ("persistentvolumes", PV, ["pv-1", "1Gi", "RWO,RWX", "Retain", "Bound", "default/data-db-0",
                               "local", "<unset>", "", "2d", "Filesystem"]),
    ("persistentvolumes", {"metadata": {**meta("pv-2", ns=None), "deletionTimestamp": T_5M},
                           "spec": {"capacity": {"storage": "5Gi"},
                                    "accessModes": ["ReadWriteOncePod"],
                                    "persistentVolumeReclaimPolicy": "Delete",
                                    "volumeAttributesClassName": "gold"},
                           "status": {"phase": "Released", "reason": "Failed"}},
     ["pv-2", "5Gi", "RWOP", "Delete", "Terminating", "", "", "gold", "Failed", "2d",
      "<unset>"]),
    ("persistentvolumeclaims", PVC_BOUND, ["data-db-0", "Bound", "pv-1", "1Gi", "RWO", "local",
                                           "<unset>", "2d", "Filesystem"]),
    ("persistentvolumeclaims", PVC_PENDING, ["data-db-1", "Pending", "", "", "", "old",
                                             "<unset>", "2d", "<unset>"]),
    ("configmaps", {"metadata": meta("cfg"), "data": {"a": "1", "b": "2"},
                    "binaryData": {"c": "AA=="}}, ["cfg", 3, "2d"]),
    ("configmaps", {"metadata": meta("empty")}, ["empty", 0, "2d"]),
    ("secrets", {"metadata": meta("s"), "type": "Opaque", "data": {"k": "dg=="}},
     ["s", "Opaque", 1, "2d"]),
    ("serviceaccounts", {"metadata": meta("default"), "secrets": [{"name": "t"}]},
     ["default", 1, "2d"]),
    ("statefulsets.apps", STS, ["db", "2/3", "2d", "db,exporter", "postgres:16,exp:1"]),
    ("statefulsets.apps", {"metadata": meta("new", created=T_5M),
                           "spec": {"replicas": 1, "template": {"spec": {}}}},
     ["new", "0/1", "5m", "", ""]),
    ("controllerrevisions.apps", CR, ["db-7d9f", "statefulset.apps/db", 2, "2d"]),
    ("controllerrevisions.apps", {"metadata": meta("orphan"), "revision": 1},
     ["orphan", "<none>", 1, "2d"]),
    ("storageclasses.storage.k8s.io", SC, ["local (default)", "k1s.io/local", "Delete",
                                           "WaitForFirstConsumer", False, "2d"]),
    ("storageclasses.storage.k8s.io", {"metadata": meta("fast", ns=None),
                                       "provisioner": "p", "reclaimPolicy": "Retain",
                                       "allowVolumeExpansion": True},
     ["fast", "p", "Retain", "Immediate", True, "2d"]),
    ("endpointslices.discovery.k8s.io", SLICE, ["web-abc", "IPv4", "80,x,* + 1 more...",
                                                "10.0.0.1,10.0.0.2,10.0.0.3 + 1 more...",
                                                "2d"]),
    ("endpointslices.discovery.k8s.io", {"metadata": meta("e"), "addressType": "IPv6"},
     ["e", "IPv6", "<unset>", "<unset>", "2d"]),
    ("leases.coordination.k8s.io", LEASE, ["n1", "n1", "2d"]),
    ("leases.coordination.k8s.io", {"metadata": meta("free"), "spec": {}}, ["free", "", "2d"]),
]


@pytest.mark.parametrize("qualified,obj,cells", CELLS, ids=[f"{c[0]}-{i}" for i, c in
                                                            enumerate(CELLS)])
def test_cells(qualified, obj, cells):
    if qualified == "events.events.k8s.io":
        resource = registry.lookup("events.k8s.io", "v1", "events")
    else:
        resource = R(qualified)
    assert row_cells(resource, obj, NOW) == cells


@pytest.mark.parametrize("modes,want", [
    (["ReadWriteOnce"], "RWO"), (["ReadWriteMany", "ReadOnlyMany", "ReadWriteOnce"],
                                 "RWO,ROX,RWX"),
    (["ReadWriteOncePod", "ReadWriteOnce", "ReadWriteOnce"], "RWO,RWOP"), ([], ""), (None, ""),
])
def test_access_modes(modes, want):
    assert access_modes_string(modes) == want


def test_unknown_age():
    obj = {"metadata": {"name": "x"}}
    assert row_cells(R("configmaps"), obj, NOW) == ["x", 0, "<unknown>"]


# build_table -------------------------------------------------------------------------------

def test_table_with_metadata_rows():
    p = pod([running()])
    t = build_table(R("pods"), [p], NOW, resource_version="42")
    assert t["kind"] == "Table" and t["apiVersion"] == "meta.k8s.io/v1"
    assert t["metadata"] == {"resourceVersion": "42"}
    assert [c["name"] for c in t["columnDefinitions"]][:5] == ["Name", "Ready", "Status",
                                                               "Restarts", "Age"]
    row = t["rows"][0]
    assert row["cells"][:3] == ["p", "1/1", "Running"]
    assert row["object"] == {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                             "metadata": p["metadata"]}
    assert "conditions" not in row


def test_table_include_object_and_none():
    p = {**pod([terminated("Completed", 0)], phase="Succeeded"), "kind": "Pod",
         "apiVersion": "v1"}
    full = build_table(R("pods"), [p], NOW, include_object="Object", continue_token="c1")
    assert full["rows"][0]["object"] is p
    assert full["metadata"] == {"continue": "c1"}
    assert full["rows"][0]["conditions"] == [{"type": "Completed", "status": "True",
                                              "reason": "Succeeded",
                                              "message": "The pod has completed successfully."}]
    none = build_table(R("pods"), [p], NOW, include_object="None", with_columns=False)
    assert "object" not in none["rows"][0]
    assert none["columnDefinitions"] is None


def test_empty_table():
    t = build_table(R("statefulsets.apps"), [], NOW, resource_version="1")
    assert t["rows"] == [] and len(t["columnDefinitions"]) == 5


# ages (humantime) --------------------------------------------------------------------------

from k1s.api.humantime import human_duration, parse_rfc3339 as _parse, rfc3339, rfc3339_micro  # noqa: E402

DAY, HOUR = 86400, 3600


@pytest.mark.parametrize("seconds,want", [
    (-3, "<invalid>"), (-1.5, "0s"), (0, "0s"), (59, "59s"), (119, "119s"), (120, "2m"),
    (330, "5m30s"), (599, "9m59s"), (600, "10m"), (605, "10m"), (10799, "179m"),
    (3 * HOUR, "3h"), (3 * HOUR + 60, "3h1m"), (8 * HOUR - 1, "7h59m"), (8 * HOUR, "8h"),
    (48 * HOUR - 1, "47h"), (2 * DAY, "2d"), (7 * DAY + HOUR, "7d1h"), (8 * DAY, "8d"),
    (729 * DAY, "729d"), (730 * DAY, "2y"), (731 * DAY, "2y1d"), (8 * 365 * DAY, "8y"),
])
def test_human_duration(seconds, want):
    assert human_duration(seconds) == want


def test_rfc3339_round_trip():
    assert rfc3339(0) == "1970-01-01T00:00:00Z"
    assert rfc3339(1.9) == "1970-01-01T00:00:01Z"
    assert rfc3339_micro(1.5) == "1970-01-01T00:00:01.500000Z"
    assert _parse("2024-05-01T12:00:00+02:00") == _parse("2024-05-01T10:00:00Z")
    assert _parse(rfc3339(NOW)) == NOW
    with pytest.raises(ValueError):
        _parse("yesterday")
