"""Core kinds other than pods and storage: Namespace, Service, Endpoints, Event, Node,
ConfigMap, Secret and ServiceAccount.

Each follows its upstream Validate*/Validate*Update function: namespace names are DNS labels,
service names DNS-1035 labels, most others DNS subdomains; ConfigMap and Secret keys are
config keys and their data is limited to 1 MiB; headless services (`clusterIP: None`) may have
no ports; a service's cluster IP may not change once set.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from k1s.api import errors as E
from k1s.api.validation import formats as F
from k1s.api.validation import meta as M
from k1s.api.validation.common import (Errs, app_protocol, child, d, dns1123_label,
                                       dns1123_subdomain, index, key, lst, num, optional_one_of,
                                       port_number, qualified_name, s, validate_labels)
from k1s.api.validation.core_pod import validate_port_num_or_name, validate_protocol

MAX_SECRET_SIZE = 1 * 1024 * 1024
SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
SESSION_AFFINITIES = ("ClientIP", "None")
TRAFFIC_POLICIES = ("Cluster", "Local")
MAX_CLIENT_IP_AFFINITY_SECONDS = 86400
IMMUTABLE_WHEN_SET = "field is immutable when `immutable` is set"


# Namespace -------------------------------------------------------------------------------
def validate_namespace(obj: dict) -> Errs:
    errs = M.validate_object_meta(obj.get("metadata"), False, F.name_is_dns_label)
    for f in lst(d(obj.get("spec")).get("finalizers")):
        errs += M.validate_finalizer_name(s(f), child("spec", "finalizers"))
    return errs


def validate_namespace_update(new: dict, old: dict) -> Errs:
    # spec and status are carried over by the strategy; only metadata rules apply.
    return M.validate_object_meta_update(new.get("metadata"), old.get("metadata"))


def validate_namespace_status_update(new: dict, old: dict) -> Errs:
    errs = M.validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    phase = s(d(new.get("status")).get("phase"))
    if not d(new.get("metadata")).get("deletionTimestamp"):
        if phase != "Active":
            errs.append(E.invalid(child("status", "Phase"), phase,
                                  "may only be 'Active' if `deletionTimestamp` is empty"))
    elif phase != "Terminating":
        errs.append(E.invalid(child("status", "Phase"), phase,
                              "may only be 'Terminating' if `deletionTimestamp` is not empty"))
    return errs


def validate_namespace_finalize_update(new: dict, old: dict) -> Errs:
    errs = M.validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    for i, f in enumerate(lst(d(new.get("spec")).get("finalizers"))):
        errs += M.validate_finalizer_name(s(f), index(child("spec", "finalizers"), i))
    return errs


# Service ---------------------------------------------------------------------------------
def _cluster_ips(spec: dict) -> list[str]:
    ips = [s(x) for x in lst(spec.get("clusterIPs"))]
    if not ips and s(spec.get("clusterIP")):
        ips = [s(spec.get("clusterIP"))]
    return ips


def _is_headless(spec: dict) -> bool:
    ips = _cluster_ips(spec)
    return bool(ips) and ips[0] == "None"


def _service_port(sp: dict, require_name: bool, names: set[str], path: str) -> Errs:
    errs: Errs = []
    name = s(sp.get("name"))
    if require_name and not name:
        errs.append(E.required(child(path, "name")))
    elif name:
        errs += dns1123_label(name, child(path, "name"))
        if name in names:
            errs.append(E.duplicate(child(path, "name"), name))
        else:
            names.add(name)
    port = num(sp.get("port"))
    errs += port_number(port, child(path, "port"))
    errs += validate_protocol(s(sp.get("protocol")), child(path, "protocol"))
    tp = sp.get("targetPort")
    if tp is not None and tp != 0 and tp != "":
        errs += validate_port_num_or_name(tp, child(path, "targetPort"))
    errs += app_protocol(sp, path)
    return errs


def _cluster_ip_fields(spec: dict) -> Errs:
    errs: Errs = []
    ips = [s(x) for x in lst(spec.get("clusterIPs"))]
    cip = s(spec.get("clusterIP"))
    if ips and cip and ips[0] != cip:
        errs.append(E.invalid(child("spec", "clusterIPs"), ips,
                              "first value must match `clusterIP`"))
    stype = s(spec.get("type"))
    all_ips = ips or ([cip] if cip else [])
    for i, ip in enumerate(all_ips):
        p = index(child("spec", "clusterIPs"), i)
        if ip == "None":
            if i > 0 or len(all_ips) > 1:
                errs.append(E.invalid(p, ip, "must not be 'None' when more than one value is "
                                      "specified"))
            continue
        errs += [E.invalid(p, ip, m) for m in F.is_valid_ip(ip)]
    if stype == "ExternalName":
        return errs
    fams = lst(spec.get("ipFamilies"))
    for i, f in enumerate(fams):
        if f not in ("IPv4", "IPv6"):
            errs.append(E.unsupported(index(child("spec", "ipFamilies"), i), f, ["IPv4", "IPv6"]))
    pol = spec.get("ipFamilyPolicy")
    errs += optional_one_of(pol, ("PreferDualStack", "RequireDualStack", "SingleStack"),
                            child("spec", "ipFamilyPolicy"))
    return errs


def validate_service(obj: dict) -> Errs:
    errs = M.validate_object_meta(obj.get("metadata"), True, F.name_is_dns1035_label)
    spec = d(obj.get("spec"))
    sp = "spec"
    stype = s(spec.get("type"))
    ports = lst(spec.get("ports"))
    headless = _is_headless(spec)
    if not ports and not headless and stype != "ExternalName":
        errs.append(E.required(child(sp, "ports")))
    if stype in ("LoadBalancer", "NodePort") and headless:
        errs.append(E.invalid(index(child(sp, "clusterIPs"), 0), "None",
                              f"may not be set to 'None' for {stype} services"))
    if stype == "ExternalName":
        if lst(spec.get("clusterIPs")):
            errs.append(E.forbidden(child(sp, "clusterIPs"),
                                    "may not be set for ExternalName services"))
        if lst(spec.get("ipFamilies")):
            errs.append(E.forbidden(child(sp, "ipFamilies"),
                                    "may not be set for ExternalName services"))
        if spec.get("ipFamilyPolicy") is not None:
            errs.append(E.forbidden(child(sp, "ipFamilyPolicy"),
                                    "may not be set for ExternalName services"))
        cname = s(spec.get("externalName")).removesuffix(".")
        if cname:
            errs += dns1123_subdomain(cname, child(sp, "externalName"))
        else:
            errs.append(E.required(child(sp, "externalName")))
    names: set[str] = set()
    for i, p in enumerate(ports):
        errs += _service_port(d(p), len(ports) > 1, names, index(child(sp, "ports"), i))
    if spec.get("selector") is not None:
        errs += validate_labels(spec.get("selector"), child(sp, "selector"))
    aff = s(spec.get("sessionAffinity"))
    if not aff:
        errs.append(E.required(child(sp, "sessionAffinity")))
    elif aff not in SESSION_AFFINITIES:
        errs.append(E.unsupported(child(sp, "sessionAffinity"), aff, SESSION_AFFINITIES))
    cfg_path = child(sp, "sessionAffinityConfig")
    if aff == "ClientIP":
        cfg = spec.get("sessionAffinityConfig")
        when = "when session affinity type is ClientIP"
        if cfg is None:
            errs.append(E.required(cfg_path, when))
        elif d(cfg).get("clientIP") is None:
            errs.append(E.required(child(cfg_path, "clientIP"), when))
        elif d(d(cfg).get("clientIP")).get("timeoutSeconds") is None:
            errs.append(E.required(child(cfg_path, "clientIP", "timeoutSeconds"), when))
        else:
            t = num(d(d(cfg).get("clientIP")).get("timeoutSeconds"))
            if t <= 0 or t > MAX_CLIENT_IP_AFFINITY_SECONDS:
                errs.append(E.invalid(child(cfg_path, "clientIP", "timeoutSeconds"), t,
                                      "must be greater than 0 and less than 86400"))
    elif aff == "None" and spec.get("sessionAffinityConfig") is not None:
        errs.append(E.forbidden(cfg_path, "must not be set when session affinity is None"))
    errs += _cluster_ip_fields(spec)
    for i, ip in enumerate(lst(spec.get("externalIPs"))):
        errs += [E.invalid(index(child(sp, "externalIPs"), i), s(ip), m)
                 for m in F.is_valid_ip(s(ip))]
    if not stype:
        errs.append(E.required(child(sp, "type")))
    elif stype not in SERVICE_TYPES:
        errs.append(E.unsupported(child(sp, "type"), stype, SERVICE_TYPES))
    if stype == "ClusterIP":
        for i, p in enumerate(ports):
            if num(d(p).get("nodePort")):
                errs.append(E.forbidden(child(index(child(sp, "ports"), i), "nodePort"),
                                        "may not be used when `type` is 'ClusterIP'"))
    seen_np: set[tuple] = set()
    seen_p: set[tuple] = set()
    for i, p in enumerate(ports):
        p = d(p)
        pp = index(child(sp, "ports"), i)
        np_ = num(p.get("nodePort"))
        if np_:
            k = (s(p.get("protocol")), np_)
            if k in seen_np:
                errs.append(E.duplicate(child(pp, "nodePort"), np_))
            seen_np.add(k)
        k2 = (s(p.get("protocol")), num(p.get("port")))
        if k2 in seen_p:
            errs.append(E.duplicate(pp, {"port": k2[1], "protocol": k2[0]}))
        seen_p.add(k2)
    if spec.get("allocateLoadBalancerNodePorts") is not None and stype != "LoadBalancer":
        errs.append(E.forbidden(child(sp, "allocateLoadBalancerNodePorts"),
                                "may only be used when `type` is 'LoadBalancer'"))
    externally = stype in ("NodePort", "LoadBalancer")
    etp = s(spec.get("externalTrafficPolicy"))
    if not externally:
        if etp:
            errs.append(E.invalid(child(sp, "externalTrafficPolicy"), etp,
                                  "may only be set for externally-accessible services"))
    elif not etp:
        errs.append(E.required(child(sp, "externalTrafficPolicy")))
    elif etp not in TRAFFIC_POLICIES:
        errs.append(E.unsupported(child(sp, "externalTrafficPolicy"), etp, TRAFFIC_POLICIES))
    itp = spec.get("internalTrafficPolicy")
    if itp is None:
        if stype in ("NodePort", "LoadBalancer", "ClusterIP"):
            errs.append(E.required(child(sp, "internalTrafficPolicy")))
    elif itp not in TRAFFIC_POLICIES:
        errs.append(E.unsupported(child(sp, "internalTrafficPolicy"), itp, TRAFFIC_POLICIES))
    td = spec.get("trafficDistribution")
    errs += optional_one_of(td, ("PreferClose", "PreferSameZone", "PreferSameNode"),
                            child(sp, "trafficDistribution"))
    return errs


def validate_service_update(new: dict, old: dict) -> Errs:
    errs = M.validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    ns, os_ = d(new.get("spec")), d(old.get("spec"))
    old_ips, new_ips = _cluster_ips(os_), _cluster_ips(ns)
    switching = "ExternalName" in (s(ns.get("type")), s(os_.get("type")))
    if not switching and old_ips and old_ips[0] and (not new_ips or new_ips[0] != old_ips[0]):
        errs.append(E.invalid(index(child("spec", "clusterIPs"), 0), new_ips,
                              "may not change once set"))
    return errs + validate_service(new)


def validate_service_status_update(new: dict, old: dict) -> Errs:
    errs = M.validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    lb = d(d(new.get("status")).get("loadBalancer"))
    for i, ing in enumerate(lst(lb.get("ingress"))):
        ip = s(d(ing).get("ip"))
        p = child(index(child("status", "loadBalancer", "ingress"), i), "ip")
        if ip:
            errs += [E.invalid(p, ip, m) for m in F.is_valid_ip(ip)]
    return errs


# Endpoints -------------------------------------------------------------------------------
def non_special_ip(ip: str, path: str) -> Errs:
    import ipaddress
    try:
        a = ipaddress.ip_address(ip)
    except ValueError:
        return [E.invalid(path, ip, "must be a valid IP address")]
    errs: Errs = []
    if a.is_unspecified:
        errs.append(E.invalid(path, ip, f"may not be unspecified ({ip})"))
    if a.is_loopback:
        errs.append(E.invalid(path, ip, "may not be in the loopback range (127.0.0.0/8, ::1/128)"))
    if a.is_link_local and not a.is_multicast:
        errs.append(E.invalid(path, ip, "may not be in the link-local range (169.254.0.0/16, "
                              "fe80::/10)"))
    link_local_mc = (a.version == 4 and ip.startswith("224.0.0.")) or \
        (a.version == 6 and a.is_multicast and (int(a) >> 112) & 0xF == 2)
    if link_local_mc:
        errs.append(E.invalid(path, ip, "may not be in the link-local multicast range "
                              "(224.0.0.0/24, ff02::/10)"))
    return errs


def _endpoint_address(addr: dict, path: str) -> Errs:
    ip = s(addr.get("ip"))
    errs = [E.invalid(child(path, "ip"), ip, m) for m in F.is_valid_ip(ip)]
    if s(addr.get("hostname")):
        errs += dns1123_label(s(addr.get("hostname")), child(path, "hostname"))
    if addr.get("nodeName") is not None:
        nn = s(addr.get("nodeName"))
        errs += [E.invalid(child(path, "nodeName"), nn, m) for m in F.name_is_dns_subdomain(nn)]
    return errs + non_special_ip(ip, child(path, "ip"))


def validate_endpoints(obj: dict) -> Errs:
    errs = M.validate_object_meta(obj.get("metadata"), True, F.name_is_dns_subdomain)
    for i, ss in enumerate(lst(obj.get("subsets"))):
        ss, ip = d(ss), index("subsets", i)
        addrs, nra = lst(ss.get("addresses")), lst(ss.get("notReadyAddresses"))
        if not addrs and not nra:
            errs.append(E.required(ip, "must specify `addresses` or `notReadyAddresses`"))
        for j, a in enumerate(addrs):
            errs += _endpoint_address(d(a), index(child(ip, "addresses"), j))
        for j, a in enumerate(nra):
            errs += _endpoint_address(d(a), index(child(ip, "notReadyAddresses"), j))
        ports = lst(ss.get("ports"))
        for j, p in enumerate(ports):
            p, pp = d(p), index(child(ip, "ports"), j)
            name = s(p.get("name"))
            if len(ports) > 1 and not name:
                errs.append(E.required(child(pp, "name")))
            elif name:
                errs += dns1123_label(name, child(pp, "name"))
            port = num(p.get("port"))
            errs += port_number(port, child(pp, "port"))
            errs += validate_protocol(s(p.get("protocol")), child(pp, "protocol"))
            errs += app_protocol(p, pp)
    return errs


def validate_endpoints_update(new: dict, old: dict) -> Errs:
    return M.validate_object_meta_update(new.get("metadata"), old.get("metadata")) + \
        validate_endpoints(new)


# Event (core/v1) -------------------------------------------------------------------------
REPORTING_INSTANCE_LIMIT = 128
ACTION_LIMIT = 128
REASON_LIMIT = 128
NOTE_LIMIT = 1024


def legacy_validate_event(ev: dict, reporting_field: str = "reportingComponent") -> Errs:
    """legacyValidateEvent: what every core/v1 event must satisfy."""
    errs: Errs = []
    meta = d(ev.get("metadata"))
    ns = s(meta.get("namespace"))
    inv = d(ev.get("involvedObject"))
    inv_ns = s(inv.get("namespace"))
    ns_err = E.invalid(child("involvedObject", "namespace"), inv_ns, "does not match event.namespace")
    if not ev.get("eventTime"):
        if not inv_ns:
            if ns not in ("", "default"):
                errs.append(ns_err)
        elif ns != inv_ns:
            errs.append(ns_err)
    else:
        if not inv_ns and ns not in ("default", "kube-system"):
            errs.append(ns_err)
        rc = s(ev.get("reportingComponent"))
        if not rc:
            errs.append(E.required(reporting_field))
        errs += qualified_name(rc, reporting_field)
        ri = s(ev.get("reportingInstance"))
        if not ri:
            errs.append(E.required("reportingInstance"))
        if len(ri) > REPORTING_INSTANCE_LIMIT:
            errs.append(E.invalid("reportingInstance", "",
                                  f"can have at most {REPORTING_INSTANCE_LIMIT} characters"))
        act = s(ev.get("action"))
        if not act:
            errs.append(E.required("action"))
        if len(act) > ACTION_LIMIT:
            errs.append(E.invalid("action", "", f"can have at most {ACTION_LIMIT} characters"))
        reason = s(ev.get("reason"))
        if not reason:
            errs.append(E.required("reason"))
        if len(reason) > REASON_LIMIT:
            errs.append(E.invalid("reason", "", f"can have at most {REASON_LIMIT} characters"))
        if len(s(ev.get("message"))) > NOTE_LIMIT:
            errs.append(E.invalid("message", "", f"can have at most {NOTE_LIMIT} characters"))
    errs += [E.invalid("namespace", ns, m) for m in F.is_dns1123_subdomain(ns)]
    return errs


def validate_event(obj: dict) -> Errs:
    errs: Errs = []
    if not s(d(obj.get("metadata")).get("name")):
        # Core events skip ObjectMeta validation upstream, but a name is needed to store one.
        errs.append(E.required(child("metadata", "name"), "name or generateName is required"))
    return errs + legacy_validate_event(obj)


def validate_event_update(new: dict, old: dict) -> Errs:
    return M.validate_object_meta_update(new.get("metadata"), old.get("metadata")) + \
        legacy_validate_event(new)


# Node ------------------------------------------------------------------------------------
def _taints(taints: list, path: str) -> Errs:
    errs: Errs = []
    seen: dict[str, set[str]] = {}
    for i, t in enumerate(taints):
        t, ip = d(t), index(path, i)
        k, v, eff = s(t.get("key")), s(t.get("value")), s(t.get("effect"))
        errs += qualified_name(k, child(ip, "key"))
        msgs = F.is_label_value(v)
        if msgs:
            errs.append(E.invalid(child(ip, "value"), v, ";".join(msgs)))
        if not eff:
            errs.append(E.required(child(ip, "effect")))
        elif eff not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            errs.append(E.unsupported(child(ip, "effect"), eff,
                                      ["NoSchedule", "PreferNoSchedule", "NoExecute"]))
        if k in seen.get(eff, set()):
            dup = E.duplicate(ip, t)
            dup.detail = "taints must be unique by key and effect pair"
            errs.append(dup)
            continue
        seen.setdefault(eff, set()).add(k)
    return errs


def _node_resources(obj: dict) -> Errs:
    from k1s.api.validation.common import parse_quantity
    errs: Errs = []
    st = d(obj.get("status"))
    for section in ("capacity", "allocatable"):
        for k, raw in d(st.get(section)).items():
            p = f"status.{section}.{k}"
            try:
                q = parse_quantity(raw)
            except (ValueError, TypeError, ArithmeticError) as exc:
                errs.append(E.invalid(p, raw, str(exc)))
                continue
            if q < 0:
                errs.append(E.invalid(p, str(raw), "must be greater than or equal to 0"))
    return errs


def validate_node(obj: dict) -> Errs:
    errs = M.validate_object_meta(obj.get("metadata"), False, F.name_is_dns_subdomain)
    spec = d(obj.get("spec"))
    if lst(spec.get("taints")):
        errs += _taints(lst(spec.get("taints")), child("metadata", "taints"))
    errs += _node_resources(obj)
    cidrs = [s(c) for c in lst(spec.get("podCIDRs"))]
    for i, c in enumerate(cidrs):
        errs += [E.invalid(index(child("spec", "podCIDRs"), i), c, m) for m in F.is_valid_cidr(c)]
    if len(cidrs) > 1:
        seen: set[str] = set()
        for i, c in enumerate(cidrs):
            if c in seen:
                errs.append(E.duplicate(index(child("spec", "podCIDRs"), i), c))
            seen.add(c)
    return errs


def validate_node_update(new: dict, old: dict) -> Errs:
    errs = M.validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    errs += _node_resources(new)
    seen: list = []
    for i, a in enumerate(lst(d(new.get("status")).get("addresses"))):
        if a in seen:
            errs.append(E.duplicate(index(child("status", "addresses"), i), a))
        seen.append(a)
    ns, os_ = d(new.get("spec")), d(old.get("spec"))
    old_cidrs = lst(os_.get("podCIDRs"))
    if old_cidrs and lst(ns.get("podCIDRs")) != old_cidrs:
        errs.append(E.forbidden(child("spec", "podCIDRs"),
                                "node updates may not change podCIDR except from \"\" to valid"))
    if s(os_.get("providerID")) and s(os_.get("providerID")) != s(ns.get("providerID")):
        errs.append(E.forbidden(child("spec", "providerID"),
                                "node updates may not change providerID except from \"\" to valid"))
    if lst(ns.get("taints")):
        errs += _taints(lst(ns.get("taints")), child("metadata", "taints"))
    if s(ns.get("externalID")) != s(os_.get("externalID")):
        errs.append(E.forbidden(child("spec", "externalID"), "may not be updated"))
    return errs


# ConfigMap and Secret ---------------------------------------------------------------------
def _decoded_len(v: Any) -> int:
    # Secret data is base64 on the wire; upstream counts decoded bytes.
    if not isinstance(v, str):
        return 0
    try:
        return len(base64.b64decode(v, validate=True))
    except (binascii.Error, ValueError):
        return len(v)


def validate_config_map(obj: dict) -> Errs:
    errs = M.validate_object_meta(obj.get("metadata"), True, F.name_is_dns_subdomain)
    total = 0
    data, binary = d(obj.get("data")), d(obj.get("binaryData"))
    for k, v in data.items():
        errs += [E.invalid(key("data", k), k, m) for m in F.is_config_map_key(k)]
        if k in binary:
            errs.append(E.invalid(key("data", k), k, "duplicate of key present in binaryData"))
        total += len(s(v).encode())
    for k, v in binary.items():
        errs += [E.invalid(key("binaryData", k), k, m) for m in F.is_config_map_key(k)]
        total += _decoded_len(v)
    if total > MAX_SECRET_SIZE:
        errs.append(E.too_long("", MAX_SECRET_SIZE))
    return errs


def validate_config_map_update(new: dict, old: dict) -> Errs:
    errs = M.validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    if old.get("immutable") is True:
        if new.get("immutable") is not True:
            errs.append(E.forbidden("immutable", IMMUTABLE_WHEN_SET))
        if d(new.get("data")) != d(old.get("data")):
            errs.append(E.forbidden("data", IMMUTABLE_WHEN_SET))
        if d(new.get("binaryData")) != d(old.get("binaryData")):
            errs.append(E.forbidden("binaryData", IMMUTABLE_WHEN_SET))
    return errs + validate_config_map(new)


SECRET_REQUIRED_KEYS = {
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
}


def validate_secret(obj: dict) -> Errs:
    meta = d(obj.get("metadata"))
    errs = M.validate_object_meta(meta, True, F.name_is_dns_subdomain)
    data = d(obj.get("data"))
    total = 0
    for k, v in data.items():
        errs += [E.invalid(key("data", k), k, m) for m in F.is_config_map_key(k)]
        total += _decoded_len(v)
    if total > MAX_SECRET_SIZE:
        errs.append(E.too_long("data", MAX_SECRET_SIZE))
    t = s(obj.get("type"))
    if t == "kubernetes.io/service-account-token":
        if not s(d(meta.get("annotations")).get("kubernetes.io/service-account.name")):
            errs.append(E.required(key(child("metadata", "annotations"),
                                       "kubernetes.io/service-account.name")))
    elif t == "kubernetes.io/basic-auth":
        if "username" not in data and "password" not in data:
            errs.append(E.required(key("data", "username")))
            errs.append(E.required(key("data", "password")))
    elif t == "kubernetes.io/ssh-auth":
        if not _decoded_len(data.get("ssh-privatekey")):
            errs.append(E.required(key("data", "ssh-privatekey")))
    elif t in SECRET_REQUIRED_KEYS:
        for k in SECRET_REQUIRED_KEYS[t]:
            if k not in data:
                errs.append(E.required(key("data", k)))
    return errs


def validate_secret_update(new: dict, old: dict) -> Errs:
    errs = M.validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    if s(new.get("type")) != s(old.get("type")):
        errs.append(E.invalid("type", s(new.get("type")), "field is immutable"))
    if old.get("immutable") is True:
        if new.get("immutable") is not True:
            errs.append(E.forbidden("immutable", IMMUTABLE_WHEN_SET))
        if d(new.get("data")) != d(old.get("data")):
            errs.append(E.forbidden("data", IMMUTABLE_WHEN_SET))
    return errs + validate_secret(new)


# ServiceAccount --------------------------------------------------------------------------
def validate_service_account(obj: dict) -> Errs:
    return M.validate_object_meta(obj.get("metadata"), True, F.name_is_dns_subdomain)


def validate_service_account_update(new: dict, old: dict) -> Errs:
    return M.validate_object_meta_update(new.get("metadata"), old.get("metadata")) + \
        validate_service_account(new)
