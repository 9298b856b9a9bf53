"""Defaulting: the values kube-apiserver fills in when it decodes a v1 object.

`apply_defaults(resource, obj)` mutates a decoded JSON object in place with upstream's
SetDefaults_* rules for its kind (core/v1, apps/v1, storage.k8s.io/v1, discovery.k8s.io/v1):
pods get restartPolicy Always, dnsPolicy ClusterFirst, terminationGracePeriodSeconds 30, ...;
containers get their termination message settings and an image pull policy that depends on the
image tag; StatefulSets get replicas 1, OrderedReady, RollingUpdate with partition 0, and the
pod defaults inside their template; PVs and PVCs get volumeMode Filesystem and phase Pending.
Defaulting runs on every decode (create, update, patch results), so it only fills what is
missing and never overwrites a value the client sent.

Defaults that upstream applies in admission or in a registry strategy (service account, QoS
class, cluster IP allocation, namespace finalizers on create) are not here, except where noted.
"""

from __future__ import annotations

import base64
from typing import Any, Callable

DEFAULT_MODE = 420  # 0644, the mode of projected files
TERMINATION_MESSAGE_PATH = "/dev/termination-log"


def _dict(parent: dict, key: str) -> dict:
    """parent[key] as a dict, creating it when absent (but leaving a non-dict alone)."""
    v = parent.get(key)
    if v is None:
        v = parent[key] = {}
    return v if isinstance(v, dict) else {}


def _dicts(v: Any) -> list[dict]:
    return [x for x in v if isinstance(x, dict)] if isinstance(v, list) else []


def _get(obj: dict, key: str) -> dict:
    v = obj.get(key)
    return v if isinstance(v, dict) else {}


# Pods ------------------------------------------------------------------------------------
def pull_policy_for(image: str) -> str:
    """Always for `:latest` or an untagged image (no digest), else IfNotPresent."""
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    tag = last.partition(":")[2] if ":" in last else ""
    return "Always" if tag in ("", "latest") else "IfNotPresent"


def _http_get(h: dict) -> None:
    h.setdefault("path", "/")
    h.setdefault("scheme", "HTTP")


def _probe(p: Any) -> None:
    if not isinstance(p, dict):
        return
    p.setdefault("timeoutSeconds", 1)
    p.setdefault("periodSeconds", 10)
    p.setdefault("successThreshold", 1)
    p.setdefault("failureThreshold", 3)
    if isinstance(p.get("httpGet"), dict):
        _http_get(p["httpGet"])


def _container(c: dict) -> None:
    if "imagePullPolicy" not in c or not c.get("imagePullPolicy"):
        c["imagePullPolicy"] = pull_policy_for(c.get("image") or "")
    c.setdefault("terminationMessagePath", TERMINATION_MESSAGE_PATH)
    c.setdefault("terminationMessagePolicy", "File")
    for port in _dicts(c.get("ports")):
        port.setdefault("protocol", "TCP")
    for env in _dicts(c.get("env")):
        field_ref = _get(_get(env, "valueFrom"), "fieldRef")
        if field_ref:
            field_ref.setdefault("apiVersion", "v1")
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        _probe(c.get(probe))
    lifecycle = _get(c, "lifecycle")
    for hook in ("postStart", "preStop"):
        h = _get(lifecycle, hook)
        if isinstance(h.get("httpGet"), dict):
            _http_get(h["httpGet"])


# Every in-tree volume source; a volume with none of them is an emptyDir.
_VOLUME_SOURCES = ("hostPath", "emptyDir", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo",
                   "secret", "nfs", "iscsi", "glusterfs", "persistentVolumeClaim", "rbd",
                   "flexVolume", "cinder", "cephfs", "flocker", "downwardAPI", "fc", "azureFile",
                   "configMap", "vsphereVolume", "quobyte", "azureDisk", "photonPersistentDisk",
                   "projected", "portworxVolume", "scaleIO", "storageos", "csi", "ephemeral",
                   "image")


def _rbd(src: dict) -> None:
    src.setdefault("pool", "rbd")
    src.setdefault("user", "admin")
    src.setdefault("keyring", "/etc/ceph/keyring")


def _common_sources(holder: dict) -> None:
    """Source defaults shared by pod volumes and PV specs."""
    if isinstance(holder.get("hostPath"), dict):
        holder["hostPath"].setdefault("type", "")
    if isinstance(holder.get("rbd"), dict):
        _rbd(holder["rbd"])
    if isinstance(holder.get("iscsi"), dict):
        holder["iscsi"].setdefault("iscsiInterface", "default")
    if isinstance(holder.get("azureDisk"), dict):
        ad = holder["azureDisk"]
        ad.setdefault("cachingMode", "ReadWrite")
        ad.setdefault("fsType", "ext4")
        ad.setdefault("readOnly", False)
        ad.setdefault("kind", "Shared")
    if isinstance(holder.get("scaleIO"), dict):
        holder["scaleIO"].setdefault("storageMode", "ThinProvisioned")
        holder["scaleIO"].setdefault("fsType", "xfs")


def _volume(v: dict) -> None:
    if all(v.get(k) is None for k in _VOLUME_SOURCES):
        v["emptyDir"] = {}
    _common_sources(v)
    for k in ("secret", "configMap", "downwardAPI", "projected"):
        if isinstance(v.get(k), dict):
            v[k].setdefault("defaultMode", DEFAULT_MODE)
    for item in _dicts(_get(v, "downwardAPI").get("items")):
        if isinstance(item.get("fieldRef"), dict):
            item["fieldRef"].setdefault("apiVersion", "v1")
    for src in _dicts(_get(v, "projected").get("sources")):
        for item in _dicts(_get(src, "downwardAPI").get("items")):
            if isinstance(item.get("fieldRef"), dict):
                item["fieldRef"].setdefault("apiVersion", "v1")
        sat = _get(src, "serviceAccountToken")
        if sat:
            sat.setdefault("expirationSeconds", 3600)
    eph = _get(_get(v, "ephemeral"), "volumeClaimTemplate")
    if eph:
        _pvc_spec(_dict(eph, "spec"))


def pod_spec(spec: dict) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    if spec.get("securityContext") is None:
        spec["securityContext"] = {}
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("schedulerName", "default-scheduler")
    for field in ("containers", "initContainers", "ephemeralContainers"):
        for c in _dicts(spec.get(field)):
            _container(c)
    for v in _dicts(spec.get("volumes")):
        _volume(v)


def pod(obj: dict) -> None:
    """SetDefaults_Pod: the pod-spec defaults plus three that pod templates do not get."""
    spec = _dict(obj, "spec")
    pod_spec(spec)
    spec.setdefault("enableServiceLinks", True)
    for field in ("containers", "initContainers"):
        for c in _dicts(spec.get(field)):
            # Requests default to limits for resources that have a limit but no request.
            res = _get(c, "resources")
            limits = _get(res, "limits")
            if limits:
                requests = _dict(res, "requests")
                for name, q in limits.items():
                    requests.setdefault(name, q)
            if spec.get("hostNetwork") is True:
                for port in _dicts(c.get("ports")):
                    if not port.get("hostPort"):
                        port["hostPort"] = port.get("containerPort", 0)


def pod_template(tmpl: dict) -> None:
    pod_spec(_dict(tmpl, "spec"))


# Storage ---------------------------------------------------------------------------------
def _pvc_spec(spec: dict) -> None:
    spec.setdefault("volumeMode", "Filesystem")


def persistent_volume_claim(obj: dict) -> None:
    _pvc_spec(_dict(obj, "spec"))
    status = _dict(obj, "status")
    if not status.get("phase"):
        status["phase"] = "Pending"


def persistent_volume(obj: dict) -> None:
    spec = _dict(obj, "spec")
    spec.setdefault("persistentVolumeReclaimPolicy", "Retain")
    spec.setdefault("volumeMode", "Filesystem")
    _common_sources(spec)
    status = _dict(obj, "status")
    if not status.get("phase"):
        status["phase"] = "Pending"


def storage_class(obj: dict) -> None:
    obj.setdefault("reclaimPolicy", "Delete")
    obj.setdefault("volumeBindingMode", "Immediate")


# apps ------------------------------------------------------------------------------------
def stateful_set(obj: dict) -> None:
    spec = _dict(obj, "spec")
    spec.setdefault("replicas", 1)
    spec.setdefault("podManagementPolicy", "OrderedReady")
    strategy = _dict(spec, "updateStrategy")
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
    if strategy.get("type") == "RollingUpdate":
        ru = _dict(strategy, "rollingUpdate")
        ru.setdefault("partition", 0)
    spec.setdefault("revisionHistoryLimit", 10)
    retention = _dict(spec, "persistentVolumeClaimRetentionPolicy")
    if not retention.get("whenDeleted"):
        retention["whenDeleted"] = "Retain"
    if not retention.get("whenScaled"):
        retention["whenScaled"] = "Retain"
    pod_template(_dict(spec, "template"))
    for pvc in _dicts(spec.get("volumeClaimTemplates")):
        persistent_volume_claim(pvc)


# Other core kinds --------------------------------------------------------------------------
def service(obj: dict) -> None:
    spec = _dict(obj, "spec")
    if not spec.get("sessionAffinity"):
        spec["sessionAffinity"] = "None"
    if not spec.get("type"):
        spec["type"] = "ClusterIP"
    for port in _dicts(spec.get("ports")):
        port.setdefault("protocol", "TCP")
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port")
    stype = spec["type"]
    if stype in ("NodePort", "LoadBalancer") and not spec.get("externalTrafficPolicy"):
        spec["externalTrafficPolicy"] = "Cluster"
    if spec.get("internalTrafficPolicy") is None and stype in ("ClusterIP", "NodePort",
                                                               "LoadBalancer"):
        spec["internalTrafficPolicy"] = "Cluster"
    if stype == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        spec["allocateLoadBalancerNodePorts"] = True
    if spec.get("sessionAffinity") == "ClientIP":
        cfg = _dict(_dict(spec, "sessionAffinityConfig"), "clientIP")
        cfg.setdefault("timeoutSeconds", 10800)


def namespace(obj: dict) -> None:
    meta = _dict(obj, "metadata")
    name = meta.get("name")
    if isinstance(name, str) and name:
        # NamespaceDefaultLabelName: the name is always mirrored into this label.
        labels = _dict(meta, "labels")
        labels["kubernetes.io/metadata.name"] = name
    spec = _dict(obj, "spec")
    if "finalizers" not in spec:
        spec["finalizers"] = ["kubernetes"]
    status = _dict(obj, "status")
    if not status.get("phase"):
        status["phase"] = "Active"


def secret(obj: dict) -> None:
    if not obj.get("type"):
        obj["type"] = "Opaque"
    # stringData is write-only: it is merged into data (base64) when decoding.
    sd = obj.pop("stringData", None)
    if isinstance(sd, dict) and sd:
        data = _dict(obj, "data")
        for k, v in sd.items():
            if isinstance(v, str):
                data[k] = base64.b64encode(v.encode()).decode()


def node(obj: dict) -> None:
    status = obj.get("status")
    if isinstance(status, dict) and isinstance(status.get("capacity"), dict) and \
            status.get("allocatable") is None:
        status["allocatable"] = dict(status["capacity"])


def endpoints(obj: dict) -> None:
    for subset in _dicts(obj.get("subsets")):
        for port in _dicts(subset.get("ports")):
            port.setdefault("protocol", "TCP")


def endpoint_slice(obj: dict) -> None:
    for port in _dicts(obj.get("ports")):
        port.setdefault("protocol", "TCP")
        port.setdefault("name", "")


_DEFAULTERS: dict[tuple[str, str], Callable[[dict], None]] = {
    ("", "pods"): pod,
    ("", "services"): service,
    ("", "namespaces"): namespace,
    ("", "secrets"): secret,
    ("", "nodes"): node,
    ("", "endpoints"): endpoints,
    ("", "persistentvolumes"): persistent_volume,
    ("", "persistentvolumeclaims"): persistent_volume_claim,
    ("apps", "statefulsets"): stateful_set,
    ("storage.k8s.io", "storageclasses"): storage_class,
    ("discovery.k8s.io", "endpointslices"): endpoint_slice,
}


def apply_defaults(resource: Any, obj: dict) -> None:
    """Fill upstream's v1 defaults into `obj` (in place) for the kind `resource` serves."""
    if not isinstance(obj, dict):
        return
    fn = _DEFAULTERS.get((resource.group, resource.plural))
    if fn is not None:
        fn(obj)


__all__ = ["apply_defaults", "pull_policy_for", "pod_spec"]
