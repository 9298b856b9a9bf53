"""The EndpointSlice mirroring planner (pure): the slices that mirror a hand-written Endpoints
object, so that everything reading EndpointSlices (cluster DNS, the service proxy) sees the
addresses of Services without a selector (upstream pkg/controller/endpointslicemirroring).

Rules kept from upstream:
- an Endpoints object is mirrored when its Service exists and has no selector, the object does
  not carry `endpointslice.kubernetes.io/skip-mirror: "true"`, and it is not a leader-election
  lock (annotation control-plane.alpha.kubernetes.io/leader); otherwise its mirrored slices go;
- each subset's ports become the slice ports; each address an endpoint
  `{addresses: [ip], conditions: {ready}, hostname?, nodeName?, targetRef?}` — ready for
  `addresses`, not ready for `notReadyAddresses` — in a slice of the address's type
  (IPv4/IPv6; an address that is neither is skipped); at most MAX_PER_SUBSET addresses of a
  subset are mirrored (ready ones first);
- slices are labelled with the Endpoints' labels plus `kubernetes.io/service-name` and
  `endpointslice.kubernetes.io/managed-by: endpointslicemirroring-controller.k8s.io`, carry its
  annotations (not the trigger-time one, nor kubectl's last-applied-configuration) and an
  ownerReference to the Endpoints object, so they go with it;
- slices are filled and reused as the EndpointSlice controller does (`reconcile_ports`,
  `reuse_deleted`); with no address at all there is no slice (no placeholder).
"""

from __future__ import annotations

import copy
import ipaddress

from k1s.controllers.endpoints.pods import TRIGGER_TIME, meta, spec
from k1s.controllers.endpointslice.planner import (MANAGED_BY_LABEL, MAX_ENDPOINTS_PER_SLICE,
                                                   SERVICE_NAME_LABEL, Plan, endpoint_key,
                                                   port_sig, reconcile_ports, reuse_deleted)

CONTROLLER_NAME = "endpointslicemirroring-controller.k8s.io"
SKIP_MIRROR_LABEL = "endpointslice.kubernetes.io/skip-mirror"
LEADER_ANNOTATION = "control-plane.alpha.kubernetes.io/leader"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
MAX_PER_SUBSET = 1000          # upstream --mirroring-max-endpoints-per-subset default


def should_mirror(endpoints: dict | None, svc: dict | None) -> bool:
    if endpoints is None or svc is None:
        return False
    m = meta(endpoints)
    if (m.get("labels") or {}).get(SKIP_MIRROR_LABEL) == "true":
        return False
    if LEADER_ANNOTATION in (m.get("annotations") or {}):
        return False
    return not spec(svc).get("selector")


def address_type(ip: str) -> str | None:
    try:
        return "IPv4" if ipaddress.ip_address(ip).version == 4 else "IPv6"
    except ValueError:
        return None


def _endpoint(addr: dict, ready: bool) -> dict:
    ep: dict = {"addresses": [addr.get("ip", "")], "conditions": {"ready": ready}}
    if addr.get("hostname"):
        ep["hostname"] = addr["hostname"]
    if addr.get("targetRef"):
        ep["targetRef"] = copy.deepcopy(addr["targetRef"])       # whole, as upstream
    if addr.get("nodeName"):
        ep["nodeName"] = addr["nodeName"]
    return ep


def _ports(subset: dict) -> list[dict]:
    out = []
    for p in subset.get("ports") or ():
        port = {"name": p.get("name") or "", "port": p.get("port"),
                "protocol": p.get("protocol") or "TCP"}
        if p.get("appProtocol"):
            port["appProtocol"] = p["appProtocol"]
        out.append(port)
    return out


def desired(endpoints: dict) -> dict[tuple[str, tuple], tuple[list, dict]]:
    """(address type, port signature) -> (ports, {endpoint key: endpoint})."""
    out: dict[tuple[str, tuple], tuple[list, dict]] = {}
    for subset in endpoints.get("subsets") or ():
        ports = _ports(subset)
        addrs = [(a, True) for a in subset.get("addresses") or ()] + \
            [(a, False) for a in subset.get("notReadyAddresses") or ()]
        taken = 0
        for addr, ready in addrs:
            family = address_type(addr.get("ip", ""))
            if family is None:
                continue                     # skipped addresses do not count to the cap
            if taken == MAX_PER_SUBSET:
                break
            taken += 1
            ep = _endpoint(addr, ready)
            out.setdefault((family, port_sig(ports)), (ports, {}))[1].setdefault(
                endpoint_key(ep), ep)
    return out


def slice_labels(endpoints: dict) -> dict:
    labels = dict(meta(endpoints).get("labels") or {})
    labels[SERVICE_NAME_LABEL] = meta(endpoints).get("name", "")
    labels[MANAGED_BY_LABEL] = CONTROLLER_NAME
    return labels


def slice_annotations(endpoints: dict) -> dict:
    return {k: v for k, v in (meta(endpoints).get("annotations") or {}).items()
            if k not in (TRIGGER_TIME, LAST_APPLIED)}


def owner_ref(endpoints: dict) -> dict:
    m = meta(endpoints)
    return {"apiVersion": "v1", "kind": "Endpoints", "name": m.get("name", ""),
            "uid": m.get("uid", ""), "controller": True, "blockOwnerDeletion": True}


def owned_by(sl: dict, endpoints: dict) -> bool:
    uid = meta(endpoints).get("uid")
    return any(r.get("uid") == uid and r.get("kind") == "Endpoints"
               for r in meta(sl).get("ownerReferences") or ())


def new_slice(endpoints: dict, family: str, ports: list) -> dict:
    m = meta(endpoints)
    md = {"generateName": f"{m.get('name', '')}-", "namespace": m.get("namespace", ""),
          "labels": slice_labels(endpoints), "ownerReferences": [owner_ref(endpoints)]}
    ann = slice_annotations(endpoints)
    if ann:
        md["annotations"] = ann
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": md,
            "addressType": family, "ports": copy.deepcopy(ports), "endpoints": []}


def plan(endpoints: dict | None, svc: dict | None, existing: list[dict], *,
         max_per_slice: int = MAX_ENDPOINTS_PER_SLICE) -> Plan:
    """What to write so the mirrored slices (`existing`: the ones with the Service's name
    managed by this controller) reflect `endpoints`."""
    out = Plan()
    if not should_mirror(endpoints, svc):
        out.delete = list(existing)
        return out
    labels = slice_labels(endpoints)
    ann = slice_annotations(endpoints)
    want = desired(endpoints)
    to_create: list[dict] = []
    to_update: list[dict] = []
    to_delete = [sl for sl in existing if not owned_by(sl, endpoints)]
    mine = [sl for sl in existing if owned_by(sl, endpoints)]
    by_key: dict[tuple[str, tuple], list[dict]] = {}
    for sl in mine:
        by_key.setdefault((sl.get("addressType", ""), port_sig(sl.get("ports"))), []).append(sl)
    for key, slices in by_key.items():
        if key not in want:
            to_delete.extend(slices)
    for (family, sig), (ports, eps) in want.items():
        c, u, d = reconcile_ports(lambda f, p: new_slice(endpoints, f, p), family, ports,
                                  dict(eps), by_key.get((family, sig), []), labels,
                                  max_per_slice)
        to_create += c
        to_update += u
        to_delete += d
    # annotations follow the Endpoints object's too (a slice otherwise untouched is rewritten)
    touched = {meta(sl).get("name") for sl in to_update + to_delete}
    for sl in mine:
        if meta(sl).get("name") not in touched and (meta(sl).get("annotations") or {}) != ann:
            to_update.append(copy.deepcopy(sl))
    reuse_deleted(to_create, to_update, to_delete, lambda sl: owned_by(sl, endpoints), labels)
    for sl in to_update:
        if ann:
            sl["metadata"]["annotations"] = dict(ann)
        else:
            sl["metadata"].pop("annotations", None)
    out.create, out.update, out.delete = to_create, to_update, to_delete
    return out
