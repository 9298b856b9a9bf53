"""Admission: the mutating and validating plugins every write passes after defaulting.

The chain is a list of plugins, each a small class, run in order; a plugin raises a
StatusError to refuse. Upstream's equivalents:

- NamespaceLifecycle: no new content in a namespace that does not exist or is terminating;
  the namespaces default, kube-system and kube-public cannot be deleted.
- ServiceIPs: allocate a ClusterIP from the service CIDR (dynamic ones above the static band;
  headless `None` stays None), keep it on update.
- DefaultStorageClass, StorageObjectInUseProtection: storage (see their classes).
- DefaultTolerationSeconds: a new pod that does not already tolerate the not-ready and
  unreachable NoExecute taints gets 300 s tolerations for them, so a node that goes silent
  evicts its pods after five minutes, not at once.

Plugins read cluster state from the watch cache (in-process, consistent after a sync).
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..api.errors import forbidden, forbidden_error, invalid_error, invalid, not_found_error
from ..api.registry import Resource

if TYPE_CHECKING:
    from .objects import ObjectStore

IMMORTAL_NAMESPACES = ("default", "kube-system", "kube-public")


@dataclass
class Attributes:
    resource: Resource
    operation: str          # CREATE | UPDATE | DELETE
    obj: dict | None        # the new object (None for DELETE)
    old: dict | None        # the stored object (None for CREATE)
    namespace: str | None
    name: str
    subresource: str | None = None
    dry_run: bool = False


class Plugin:
    def admit(self, a: Attributes) -> None:
        """Mutate a.obj in place, or raise StatusError."""


class NamespaceLifecycle(Plugin):
    def __init__(self, objects: "ObjectStore"):
        self.objects = objects

    def admit(self, a: Attributes) -> None:
        r = a.resource
        if r.plural == "namespaces" and r.group == "" and a.operation == "DELETE":
            if a.name in IMMORTAL_NAMESPACES:
                raise forbidden_error(f'namespaces "{a.name}" is forbidden: this namespace may '
                                      f'not be deleted', "namespaces", "", a.name)
            return
        if a.operation != "CREATE" or not r.namespaced or a.namespace is None:
            return
        ns = self.objects.cached("namespaces", None, a.namespace)
        if ns is None:
            raise not_found_error("namespaces", "", a.namespace)
        if (ns.get("metadata") or {}).get("deletionTimestamp") or \
                (ns.get("status") or {}).get("phase") == "Terminating":
            err = forbidden_error(
                f'{r.qualified} "{a.name}" is forbidden: unable to create new content in '
                f'namespace {a.namespace} because it is being terminated',
                r.plural, r.group, a.name)
            # controllers look for this cause to stop retrying in a dying namespace
            err.details["causes"] = [{"reason": "NamespaceTerminating",
                                      "message": f"namespace {a.namespace} is being terminated",
                                      "field": "metadata.namespace"}]
            raise err


PENDING_SECONDS = 30.0      # an allocation admitted but not in the watch cache yet stays taken


class ServiceIPs(Plugin):
    """ClusterIP allocation from the service CIDR; the first address is the API's own service."""

    def __init__(self, objects: "ObjectStore", cidr: str = "10.96.0.0/12"):
        self.objects = objects
        self.net = ipaddress.ip_network(cidr)
        self._pending: dict[str, float] = {}     # handed out, not in the cache yet: since
        self.size = self.net.num_addresses - 2          # network and broadcast excluded
        # upstream's static band (KEP-3070, calculateRangeOffset over the whole range):
        # min(max(16, range/16), 256) low addresses, none for a range under 16, are left to
        # Services that ask for one (kube-dns's 10.96.0.10, say); dynamic allocation takes the
        # upper band first and the low band only once the upper one is full
        total = self.net.num_addresses
        self.band = 0 if total < 16 else min(self.size, min(max(16, total // 16), 256))
        self._next = self.band + 1

    def _used(self) -> set[str]:
        now = time.monotonic()
        self._pending = {ip: t for ip, t in self._pending.items() if now - t < PENDING_SECONDS}
        used = set(self._pending)
        for svc in self.objects.cached_all("services"):
            for ip in (svc.get("spec") or {}).get("clusterIPs") or []:
                used.add(ip)
            ip = (svc.get("spec") or {}).get("clusterIP")
            if ip:
                used.add(ip)
        return used

    def allocate(self, requested: str | None = None) -> str:
        used = self._used()
        if requested:
            if requested in used:
                raise ValueError("provided IP is already allocated")
            # ip_address raises ValueError itself for text that is not an address
            if ipaddress.ip_address(requested) not in self.net:
                raise ValueError(f"provided IP is not in the valid range. The range of valid "
                                 f"IPs is {self.net}")
            return requested
        upper = self.size - self.band
        for i in range(upper):
            off = self.band + 1 + (self._next - self.band - 1 + i) % upper
            ip = str(self.net.network_address + off)
            if ip not in used:
                self._next = off + 1
                return ip
        for off in range(1, self.band + 1):
            ip = str(self.net.network_address + off)
            if ip not in used:
                return ip
        raise ValueError("range is full")

    def release(self, ip: str) -> None:
        self._pending.pop(ip, None)

    def admit(self, a: Attributes) -> None:
        r = a.resource
        if r.plural != "services" or r.group != "" or a.obj is None or a.subresource:
            return
        spec = a.obj.setdefault("spec", {})
        if a.operation == "UPDATE" and a.old is not None:
            ospec = a.old.get("spec") or {}
            # the address is kept; changing it is refused by validation upstream
            if ospec.get("clusterIP") and not spec.get("clusterIP"):
                spec["clusterIP"] = ospec["clusterIP"]
                spec["clusterIPs"] = ospec.get("clusterIPs") or [ospec["clusterIP"]]
            elif ospec.get("clusterIP") and spec.get("clusterIP") != ospec.get("clusterIP"):
                raise invalid_error("Service", "", a.name, [invalid(
                    "spec.clusterIPs[0]", spec.get("clusterIP"),
                    "may not change once set")])
            if not spec.get("clusterIPs") and spec.get("clusterIP"):
                spec["clusterIPs"] = [spec["clusterIP"]]
            return
        if a.operation != "CREATE":
            return
        if spec.get("type") == "ExternalName":
            return
        requested = spec.get("clusterIP") or ((spec.get("clusterIPs") or [None])[0])
        if requested == "None":
            spec["clusterIP"] = "None"
            spec["clusterIPs"] = ["None"]
        else:
            try:
                ip = self.allocate(requested)
            except ValueError as e:
                raise invalid_error("Service", "", a.name, [invalid(
                    "spec.clusterIPs", [requested] if requested else [], str(e))])
            if not a.dry_run:
                self._pending[ip] = time.monotonic()
            spec["clusterIP"] = ip
            spec["clusterIPs"] = [ip]
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")


NODE_PORT_RANGE = (30000, 32767)      # kube-apiserver's --service-node-port-range default
NODE_PORT_TYPES = ("NodePort", "LoadBalancer")
TYPE_DEPENDENT_FIELDS = ("externalTrafficPolicy", "healthCheckNodePort",
                         "allocateLoadBalancerNodePorts", "loadBalancerClass")


class ServiceNodePorts(Plugin):
    """nodePort allocation for NodePort and LoadBalancer Services, as upstream's service
    registry: an asked-for port must be in the range and free; the others get a free one (a
    Service keeps its ports across updates that do not name them); a Service changed to
    another type drops the ports it had, and a type without node ports may not ask for one.
    Ports just handed out stay reserved for a while, until the watch cache shows them."""

    def __init__(self, objects: "ObjectStore", low: int = NODE_PORT_RANGE[0],
                 high: int = NODE_PORT_RANGE[1]):
        self.objects = objects
        self.low, self.high = low, high
        self._pending: dict[int, float] = {}          # port -> when it was handed out
        self._next = low

    def _used(self, skip_uid: str | None) -> set[int]:
        now = time.monotonic()
        self._pending = {p: t for p, t in self._pending.items() if now - t < PENDING_SECONDS}
        used = set(self._pending)
        for svc in self.objects.cached_all("services"):
            if skip_uid and (svc.get("metadata") or {}).get("uid") == skip_uid:
                continue
            for port in (svc.get("spec") or {}).get("ports") or ():
                if isinstance(port, dict) and isinstance(port.get("nodePort"), int):
                    used.add(port["nodePort"])
        return used

    def _free(self, used: set[int]) -> int | None:
        size = self.high - self.low + 1
        for i in range(size):
            port = self.low + (self._next - self.low + i) % size
            if port not in used:
                self._next = port + 1
                return port
        return None

    def admit(self, a: Attributes) -> None:
        r = a.resource
        if r.plural != "services" or r.group != "" or a.obj is None or a.subresource or \
                a.operation not in ("CREATE", "UPDATE"):
            return
        spec = a.obj.get("spec")
        if not isinstance(spec, dict) or not isinstance(spec.get("ports"), list):
            return
        ports = [p for p in spec["ports"] if isinstance(p, dict)]
        old_spec = ((a.old or {}).get("spec") or {}) if a.operation == "UPDATE" else {}
        old_ports = [p for p in old_spec.get("ports") or () if isinstance(p, dict)]
        if spec.get("type") not in NODE_PORT_TYPES:
            # another type: what only the old type had goes with it (upstream's
            # dropTypeDependentFields: what the update left as it was), and asking for a node
            # port here is an error
            if old_spec.get("type") in NODE_PORT_TYPES:
                for f in TYPE_DEPENDENT_FIELDS:
                    if f in spec and spec.get(f) == old_spec.get(f):
                        spec.pop(f)
            had = {p.get("nodePort") for p in old_ports}
            for port in had:
                self._pending.pop(port, None)          # free again at once
            errs = []
            for i, p in enumerate(ports):
                if p.get("nodePort") in had:
                    p.pop("nodePort", None)
                elif p.get("nodePort"):
                    errs.append(forbidden(f"spec.ports[{i}].nodePort",
                                          f"may not be used when `type` is "
                                          f"'{spec.get('type') or 'ClusterIP'}'"))
            if errs:
                raise invalid_error("Service", "", a.name, errs)
            return
        uid = ((a.old or {}).get("metadata") or {}).get("uid") if a.operation == "UPDATE" \
            else None
        used = self._used(uid)
        kept = {(p.get("port"), p.get("protocol") or "TCP"): p.get("nodePort")
                for p in old_ports if p.get("nodePort")}
        errs, taken = [], []
        for i, p in enumerate(ports):
            want = p.get("nodePort")
            if not want:
                want = kept.get((p.get("port"), p.get("protocol") or "TCP"))
                if want:
                    p["nodePort"] = want               # an update keeps its own port
                    used.add(want)
                    continue
                port = self._free(used)
                if port is None:
                    errs.append(invalid(f"spec.ports[{i}].nodePort", 0, "range is full"))
                    continue
                p["nodePort"] = port
                used.add(port)
                taken.append(port)
                continue
            if not isinstance(want, int) or not self.low <= want <= self.high:
                errs.append(invalid(f"spec.ports[{i}].nodePort", want,
                                    f"provided port is not in the valid range. The range of "
                                    f"valid ports is {self.low}-{self.high}"))
            elif want in used and want not in kept.values():
                errs.append(invalid(f"spec.ports[{i}].nodePort", want,
                                    "provided port is already allocated"))
            else:
                used.add(want)
                taken.append(want)
        if errs:
            raise invalid_error("Service", "", a.name, errs)
        if not a.dry_run:
            now = time.monotonic()
            self._pending.update({port: now for port in taken})


DEFAULT_CLASS_ANNOTATIONS = ("storageclass.kubernetes.io/is-default-class",
                             "storageclass.beta.kubernetes.io/is-default-class")
PVC_PROTECTION = "kubernetes.io/pvc-protection"
PV_PROTECTION = "kubernetes.io/pv-protection"


def is_default_class(sc: dict) -> bool:
    ann = (sc.get("metadata") or {}).get("annotations") or {}
    return any(ann.get(k) == "true" for k in DEFAULT_CLASS_ANNOTATIONS)


def default_storage_class(classes: list[dict]) -> dict | None:
    """The default class: of several marked default, the newest (then the first by name)."""
    defaults = [sc for sc in classes if is_default_class(sc)]
    if not defaults:
        return None
    newest = max(sc["metadata"].get("creationTimestamp") or "" for sc in defaults)
    return min((sc for sc in defaults if (sc["metadata"].get("creationTimestamp") or "")
                == newest), key=lambda sc: sc["metadata"]["name"])


class DefaultStorageClass(Plugin):
    """A claim created with no storageClassName gets the default class (nil and "" differ:
    an explicit "" asks for no class and is left alone)."""

    def __init__(self, objects: "ObjectStore"):
        self.objects = objects

    def admit(self, a: Attributes) -> None:
        r = a.resource
        if a.operation != "CREATE" or r.group != "" or r.plural != "persistentvolumeclaims" \
                or a.obj is None:
            return
        spec = a.obj.setdefault("spec", {})
        ann = (a.obj.get("metadata") or {}).get("annotations") or {}
        if spec.get("storageClassName") is not None or \
                "volume.beta.kubernetes.io/storage-class" in ann:
            return
        sc = default_storage_class(self.objects.cached_all("storageclasses", "storage.k8s.io"))
        if sc is not None:
            spec["storageClassName"] = sc["metadata"]["name"]


class StorageObjectInUseProtection(Plugin):
    """New claims and volumes get the protection finalizers their controllers later remove."""

    def admit(self, a: Attributes) -> None:
        r = a.resource
        if a.operation != "CREATE" or r.group != "" or a.obj is None:
            return
        finalizer = {"persistentvolumeclaims": PVC_PROTECTION,
                     "persistentvolumes": PV_PROTECTION}.get(r.plural)
        if finalizer is None:
            return
        md = a.obj.setdefault("metadata", {})
        fins = list(md.get("finalizers") or [])
        if finalizer not in fins:
            fins.append(finalizer)
        md["finalizers"] = fins


TAINT_NOT_READY = "node.kubernetes.io/not-ready"
TAINT_UNREACHABLE = "node.kubernetes.io/unreachable"
DEFAULT_TOLERATION_SECONDS = 300     # upstream --default-not-ready/unreachable-toleration-seconds


class DefaultTolerationSeconds(Plugin):
    def __init__(self, seconds: int = DEFAULT_TOLERATION_SECONDS):
        self.seconds = seconds

    def admit(self, a: Attributes) -> None:
        r = a.resource
        if (a.operation != "CREATE" or r.plural != "pods" or r.group != "" or a.subresource
                or not isinstance(a.obj, dict)):
            return
        spec = a.obj.get("spec")
        if not isinstance(spec, dict):
            return
        tolerations = spec.get("tolerations") or []
        if not isinstance(tolerations, list):
            return
        added = []
        for key in (TAINT_NOT_READY, TAINT_UNREACHABLE):
            # an empty key (with Exists) or an empty effect tolerates it already
            if not any(isinstance(t, dict) and t.get("key", "") in (key, "")
                       and t.get("effect", "") in ("NoExecute", "") for t in tolerations):
                added.append({"key": key, "operator": "Exists", "effect": "NoExecute",
                              "tolerationSeconds": self.seconds})
        if added:
            spec["tolerations"] = list(tolerations) + added


class Chain:
    def __init__(self, plugins: list[Plugin]):
        self.plugins = plugins

    def admit(self, a: Attributes) -> None:
        for p in self.plugins:
            p.admit(a)

    def add(self, plugin: Plugin) -> None:
        self.plugins.append(plugin)
