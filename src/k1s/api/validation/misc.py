"""EndpointSlice (discovery.k8s.io/v1), Lease (coordination.k8s.io/v1) and the
events.k8s.io/v1 view of Event.

events.k8s.io/v1 events are validated strictly (ValidateEventCreate for new API versions):
object metadata, eventTime required, type Normal or Warning, legacy timestamps unset; field
names in messages are the internal ones upstream reports (`reportingController`, `eventTime`).
"""

from __future__ import annotations

from k1s.api import errors as E
from k1s.api.validation import formats as F
from k1s.api.validation import meta as M
from k1s.api.validation.common import (Errs, app_protocol, child, d, dns1123_label, index, lst,
                                       num, s, validate_labels)
from k1s.api.validation.core import non_special_ip
from k1s.api.validation.core_pod import validate_protocol

ADDRESS_TYPES = ("FQDN", "IPv4", "IPv6")
MAX_ENDPOINTS = 1000
MAX_ADDRESSES = 100
MAX_PORTS = 20000


too_many = E.too_many


def _address(addr: str, addr_type: str, path: str) -> Errs:
    if addr_type == "IPv4":
        errs = [E.invalid(path, addr, m) for m in F.is_valid_ip(addr)]
        if not errs and ":" in addr:
            errs.append(E.invalid(path, addr, "must be a valid IPv4 address"))
        return errs or non_special_ip(addr, path)
    if addr_type == "IPv6":
        errs = [E.invalid(path, addr, m) for m in F.is_valid_ip(addr)]
        if not errs and ":" not in addr:
            errs.append(E.invalid(path, addr, "must be a valid IPv6 address"))
        return errs or non_special_ip(addr, path)
    if addr_type == "FQDN":
        name = addr.removesuffix(".")
        if not name:
            return [E.required(path)]
        msgs = F.is_dns1123_subdomain(name)
        if msgs:
            return [E.invalid(path, name, ",".join(msgs))]
        if len(name.split(".")) < 2:
            return [E.invalid(path, name, "should be a domain with at least two segments "
                              "separated by dots")]
    return []


def validate_endpoint_slice(obj: dict) -> Errs:
    errs = M.validate_object_meta(obj.get("metadata"), True, F.name_is_dns_subdomain)
    at = s(obj.get("addressType"))
    if at not in ADDRESS_TYPES:
        errs.append(E.unsupported("addressType", at, ADDRESS_TYPES))
    endpoints = lst(obj.get("endpoints"))
    if len(endpoints) > MAX_ENDPOINTS:
        errs.append(too_many("endpoints", len(endpoints), MAX_ENDPOINTS))
    for i, ep in enumerate(endpoints):
        ep, ip = d(ep), index("endpoints", i)
        addrs = lst(ep.get("addresses"))
        ap = child(ip, "addresses")
        if not addrs:
            errs.append(E.required(ap, "must contain at least 1 address"))
        elif len(addrs) > MAX_ADDRESSES:
            errs.append(too_many(ap, len(addrs), MAX_ADDRESSES))
        for j, a in enumerate(addrs):
            errs += _address(s(a), at, index(ap, j))
        if ep.get("nodeName") is not None:
            nn = s(ep.get("nodeName"))
            errs += [E.invalid(child(ip, "nodeName"), nn, m) for m in F.name_is_dns_subdomain(nn)]
        if ep.get("hostname") is not None:
            errs += dns1123_label(s(ep.get("hostname")), child(ip, "hostname"))
        errs += validate_labels(ep.get("deprecatedTopology"), child(ip, "deprecatedTopology"))
    ports = lst(obj.get("ports"))
    if len(ports) > MAX_PORTS:
        errs.append(too_many("ports", len(ports), MAX_PORTS))
    names: set[str] = set()
    for i, p in enumerate(ports):
        p, pp = d(p), index("ports", i)
        name = s(p.get("name"))
        if name:
            errs += dns1123_label(name, child(pp, "name"))
        if name in names:
            errs.append(E.duplicate(child(pp, "name"), name))
        names.add(name)
        if p.get("port") is not None:
            port = num(p.get("port"))
            if not 0 <= port <= 65535:
                errs.append(E.invalid(child(pp, "port"), port, F.inclusive_range_error(0, 65535)))
        errs += validate_protocol(s(p.get("protocol")), child(pp, "protocol"))
        errs += app_protocol(p, pp)
    return errs


def validate_endpoint_slice_update(new: dict, old: dict) -> Errs:
    errs = M.validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    errs += validate_endpoint_slice(new)
    if s(new.get("addressType")) != s(old.get("addressType")):
        errs.append(E.invalid("addressType", s(new.get("addressType")), "field is immutable"))
    return errs


# Lease -----------------------------------------------------------------------------------
def validate_lease(obj: dict) -> Errs:
    errs = M.validate_object_meta(obj.get("metadata"), True, F.name_is_dns_subdomain)
    spec = d(obj.get("spec"))
    if spec.get("leaseDurationSeconds") is not None and num(spec.get("leaseDurationSeconds")) <= 0:
        errs.append(E.invalid(child("spec", "leaseDurationSeconds"),
                              num(spec.get("leaseDurationSeconds")), "must be greater than 0"))
    if spec.get("leaseTransitions") is not None and num(spec.get("leaseTransitions")) < 0:
        errs.append(E.invalid(child("spec", "leaseTransitions"), num(spec.get("leaseTransitions")),
                              "must be greater than or equal to 0"))
    strat = spec.get("strategy")
    if strat is not None and strat != "OldestEmulationVersion":
        errs.append(E.unsupported(child("spec", "strategy"), strat, ["OldestEmulationVersion"]))
    return errs


def validate_lease_update(new: dict, old: dict) -> Errs:
    return M.validate_object_meta_update(new.get("metadata"), old.get("metadata")) + \
        validate_lease(new)


# events.k8s.io/v1 Event ------------------------------------------------------------------
def _as_core_event(ev: dict) -> dict:
    """The core/v1 fields legacy validation reads, from the events.k8s.io/v1 wire form."""
    return {"metadata": ev.get("metadata"), "involvedObject": ev.get("regarding"),
            "eventTime": ev.get("eventTime"), "reportingComponent": ev.get("reportingController"),
            "reportingInstance": ev.get("reportingInstance"), "action": ev.get("action"),
            "reason": ev.get("reason"), "message": ev.get("note")}


def validate_events_v1_event(obj: dict) -> Errs:
    from k1s.api.validation.core import legacy_validate_event
    errs = legacy_validate_event(_as_core_event(obj), "reportingController")
    errs += M.validate_object_meta(obj.get("metadata"), True, F.name_is_dns_subdomain)
    series = obj.get("series")
    if series is not None:
        series = d(series)
        if num(series.get("count")) < 2:
            errs.append(E.invalid(child("series", "count"), "", "should be at least 2"))
        if not series.get("lastObservedTime"):
            errs.append(E.required(child("series", "lastObservedTime")))
    if not obj.get("eventTime"):
        errs.append(E.required("eventTime"))
    t = s(obj.get("type"))
    if t not in ("Normal", "Warning"):
        errs.append(E.invalid("type", "", f"has invalid value: {t}"))
    if obj.get("deprecatedFirstTimestamp"):
        errs.append(E.invalid("firstTimestamp", "", "needs to be unset"))
    if obj.get("deprecatedLastTimestamp"):
        errs.append(E.invalid("lastTimestamp", "", "needs to be unset"))
    if num(obj.get("deprecatedCount")):
        errs.append(E.invalid("count", "", "needs to be unset"))
    src = d(obj.get("deprecatedSource"))
    if s(src.get("component")) or s(src.get("host")):
        errs.append(E.invalid("source", "", "needs to be unset"))
    return errs


def validate_events_v1_event_update(new: dict, old: dict) -> Errs:
    errs = M.validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    errs += validate_events_v1_event(new)
    for f, internal in (("regarding", "involvedObject"), ("reason", "reason"),
                        ("action", "action"), ("reportingController", "reportingController"),
                        ("reportingInstance", "reportingInstance"), ("type", "type"),
                        ("note", "message"), ("eventTime", "eventTime")):
        if new.get(f) != old.get(f):
            errs.append(E.invalid(internal, new.get(f), "field is immutable"))
    return errs
