"""The Endpoints planner (pure): the Endpoints object a selector Service should have.

Follows upstream's endpoint controller (pkg/controller/endpoint syncService):

- every pod of the Service's namespace matching its selector that has an IP of the Service's
  first address family and is not terminal; terminating pods only with publishNotReadyAddresses
  (or the legacy tolerate-unready annotation), which also puts every address in `addresses`;
- an address is `{ip, hostname?, nodeName, targetRef}`; hostname follows the hostname rule;
- one port per Service port the pod resolves (a named targetPort looked up in the pod's
  container ports; a pod resolving none is left out); a headless Service without ports lists
  addresses with no ports;
- subsets repacked as upstream's RepackSubsets: ports served by exactly the same addresses
  (with the same readiness) share a subset, addresses sorted by IP then UID;
- labels: the Service's, plus `service.kubernetes.io/headless: ""` for a headless Service;
- more than MAX_CAPACITY addresses: truncated proportionally per subset (not-ready ones first)
  and annotated `endpoints.kubernetes.io/over-capacity: truncated`.

`plan` compares with the stored object on subsets, labels and the over-capacity annotation only
(not the trigger-time annotation nor server-set metadata), and returns None when no write is
needed.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

from .pods import (HEADLESS_LABEL, TRIGGER_TIME, address_families, find_port, hostname_for,
                   ip_for_family, is_headless, is_ready, meta, publish_not_ready,
                   should_be_in_endpoints, spec, target_ref)

MAX_CAPACITY = 1000             # upstream's maxCapacity for one Endpoints object
OVER_CAPACITY = "endpoints.kubernetes.io/over-capacity"


def endpoint_address(pod: dict, svc: dict) -> dict | None:
    """The pod's EndpointAddress for this Service (None: no IP of the Service's family)."""
    ip = ip_for_family(pod, address_families(svc)[0])
    if ip is None:
        return None
    addr: dict = {"ip": ip}
    host = hostname_for(pod, svc)
    if host:
        addr["hostname"] = host
    node = spec(pod).get("nodeName")
    if node:
        addr["nodeName"] = node
    addr["targetRef"] = target_ref(pod)
    return addr


def _port_key(p: dict) -> tuple:
    return (p.get("name") or "", p.get("port") or 0, p.get("protocol") or "TCP",
            p.get("appProtocol") or "")


def _addr_key(a: dict) -> tuple:
    return (a.get("ip", ""), (a.get("targetRef") or {}).get("uid", ""))


def desired_subsets(svc: dict, pods: list[dict]) -> list[dict]:
    """Repacked subsets for the Service from its (already selected) pods."""
    tolerate = publish_not_ready(svc)
    svc_ports = spec(svc).get("ports") or []
    addrs: dict[tuple, dict] = {}                   # address key -> address
    ports_by_key: dict[tuple, dict] = {}
    # port key (None: the no-ports sentinel) -> address key -> ready; as RepackSubsets, an
    # address listed ready for a port anywhere stays ready for it
    by_port: dict[tuple | None, dict[tuple, bool]] = {}
    for pod in pods:
        if not should_be_in_endpoints(pod, tolerate):
            continue
        addr = endpoint_address(pod, svc)
        if addr is None:
            continue
        ready = tolerate or is_ready(pod)
        if not svc_ports:
            if not is_headless(svc):
                continue        # only a headless Service may have endpoints without ports
            found: list[tuple | None] = [None]
        else:
            found = []
            for sp in svc_ports:
                num = find_port(pod, sp)
                if num is None:
                    continue
                ep = {"name": sp.get("name") or "", "port": num,
                      "protocol": sp.get("protocol") or "TCP"}
                if sp.get("appProtocol"):
                    ep["appProtocol"] = sp["appProtocol"]
                if not ep["name"]:
                    del ep["name"]
                k = _port_key(ep)
                ports_by_key[k] = ep
                found.append(k)
        akey = _addr_key(addr)
        addrs.setdefault(akey, addr)
        for k in found:
            m = by_port.setdefault(k, {})
            m[akey] = m.get(akey, False) or ready
    # ports whose (address, ready) sets are identical share one subset
    groups: dict[frozenset, list] = {}
    for k, members in by_port.items():
        groups.setdefault(frozenset(members.items()), []).append(k)
    subsets = []
    for members, keys in groups.items():
        ss: dict = {}
        ready_l = [addrs[a] for a, r in members if r]
        not_ready_l = [addrs[a] for a, r in members if not r]
        if ready_l:
            ss["addresses"] = sorted(ready_l, key=_addr_key)
        if not_ready_l:
            ss["notReadyAddresses"] = sorted(not_ready_l, key=_addr_key)
        real = sorted(k for k in keys if k is not None)
        if real:
            ss["ports"] = [ports_by_key[k] for k in real]
        subsets.append(ss)
    subsets.sort(key=_subset_key)
    return subsets


def _subset_key(ss: dict) -> tuple:
    ports = tuple(_port_key(p) for p in ss.get("ports") or ())
    first = (ss.get("addresses") or ss.get("notReadyAddresses") or [{}])[0]
    return (ports, _addr_key(first))


def truncate(subsets: list[dict]) -> bool:
    """Cut subsets down to MAX_CAPACITY addresses in place, as upstream's truncateEndpoints:
    not-ready addresses go first; if the ready ones alone are too many, every not-ready one
    goes and the ready ones are cut, each subset keeping its share (rounded up)."""
    total_ready = sum(len(s.get("addresses") or ()) for s in subsets)
    total_not_ready = sum(len(s.get("notReadyAddresses") or ()) for s in subsets)
    if total_ready + total_not_ready <= MAX_CAPACITY:
        return False
    cut_ready = total_ready > MAX_CAPACITY
    room = MAX_CAPACITY if cut_ready else MAX_CAPACITY - total_ready
    total = total_ready if cut_ready else total_not_ready
    left = room
    for ss in subsets:
        field = "addresses" if cut_ready else "notReadyAddresses"
        have = ss.get(field) or []
        take = min(math.ceil(len(have) / total * room) if total else 0, left)
        ss[field] = have[:take]
        if cut_ready:
            ss.pop("notReadyAddresses", None)
        left -= len(ss[field])
        if not ss[field]:
            del ss[field]
    return True


def desired_labels(svc: dict) -> dict:
    labels = dict(meta(svc).get("labels") or {})
    if is_headless(svc):
        labels[HEADLESS_LABEL] = ""
    else:
        labels.pop(HEADLESS_LABEL, None)
    return labels


@dataclass
class Plan:
    create: bool            # no stored object: POST `obj`; else PUT `obj`
    obj: dict


def _norm_subsets(subsets) -> list:
    """Stored subsets in our canonical order, with the API's defaults filled in, so they
    compare equal to what desired_subsets builds."""
    out = []
    for ss in subsets or ():
        n: dict = {}
        for f in ("addresses", "notReadyAddresses"):
            addrs = [{k: v for k, v in a.items() if v not in (None, "")} for a in ss.get(f) or ()]
            for a in addrs:
                if "targetRef" in a:
                    a["targetRef"] = {k: v for k, v in a["targetRef"].items()
                                      if k in ("kind", "namespace", "name", "uid") and v}
            if addrs:
                n[f] = sorted(addrs, key=_addr_key)
        ports = []
        for p in ss.get("ports") or ():
            q = {k: v for k, v in p.items() if v not in (None, "")}
            q.setdefault("protocol", "TCP")
            ports.append(q)
        if ports:
            n["ports"] = sorted(ports, key=_port_key)
        out.append(n)
    out.sort(key=_subset_key)
    return out


def plan(svc: dict, pods: list[dict], current: dict | None, trigger_time: str = "") -> Plan | None:
    """The write that makes `current` (the stored Endpoints, or None) what `svc` and its
    selected `pods` call for; None when it already is."""
    subsets = desired_subsets(svc, pods)
    truncated = truncate(subsets)
    labels = desired_labels(svc)
    if current is not None:
        annotations = meta(current).get("annotations") or {}
        if (_norm_subsets(current.get("subsets")) == _norm_subsets(subsets)
                and (meta(current).get("labels") or {}) == labels
                and (OVER_CAPACITY in annotations) == truncated):
            return None
        obj = copy.deepcopy(current)
    else:
        m = meta(svc)
        obj = {"apiVersion": "v1", "kind": "Endpoints",
               "metadata": {"name": m.get("name", ""), "namespace": m.get("namespace", "")}}
    md = obj.setdefault("metadata", {})
    md["labels"] = labels
    annotations = dict(md.get("annotations") or {})
    if trigger_time:
        annotations[TRIGGER_TIME] = trigger_time
    else:
        annotations.pop(TRIGGER_TIME, None)
    if truncated:
        annotations[OVER_CAPACITY] = "truncated"
    else:
        annotations.pop(OVER_CAPACITY, None)
    if annotations:
        md["annotations"] = annotations
    else:
        md.pop("annotations", None)
    obj["subsets"] = subsets
    obj.setdefault("apiVersion", "v1")
    obj.setdefault("kind", "Endpoints")
    return Plan(current is None, obj)
