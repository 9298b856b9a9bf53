"""The EndpointSlice planner (pure): which slices to create, update and delete for a Service.

Follows upstream's reconciler (staging/src/k8s.io/endpointslice reconciler.go), per address
type of the Service (its ipFamilies; IPv4 by default):

- desired endpoints: every selected pod with an IP of that family that is not terminal —
  terminating pods included — as `{addresses, conditions{ready, serving, terminating},
  hostname (hostname rule), targetRef, nodeName, zone (the node's topology.kubernetes.io/zone)}`
  with `serving` = pod Ready, `terminating` = deletionTimestamp set, `ready` =
  publishNotReadyAddresses || (serving && !terminating); grouped by the pod's resolved ports;
- existing slices with the same ports keep their endpoints in place: an endpoint still
  desired stays where it is (rewritten only if it changed), one no longer desired is dropped;
  a slice left empty is deleted, a changed one updated, an untouched one not written at all;
- new endpoints fill the slices being updated anyway, then the one untouched slice that ends
  closest to full while taking them all, then new slices of at most `max_per_slice`;
- slices of port sets no longer wanted, of another address type, or owned by another Service
  (an older incarnation) are deleted — but a create and a delete of the same address type
  become one update of the deleted slice's name;
- a Service without endpoints keeps one placeholder slice (no ports, no endpoints).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable

from k1s.controllers.endpoints.pods import (HEADLESS_LABEL, TRIGGER_TIME, address_families,
                                            find_port, hostname_for, ip_for_family, is_headless,
                                            is_ready, is_terminating, meta, publish_not_ready,
                                            should_be_in_endpoints, spec, target_ref)

MAX_ENDPOINTS_PER_SLICE = 100   # upstream --max-endpoints-per-slice default
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
CONTROLLER_NAME = "endpointslice-controller.k8s.io"
ZONE_LABEL = "topology.kubernetes.io/zone"
RESERVED_LABELS = (SERVICE_NAME_LABEL, MANAGED_BY_LABEL, HEADLESS_LABEL)

ZoneOf = Callable[[str], "str | None"]      # node name -> zone


def _no_zone(_node: str) -> str | None:
    return None


# -- desired endpoints ---------------------------------------------------------------------------

def endpoint_ports(svc: dict, pod: dict) -> list[dict]:
    """The slice ports the pod serves: one per Service port it resolves, in Service order."""
    out = []
    for sp in spec(svc).get("ports") or ():
        num = find_port(pod, sp)
        if num is None:
            continue
        p = {"name": sp.get("name") or "", "port": num, "protocol": sp.get("protocol") or "TCP"}
        if sp.get("appProtocol"):
            p["appProtocol"] = sp["appProtocol"]
        out.append(p)
    return out


def port_sig(ports) -> tuple:
    """A slice's port set as a hashable key (order does not matter, defaults filled)."""
    return tuple(sorted((p.get("name") or "", p.get("port") or 0, p.get("protocol") or "TCP",
                         p.get("appProtocol") or "") for p in ports or ()))


def pod_endpoint(pod: dict, svc: dict, ip: str, zone_of: ZoneOf = _no_zone) -> dict:
    serving = is_ready(pod)
    terminating = is_terminating(pod)
    ep: dict = {"addresses": [ip],
                "conditions": {"ready": publish_not_ready(svc) or (serving and not terminating),
                               "serving": serving, "terminating": terminating}}
    host = hostname_for(pod, svc)
    if host:
        ep["hostname"] = host
    ep["targetRef"] = target_ref(pod)
    node = spec(pod).get("nodeName")
    if node:
        ep["nodeName"] = node
        zone = zone_of(node)
        if zone:
            ep["zone"] = zone
    return ep


def endpoint_key(ep: dict) -> tuple:
    """An endpoint's identity across syncs: its addresses and the pod it stands for."""
    ref = ep.get("targetRef") or {}
    return (tuple(ep.get("addresses") or ()), ref.get("namespace", ""), ref.get("name", ""))


def normalize_endpoint(ep: dict) -> dict:
    """A stored endpoint with only the fields we set, so it compares with pod_endpoint's."""
    out: dict = {"addresses": list(ep.get("addresses") or ())}
    cond = ep.get("conditions") or {}
    out["conditions"] = {k: cond[k] for k in ("ready", "serving", "terminating")
                         if cond.get(k) is not None}
    for k in ("hostname",):
        if ep.get(k):
            out[k] = ep[k]
    ref = ep.get("targetRef")
    if ref:
        out["targetRef"] = {k: ref[k] for k in ("kind", "namespace", "name", "uid") if ref.get(k)}
    for k in ("nodeName", "zone"):
        if ep.get(k):
            out[k] = ep[k]
    return out


def desired_endpoints(svc: dict, pods: list[dict], family: str,
                      zone_of: ZoneOf = _no_zone) -> dict[tuple, tuple[list, dict]]:
    """port signature -> (ports, {endpoint key: endpoint}) for one address family."""
    out: dict[tuple, tuple[list, dict]] = {}
    for pod in pods:
        if not should_be_in_endpoints(pod, True):
            continue
        ip = ip_for_family(pod, family)
        if ip is None:
            continue
        ports = endpoint_ports(svc, pod)
        ep = pod_endpoint(pod, svc, ip, zone_of)
        out.setdefault(port_sig(ports), (ports, {}))[1].setdefault(endpoint_key(ep), ep)
    return out


# -- slice objects ---------------------------------------------------------------------------------

def slice_labels(svc: dict) -> dict:
    labels = {k: v for k, v in (meta(svc).get("labels") or {}).items()
              if k not in RESERVED_LABELS}
    labels[SERVICE_NAME_LABEL] = meta(svc).get("name", "")
    labels[MANAGED_BY_LABEL] = CONTROLLER_NAME
    if is_headless(svc):
        labels[HEADLESS_LABEL] = ""
    return labels


def owner_ref(svc: dict) -> dict:
    m = meta(svc)
    return {"apiVersion": "v1", "kind": "Service", "name": m.get("name", ""),
            "uid": m.get("uid", ""), "controller": True, "blockOwnerDeletion": True}


def owned_by(sl: dict, svc: dict) -> bool:
    uid = meta(svc).get("uid")
    return any(r.get("uid") == uid and r.get("kind") == "Service" and r.get("apiVersion") == "v1"
               for r in meta(sl).get("ownerReferences") or ())


def new_slice(svc: dict, family: str, ports: list) -> dict:
    m = meta(svc)
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"generateName": f"{m.get('name', '')}-",
                         "namespace": m.get("namespace", ""), "labels": slice_labels(svc),
                         "ownerReferences": [owner_ref(svc)]},
            "addressType": family, "ports": copy.deepcopy(ports), "endpoints": []}


@dataclass
class Plan:
    create: list[dict] = field(default_factory=list)
    update: list[dict] = field(default_factory=list)
    delete: list[dict] = field(default_factory=list)

    def empty(self) -> bool:
        return not (self.create or self.update or self.delete)


def _is_placeholder(sl: dict, family: str) -> bool:
    return sl.get("addressType") == family and not sl.get("ports") and not sl.get("endpoints")


# -- the reconciler -------------------------------------------------------------------------------

def plan(svc: dict, pods: list[dict], existing: list[dict], *,
         zone_of: ZoneOf = _no_zone, trigger_time: str = "",
         max_per_slice: int = MAX_ENDPOINTS_PER_SLICE) -> Plan:
    """What to write so the Service's slices reflect `pods` (its selected pods), starting from
    `existing` (the slices labelled with its name and managed by this controller)."""
    families = address_families(svc)
    labels = slice_labels(svc)
    out = Plan()
    to_create: list[dict] = []
    to_update: list[dict] = []
    to_delete: list[dict] = []
    for sl in existing:
        if not owned_by(sl, svc) or sl.get("addressType") not in families:
            to_delete.append(sl)
    for family in families:
        mine = [sl for sl in existing
                if owned_by(sl, svc) and sl.get("addressType") == family]
        desired = desired_endpoints(svc, pods, family, zone_of)
        by_sig: dict[tuple, list[dict]] = {}
        for sl in mine:
            by_sig.setdefault(port_sig(sl.get("ports")), []).append(sl)
        for sig, slices in by_sig.items():
            if sig not in desired:
                to_delete.extend(slices)
        for sig, (ports, want) in desired.items():
            c, u, d = reconcile_ports(lambda f, p: new_slice(svc, f, p), family, ports,
                                      dict(want), by_sig.get(sig, []), labels, max_per_slice)
            to_create += c
            to_update += u
            to_delete += d
    # a Service with no endpoints at all keeps exactly one placeholder slice
    if len(existing) == len(to_delete) and not to_create:
        family = families[0]
        if len(to_delete) == 1 and owned_by(to_delete[0], svc) and \
                _is_placeholder(to_delete[0], family):
            kept = to_delete.pop()
            if (meta(kept).get("labels") or {}) != labels:
                kept = copy.deepcopy(kept)
                kept["metadata"]["labels"] = labels
                to_update.append(kept)
        else:
            to_create.append(new_slice(svc, family, []))
    reuse_deleted(to_create, to_update, to_delete, lambda sl: owned_by(sl, svc), labels)
    for sl in to_create + to_update:
        ann = dict(meta(sl).get("annotations") or {})
        if trigger_time:
            ann[TRIGGER_TIME] = trigger_time
        else:
            ann.pop(TRIGGER_TIME, None)
        if ann:
            sl["metadata"]["annotations"] = ann
        else:
            sl["metadata"].pop("annotations", None)
    out.create, out.update, out.delete = to_create, to_update, to_delete
    return out


def reuse_deleted(to_create: list[dict], to_update: list[dict], to_delete: list[dict],
                  owns: Callable[[dict], bool], labels: dict) -> None:
    """Turn a create plus a delete of the same address type into an update of the deleted
    slice (less churn for watchers). Changes the three lists in place."""
    i = 0
    while i < len(to_delete) and to_create:
        gone = to_delete[i]
        new = to_create[-1]
        if gone.get("addressType") == new.get("addressType") and owns(gone):
            reuse = copy.deepcopy(gone)
            reuse["ports"], reuse["endpoints"] = new["ports"], new["endpoints"]
            reuse["metadata"]["labels"] = labels
            to_create.pop()
            to_update.append(reuse)
            to_delete.pop(i)
        else:
            i += 1


def reconcile_ports(make: Callable[[str, list], dict], family: str, ports: list,
                    want: dict[tuple, dict], slices: list[dict], labels: dict,
                    max_per_slice: int):
    """The slices of one port set: (to create, to update, to delete). `want` is consumed;
    `make(family, ports)` is a new empty slice."""
    to_update: list[dict] = []
    to_delete: list[dict] = []
    unchanged: list[dict] = []
    # 1. keep every still-wanted endpoint where it is; drop the others
    for sl in slices:
        kept: list[dict] = []
        changed = False
        for ep in sl.get("endpoints") or ():
            d = want.pop(endpoint_key(ep), None)
            if d is None:
                changed = True          # no longer wanted (or a duplicate of an earlier one)
                continue
            if normalize_endpoint(ep) != normalize_endpoint(d):
                changed = True
            kept.append(d)
        if changed and not kept:
            to_delete.append(sl)
        elif changed or (meta(sl).get("labels") or {}) != labels or len(kept) > max_per_slice:
            new = copy.deepcopy(sl)
            new["metadata"]["labels"] = labels
            new["endpoints"] = kept[:max_per_slice]
            for ep in kept[max_per_slice:]:
                want[endpoint_key(ep)] = ep     # an over-full slice sheds its tail
            to_update.append(new)
        else:
            unchanged.append(sl)
    # 2. fill slices we are rewriting anyway
    for sl in to_update:
        while want and len(sl["endpoints"]) < max_per_slice:
            sl["endpoints"].append(want.pop(next(iter(want))))
    # 3. the rest: the one untouched slice that ends closest to full, else new slices
    to_create: list[dict] = []
    while want:
        target = None
        if len(want) < max_per_slice and unchanged:
            fits = [sl for sl in unchanged
                    if len(sl.get("endpoints") or ()) + len(want) <= max_per_slice]
            if fits:
                best = max(fits, key=lambda sl: len(sl.get("endpoints") or ()))
                unchanged.remove(best)
                target = copy.deepcopy(best)
                target["metadata"]["labels"] = labels
                target["endpoints"] = [normalize_endpoint(ep)
                                       for ep in target.get("endpoints") or ()]
                to_update.append(target)
        if target is None:
            target = make(family, ports)
            to_create.append(target)
        while want and len(target["endpoints"]) < max_per_slice:
            target["endpoints"].append(want.pop(next(iter(want))))
    return to_create, to_update, to_delete
