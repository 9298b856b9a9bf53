"""The cluster DNS data and its answers: pure, no I/O.

`ZoneData` is the index the server answers from. It holds, per Service, a `ServiceView`: what
DNS needs of the Service and of its EndpointSlices (kind, cluster IPs, ports, the endpoints DNS
may publish), plus a reverse index IP -> Services for PTR. It is changed one object at a time
(`set_service`, `set_slice`, `set_namespace`, their deletes), each change rebuilding only the
view of the one Service it touches, so a watch event is reflected at once and a query never
scans the cluster.

`answer(data, qname, qtype)` is the Kubernetes DNS specification 1.0.1 as CoreDNS's kubernetes
plugin serves it (its defaults: `pods insecure`, TTL 5 s, endpoints from EndpointSlices):

- `<svc>.<ns>.svc.<zone>`: A = the cluster IP (ClusterIP Services), or one A per published
  endpoint IP (headless); CNAME = spec.externalName (ExternalName Services).
- `_<port>._<proto>.<svc>.<ns>.svc.<zone>`: SRV per matching port, targeting the Service name
  (ClusterIP) or `<endpoint>.<svc>.<ns>.svc.<zone>` per endpoint (headless); A as above. An SRV
  query on the Service name itself matches every port (CoreDNS: an absent port is a wildcard).
- `<endpoint>.<svc>.<ns>.svc.<zone>`: the endpoint's IP, where <endpoint> is its hostname, or,
  without one, its IP with dashes (`10-244-0-5`), as CoreDNS generates.
- PTR of a cluster IP -> `<svc>.<ns>.svc.<zone>.`; of an endpoint IP ->
  `<endpoint>.<svc>.<ns>.svc.<zone>.` (one per Service publishing it).
- `<a>-<b>-<c>-<d>.<ns>.pod.<zone>`: A read from the name (CoreDNS "pods insecure"), in an
  existing namespace.
- `dns-version.<zone>` TXT "1.0.1"; the apex answers SOA and NS.

A published endpoint is one whose EndpointSlice condition `ready` is not false, or any endpoint
when the Service sets `publishNotReadyAddresses`. Only IPv4 slices are read (k1s clusters are
IPv4): AAAA questions for existing names get an empty NOERROR answer.

Names that do not exist get NXDOMAIN, existing names without the asked type NOERROR with no
answers (NODATA); both carry the zone's SOA in the authority section, TTL 5 s like CoreDNS's.
Names outside the zone are REFUSED: k1s has no upstream resolver and nothing leaves the machine.
Names are matched case-insensitively; answers keep the question's spelling as owner name.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Iterable, NamedTuple

TTL = 5                     # CoreDNS kubernetes plugin `ttl` default
SOA_TTL_CAP = 300           # CoreDNS: SOA TTL = min(ttl, 300)
SCHEMA_VERSION = "1.0.1"    # the Kubernetes DNS specification this implements
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
REVERSE_V4 = "in-addr.arpa"
REVERSE_V6 = "ip6.arpa"


class Record(NamedTuple):
    """One resource record. `value` is a string for A/AAAA/PTR/CNAME/TXT/NS, a tuple
    (priority, weight, port, target) for SRV and (mname, rname, serial, refresh, retry, expire,
    minimum) for SOA. Domain names in values are absolute, with the trailing dot."""
    name: str
    rtype: str
    value: object
    ttl: int = TTL


@dataclass
class Answer:
    rcode: int
    answer: list[Record] = field(default_factory=list)
    authority: list[Record] = field(default_factory=list)
    additional: list[Record] = field(default_factory=list)
    authoritative: bool = True


class Endpoint(NamedTuple):
    label: str          # hostname, or the IP with dashes
    ip: str
    ports: tuple        # ((name, proto, port), ...); (("", "", -1),) when the slice has none


class Port(NamedTuple):
    name: str
    proto: str
    port: int


@dataclass(frozen=True)
class ServiceView:
    """What DNS needs of one Service and its EndpointSlices."""
    namespace: str
    name: str
    kind: str                               # "ClusterIP" | "Headless" | "ExternalName"
    cluster_ips: tuple[str, ...] = ()
    external_name: str = ""
    ports: tuple[Port, ...] = ()
    endpoints: tuple[Endpoint, ...] = ()

    def ips(self) -> set[str]:
        """Every IP this Service answers PTR for."""
        return set(self.cluster_ips) | {e.ip for e in self.endpoints}


# -- building views (pure functions of API objects) ------------------------------------------

def _meta(obj: dict) -> dict:
    return obj.get("metadata") or {}


def _is_ipv4(s: str) -> bool:
    try:
        ipaddress.IPv4Address(s)
        return True
    except ValueError:
        return False


def _is_ip(s: str) -> bool:
    try:
        ipaddress.ip_address(s)
        return True
    except ValueError:
        return False


def generated_label(ip: str) -> str:
    """CoreDNS's name for an endpoint without hostname: its IP with dashes."""
    return ip.replace(".", "-").replace(":", "-")


def service_kind(svc: dict) -> str:
    spec = svc.get("spec") or {}
    if spec.get("type") == "ExternalName":
        return "ExternalName"
    if spec.get("clusterIP") == "None":
        return "Headless"
    return "ClusterIP"


def _port(p: dict) -> Port:
    return Port(str(p.get("name") or "").lower(), str(p.get("protocol") or "TCP").lower(),
                int(p.get("port") if p.get("port") is not None else -1))


def service_view(svc: dict, slices: Iterable[dict]) -> ServiceView:
    """The DNS view of `svc` with the EndpointSlices labelled as its own."""
    meta, spec = _meta(svc), svc.get("spec") or {}
    kind = service_kind(svc)
    ns, name = meta.get("namespace") or "", meta.get("name") or ""
    if kind == "ExternalName":
        return ServiceView(ns, name, kind, external_name=str(spec.get("externalName") or ""))
    ips: tuple[str, ...] = ()
    if kind == "ClusterIP":
        cand = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
        ips = tuple(dict.fromkeys(ip for ip in cand if isinstance(ip, str) and _is_ipv4(ip)))
    ports = tuple(_port(p) for p in spec.get("ports") or () if isinstance(p, dict))
    publish_all = bool(spec.get("publishNotReadyAddresses"))
    seen: dict[tuple[str, str], set] = {}
    for sl in sorted(slices, key=lambda s: _meta(s).get("name") or ""):
        if sl.get("addressType", "IPv4") != "IPv4":
            continue
        sports = tuple(_port(p) for p in sl.get("ports") or () if isinstance(p, dict))
        sports = sports or (Port("", "", -1),)    # CoreDNS's sentinel: A records, no SRV
        for ep in sl.get("endpoints") or ():
            if not isinstance(ep, dict):
                continue
            ready = (ep.get("conditions") or {}).get("ready")
            if ready is False and not publish_all:
                continue
            hostname = str(ep.get("hostname") or "").lower()
            for ip in ep.get("addresses") or ():
                if not isinstance(ip, str) or not _is_ipv4(ip):
                    continue
                key = (hostname or generated_label(ip), ip)
                seen.setdefault(key, set()).update(sports)
    endpoints = tuple(Endpoint(label, ip, tuple(sorted(p)))
                      for (label, ip), p in sorted(seen.items()))
    return ServiceView(ns, name, kind, ips, ports=ports, endpoints=endpoints)


# -- the index ---------------------------------------------------------------------------------

class ZoneData:
    """Services, their EndpointSlices and the namespaces, indexed for answering."""

    def __init__(self, zone: str = "cluster.local", *, dns_ip: str | None = None,
                 serial: int = 1):
        self.zone = zone.lower().strip(".")
        self.dns_ip = dns_ip
        self.serial = serial
        self.namespaces: set[str] = set()
        self._services: dict[tuple[str, str], dict] = {}
        # (ns, service name) -> slice name -> slice; a slice's owner may arrive before it
        self._slices: dict[tuple[str, str], dict[str, dict]] = {}
        self._slice_owner: dict[tuple[str, str], str] = {}     # (ns, slice name) -> service
        self.views: dict[tuple[str, str], ServiceView] = {}
        self._by_ip: dict[str, set[tuple[str, str]]] = {}

    @classmethod
    def build(cls, services: Iterable[dict] = (), slices: Iterable[dict] = (),
              namespaces: Iterable[str] | None = None, **kw) -> "ZoneData":
        """A ZoneData of these objects; namespaces default to those of the objects."""
        data = cls(**kw)
        services, slices = list(services), list(slices)
        if namespaces is None:
            namespaces = {_meta(o).get("namespace") or "" for o in services + slices}
        for ns in namespaces:
            data.set_namespace(ns)
        for s in slices:
            data.set_slice(s)
        for s in services:
            data.set_service(s)
        return data

    # changes ----------------------------------------------------------------------------------

    def set_namespace(self, name: str) -> None:
        self.namespaces.add(name)
        self.serial += 1

    def delete_namespace(self, name: str) -> None:
        self.namespaces.discard(name)
        self.serial += 1

    def set_service(self, svc: dict) -> None:
        m = _meta(svc)
        key = (m.get("namespace") or "", m.get("name") or "")
        self._services[key] = svc
        self._rebuild(key)

    def delete_service(self, svc: dict) -> None:
        m = _meta(svc)
        key = (m.get("namespace") or "", m.get("name") or "")
        self._services.pop(key, None)
        self._rebuild(key)

    def set_slice(self, sl: dict) -> None:
        m = _meta(sl)
        ns, name = m.get("namespace") or "", m.get("name") or ""
        owner = (m.get("labels") or {}).get(SERVICE_NAME_LABEL) or ""
        old_owner = self._slice_owner.get((ns, name))
        if old_owner is not None and old_owner != owner:
            self._drop_slice(ns, name, old_owner)
        if not owner:
            self._slice_owner.pop((ns, name), None)
            return
        self._slice_owner[(ns, name)] = owner
        self._slices.setdefault((ns, owner), {})[name] = sl
        self._rebuild((ns, owner))

    def delete_slice(self, sl: dict) -> None:
        m = _meta(sl)
        ns, name = m.get("namespace") or "", m.get("name") or ""
        owner = self._slice_owner.pop((ns, name), None)
        if owner is not None:
            self._drop_slice(ns, name, owner)

    def _drop_slice(self, ns: str, name: str, owner: str) -> None:
        group = self._slices.get((ns, owner))
        if group is not None:
            group.pop(name, None)
            if not group:
                del self._slices[(ns, owner)]
        self._rebuild((ns, owner))

    def _rebuild(self, key: tuple[str, str]) -> None:
        old = self.views.pop(key, None)
        svc = self._services.get(key)
        new = service_view(svc, (self._slices.get(key) or {}).values()) if svc else None
        if new is not None:
            self.views[key] = new
        old_ips = old.ips() if old else set()
        new_ips = new.ips() if new else set()
        for ip in old_ips - new_ips:
            keys = self._by_ip.get(ip)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_ip[ip]
        for ip in new_ips - old_ips:
            self._by_ip.setdefault(ip, set()).add(key)
        if old != new:
            self.serial += 1

    # reads -------------------------------------------------------------------------------------

    def services_with_ip(self, ip: str) -> list[ServiceView]:
        return [self.views[k] for k in sorted(self._by_ip.get(ip, ())) if k in self.views]

    def soa(self, apex: str | None = None) -> Record:
        apex = apex or self.zone
        return Record(apex + ".", "SOA",
                      (f"ns.dns.{apex}.", f"hostmaster.{apex}.", self.serial & 0xFFFFFFFF,
                       7200, 1800, 86400, TTL), min(TTL, SOA_TTL_CAP))


# -- answering ---------------------------------------------------------------------------------

def _nx(data: ZoneData, apex: str | None = None) -> Answer:
    return Answer(NXDOMAIN, authority=[data.soa(apex)])


def _nodata(data: ZoneData, apex: str | None = None) -> Answer:
    return Answer(NOERROR, authority=[data.soa(apex)])


def answer(data: ZoneData, qname: str, qtype: str) -> Answer:
    """The response to the question (qname, qtype), e.g. ("web-0.nginx.default.svc.cluster.local",
    "A"). qtype is the mnemonic ("A", "SRV", "ANY", ...)."""
    owner = qname if qname.endswith(".") else qname + "."
    name = qname.lower().rstrip(".")
    qtype = qtype.upper()
    zone = data.zone
    if name == REVERSE_V4 or name.endswith("." + REVERSE_V4) or \
            name == REVERSE_V6 or name.endswith("." + REVERSE_V6):
        return _reverse(data, owner, name, qtype)
    if name == zone:
        return _apex(data, owner, qtype)
    if not name.endswith("." + zone):
        return Answer(REFUSED, authoritative=False)
    labels = name[:-len(zone) - 1].split(".")
    if labels == ["dns-version"]:
        if qtype in ("TXT", "ANY"):
            return Answer(NOERROR, [Record(owner, "TXT", SCHEMA_VERSION)])
        return _nodata(data)
    if labels == ["ns", "dns"] and data.dns_ip:
        if qtype in ("A", "ANY"):
            return Answer(NOERROR, [Record(owner, "A", data.dns_ip)])
        return _nodata(data)
    if labels in (["svc"], ["pod"]):
        return _nodata(data)            # empty non-terminals of the zone
    if labels[-1] == "svc":
        return _service_answer(data, owner, labels[:-1], qtype)
    if labels[-1] == "pod":
        return _pod_answer(data, owner, labels[:-1], qtype)
    return _nx(data)


def _apex(data: ZoneData, owner: str, qtype: str) -> Answer:
    if qtype == "SOA":
        soa = data.soa()
        return Answer(NOERROR, [Record(owner, "SOA", soa.value, soa.ttl)])
    if qtype == "NS":
        ns = f"ns.dns.{data.zone}."
        extra = [Record(ns, "A", data.dns_ip)] if data.dns_ip else []
        return Answer(NOERROR, [Record(owner, "NS", ns)], additional=extra)
    return _nodata(data)


def _pod_answer(data: ZoneData, owner: str, labels: list[str], qtype: str) -> Answer:
    ns = labels[-1]
    if ns not in data.namespaces or len(labels) > 2:
        return _nx(data)
    if len(labels) == 1:
        return _nodata(data)
    podname = labels[0]
    if podname.count("-") == 3 and "--" not in podname:
        text, rtype = podname.replace("-", "."), "A"
    else:
        text, rtype = podname.replace("-", ":"), "AAAA"
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return _nx(data)
    if (rtype == "A") != (ip.version == 4):
        return _nx(data)
    if qtype in (rtype, "ANY"):
        return Answer(NOERROR, [Record(owner, rtype, str(ip))])
    return _nodata(data)


def _service_answer(data: ZoneData, owner: str, labels: list[str], qtype: str) -> Answer:
    # labels: [rest..., service, namespace]
    ns = labels[-1]
    if len(labels) == 1:
        return _nodata(data) if ns in data.namespaces else _nx(data)
    view = data.views.get((ns, labels[-2]))
    if view is None:
        return _nx(data)
    rest = labels[:-2]
    endpoint = port = proto = None
    if len(rest) == 1:
        endpoint = rest[0]
    elif len(rest) == 2:
        if not (rest[0].startswith("_") and rest[1].startswith("_")):
            return _nx(data)
        port, proto = rest[0][1:], rest[1][1:]
    elif rest:
        return _nx(data)
    base = f"{view.name}.{view.namespace}.svc.{data.zone}."

    if view.kind == "ExternalName":
        if rest or not view.external_name or _is_ip(view.external_name):
            return _nx(data)        # CoreDNS: an IP in externalName is no CNAME target
        target = view.external_name.rstrip(".") + "."
        return Answer(NOERROR, [Record(owner, "CNAME", target)])

    # (ip, port, target) items matching the question, as CoreDNS's findServices lists them
    items: list[tuple[str, Port, str]] = []

    def match(p: Port) -> bool:
        return (port is None or port == p.name) and (proto is None or proto == p.proto)

    if view.kind == "Headless" or endpoint is not None:
        for ep in view.endpoints:
            if endpoint is not None and ep.label != endpoint:
                continue
            for p in ep.ports:
                if match(p):
                    items.append((ep.ip, p, f"{ep.label}.{base}"))
    else:
        for p in view.ports:
            if match(p):
                items.extend((ip, p, base) for ip in view.cluster_ips)
    if not items:
        return _nx(data)

    if qtype in ("A", "ANY"):
        ips = list(dict.fromkeys(ip for ip, _, _ in items))
        return Answer(NOERROR, [Record(owner, "A", ip) for ip in ips])
    if qtype == "SRV":
        srv = list(dict.fromkeys((p.port, target, ip) for ip, p, target in items if p.port >= 0))
        if not srv:
            return _nodata(data)
        weight = max(1, 100 // len(srv))   # CoreDNS: 100 shared out, at least 1 each
        ans = [Record(owner, "SRV", (0, weight, p, target)) for p, target, _ in srv]
        extra = list(dict.fromkeys(Record(target, "A", ip) for _, target, ip in srv))
        return Answer(NOERROR, ans, additional=extra)
    return _nodata(data)


def reverse_ip(name: str) -> str | None:
    """The IPv4 address a `d.c.b.a.in-addr.arpa` name stands for, or None."""
    if not name.endswith("." + REVERSE_V4):
        return None
    parts = name[:-len(REVERSE_V4) - 1].split(".")
    if len(parts) != 4 or not all(p.isdigit() and len(p) <= 3 and int(p) < 256 and
                                  (p == "0" or not p.startswith("0")) for p in parts):
        return None
    return ".".join(reversed(parts))


def _reverse(data: ZoneData, owner: str, name: str, qtype: str) -> Answer:
    apex = REVERSE_V6 if name.endswith(REVERSE_V6) else REVERSE_V4
    ip = reverse_ip(name)
    targets: list[str] = []
    if ip is not None:
        for v in data.services_with_ip(ip):
            base = f"{v.name}.{v.namespace}.svc.{data.zone}."
            if ip in v.cluster_ips:
                targets.append(base)
            targets.extend(f"{e.label}.{base}" for e in v.endpoints if e.ip == ip)
    targets = list(dict.fromkeys(targets))
    if not targets:
        return _nx(data, apex)
    if qtype in ("PTR", "ANY"):
        return Answer(NOERROR, [Record(owner, "PTR", t) for t in targets])
    return _nodata(data, apex)
