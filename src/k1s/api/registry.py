"""The kind registry: every resource k1s serves, with its group, version, scope and names.

This is the one table the API server, discovery, OpenAPI, kubectl Tables and the client library
read to know what exists. A resource is identified by (group, version, plural); its storage key
prefix follows etcd's Kubernetes layout (`/registry/<prefix>/<namespace>/<name>`), including
upstream's historical quirks (nodes live under `minions`, services under `services/specs`), so
an etcd backend shared with upstream tooling reads the same keys.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Resource:
    group: str                      # "" for the core group
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    # subresources served beside the main resource ("status", "scale", "binding", ...)
    subresources: tuple[str, ...] = ()
    # key prefix under /registry (defaults to the plural)
    storage_prefix: str = ""
    # verbs discovery advertises for the main resource
    verbs: tuple[str, ...] = ("create", "delete", "deletecollection", "get", "list", "patch",
                              "update", "watch")
    # resources sharing storage with another (events.k8s.io/v1 Event is stored as core v1)
    stored_as: tuple[str, str] | None = None  # (group, plural) of the storage owner
    # upstream propagation default when a DELETE names no policy
    default_propagation: str = "Background"

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def api_version(self) -> str:
        return self.group_version

    @property
    def qualified(self) -> str:
        """`pods`, `statefulsets.apps`: the name upstream uses in error messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def key_prefix(self) -> str:
        return "/registry/" + (self.storage_prefix or self.plural) + "/"

    def key(self, namespace: str | None, name: str) -> str:
        if self.namespaced:
            return f"{self.key_prefix}{namespace}/{name}"
        return f"{self.key_prefix}{name}"

    def list_prefix(self, namespace: str | None) -> str:
        if self.namespaced and namespace:
            return f"{self.key_prefix}{namespace}/"
        return self.key_prefix

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources


_ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")

RESOURCES: tuple[Resource, ...] = (
    # core/v1 -------------------------------------------------------------------------------
    Resource("", "v1", "Namespace", "namespaces", "namespace", False, ("ns",),
             subresources=("status", "finalize"),
             verbs=("create", "delete", "get", "list", "patch", "update", "watch")),
    Resource("", "v1", "Pod", "pods", "pod", True, ("po",), ("all",),
             # exec, attach, portforward and log are relayed to the node's stream server
             subresources=("status", "binding", "exec", "attach", "portforward", "log")),
    Resource("", "v1", "Service", "services", "service", True, ("svc",), ("all",),
             subresources=("status",), storage_prefix="services/specs",
             verbs=("create", "delete", "deletecollection", "get", "list", "patch", "update",
                    "watch")),
    Resource("", "v1", "Endpoints", "endpoints", "endpoints", True, ("ep",),
             storage_prefix="services/endpoints"),
    Resource("", "v1", "Event", "events", "event", True, ("ev",)),
    Resource("", "v1", "Node", "nodes", "node", False, ("no",), subresources=("status",),
             storage_prefix="minions"),
    Resource("", "v1", "PersistentVolume", "persistentvolumes", "persistentvolume", False,
             ("pv",), subresources=("status",)),
    Resource("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims",
             "persistentvolumeclaim", True, ("pvc",), subresources=("status",)),
    Resource("", "v1", "ConfigMap", "configmaps", "configmap", True, ("cm",)),
    Resource("", "v1", "Secret", "secrets", "secret", True),
    Resource("", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", True, ("sa",)),
    # apps/v1 -------------------------------------------------------------------------------
    Resource("apps", "v1", "StatefulSet", "statefulsets", "statefulset", True, ("sts",),
             ("all",), subresources=("status", "scale")),
    Resource("apps", "v1", "ControllerRevision", "controllerrevisions", "controllerrevision",
             True),
    # storage.k8s.io/v1 ---------------------------------------------------------------------
    Resource("storage.k8s.io", "v1", "StorageClass", "storageclasses", "storageclass", False,
             ("sc",)),
    # discovery.k8s.io/v1 -------------------------------------------------------------------
    Resource("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", "endpointslice", True),
    # coordination.k8s.io/v1 ----------------------------------------------------------------
    Resource("coordination.k8s.io", "v1", "Lease", "leases", "lease", True),
    # events.k8s.io/v1: the same objects as core v1 events, seen through another schema ------
    Resource("events.k8s.io", "v1", "Event", "events", "event", True, ("ev",),
             stored_as=("", "events")),
)

# Order of groups in discovery (core first, then as upstream lists them).
GROUP_ORDER: tuple[str, ...] = ("", "apps", "events.k8s.io", "storage.k8s.io",
                                "coordination.k8s.io", "discovery.k8s.io")

_BY_GVR: dict[tuple[str, str, str], Resource] = {(r.group, r.version, r.plural): r
                                                 for r in RESOURCES}
_BY_GVK: dict[tuple[str, str, str], Resource] = {}
for _r in RESOURCES:
    _BY_GVK.setdefault((_r.group, _r.version, _r.kind), _r)


def lookup(group: str, version: str, plural: str) -> Resource | None:
    return _BY_GVR.get((group, version, plural))


def by_kind(group: str, version: str, kind: str) -> Resource | None:
    return _BY_GVK.get((group, version, kind))


def by_api_version(api_version: str, kind: str) -> Resource | None:
    group, _, version = api_version.rpartition("/")
    return _BY_GVK.get((group, version, kind))


def core(plural: str) -> Resource:
    r = _BY_GVR.get(("", "v1", plural))
    if r is None:
        raise KeyError(plural)
    return r


def get(qualified: str) -> Resource:
    """Look a resource up by `plural` (core) or `plural.group`: registry.get('statefulsets.apps')."""
    plural, _, group = qualified.partition(".")
    for r in RESOURCES:
        if r.plural == plural and r.group == group and r.stored_as is None:
            return r
    raise KeyError(qualified)


def group_versions() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in RESOURCES:
        vs = out.setdefault(r.group, [])
        if r.version not in vs:
            vs.append(r.version)
    return out


def storage_resource(r: Resource) -> Resource:
    """The resource whose keys hold r's objects (itself, unless it is an alternate view)."""
    if r.stored_as is None:
        return r
    return get(r.stored_as[1] + ("." + r.stored_as[0] if r.stored_as[0] else ""))


ALL_VERBS = _ALL_VERBS
