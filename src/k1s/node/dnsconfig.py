"""A pod's /etc/resolv.conf as kubelet forms it (pkg/kubelet/network/dns): pure, from the pod,
the cluster DNS address and the node's own resolv.conf text.

dnsPolicy (default ClusterFirst):
- ClusterFirst: the cluster DNS server; search `<ns>.svc.<domain> svc.<domain> <domain>`
  followed by the node's own search domains; `options ndots:5`. A hostNetwork pod gets the
  node's configuration instead (Default), unless its policy is ClusterFirstWithHostNet.
  Without a cluster DNS server, Default (kubelet records MissingClusterDNS).
- Default: the node's resolv.conf (nameservers, search, options).
- None: nothing but what spec.dnsConfig gives.
spec.dnsConfig is then merged in: its nameservers and searches appended (duplicates dropped,
order kept), its options override the same-named ones.
Limits kubelet applies (and warns about, DNSConfigForming): at most 3 nameservers, at most 32
search domains and 2048 characters of them; the rest is dropped. `warnings` are the events to
record: (reason, message).
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_NAMESERVERS = 3          # glibc's MAXNS
MAX_SEARCHES = 32
MAX_SEARCH_CHARS = 2048
DEFAULT_OPTIONS = ("ndots:5",)


@dataclass(frozen=True)
class ResolvConf:
    nameservers: list[str] = field(default_factory=list)
    searches: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)   # (event reason, message)

    def render(self) -> str:
        lines = []
        if self.searches:
            lines.append("search " + " ".join(self.searches))
        lines += [f"nameserver {s}" for s in self.nameservers]
        if self.options:
            lines.append("options " + " ".join(self.options))
        return "\n".join(lines) + "\n"


def read_node_resolv_conf(path: str = "/etc/resolv.conf") -> str:
    """The node's resolv.conf text ('' when unreadable): the one read this module leaves to
    its callers' threads."""
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def parse(text: str) -> ResolvConf:
    """nameservers, search domains and options of a resolv.conf (the last search line wins,
    as in glibc; `domain` counts as a search line)."""
    servers, searches, options = [], [], []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split(";", 1)[0].split()
        if not words:
            continue
        if words[0] == "nameserver" and len(words) > 1:
            servers.append(words[1])
        elif words[0] in ("search", "domain"):
            searches = words[1:]
        elif words[0] == "options":
            options += words[1:]
    return ResolvConf(servers, searches, options)


def _dedupe(items) -> list[str]:
    out: list[str] = []
    for i in items:
        if i and i not in out:
            out.append(i)
    return out


def _merge_options(base: list[str], extra: list[dict]) -> list[str]:
    """Options by name; a pod's option replaces the same-named one (kubelet's mergeDNSOptions)."""
    merged: dict[str, str] = {}
    for o in base:
        name, _, value = o.partition(":")
        merged[name] = o
    for o in extra:
        name = str(o.get("name") or "")
        if not name:
            continue
        value = o.get("value")
        merged[name] = f"{name}:{value}" if value is not None else name
    return list(merged.values())


def _limit(conf: ResolvConf) -> ResolvConf:
    warnings = list(conf.warnings)
    servers, searches = conf.nameservers, conf.searches
    if len(servers) > MAX_NAMESERVERS:
        warnings.append(("DNSConfigForming",
                         "Nameserver limits were exceeded, some nameservers have been omitted, "
                         f"the applied nameserver line is: {' '.join(servers[:MAX_NAMESERVERS])}"))
        servers = servers[:MAX_NAMESERVERS]
    if len(searches) > MAX_SEARCHES or len(" ".join(searches)) > MAX_SEARCH_CHARS:
        kept: list[str] = []
        for s in searches:
            if len(kept) == MAX_SEARCHES or len(" ".join(kept + [s])) > MAX_SEARCH_CHARS:
                break
            kept.append(s)
        warnings.append(("DNSConfigForming",
                         "Search Line limits were exceeded, some search paths have been "
                         f"omitted, the applied search line is: {' '.join(kept)}"))
        searches = kept
    return ResolvConf(servers, searches, conf.options, warnings)


def pod_resolv_conf(pod: dict, cluster_dns: str | None, host_text: str,
                    cluster_domain: str = "cluster.local") -> ResolvConf:
    spec = pod.get("spec") or {}
    ns = (pod.get("metadata") or {}).get("namespace") or "default"
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    host = parse(host_text)
    warnings: list[tuple[str, str]] = []
    if policy == "ClusterFirst" and spec.get("hostNetwork"):
        policy = "Default"
    if policy in ("ClusterFirst", "ClusterFirstWithHostNet") and not cluster_dns:
        m = pod.get("metadata") or {}
        warnings.append(("MissingClusterDNS",
                         f'pod: "{m.get("name", "")}_{ns}({m.get("uid", "")})". kubelet does '
                         'not have ClusterDNS IP configured and cannot create Pod using '
                         '"ClusterFirst" policy. Falling back to "Default" policy.'))
        policy = "Default"
    if policy in ("ClusterFirst", "ClusterFirstWithHostNet"):
        servers = [cluster_dns or ""]
        searches = [f"{ns}.svc.{cluster_domain}", f"svc.{cluster_domain}", cluster_domain,
                    *host.searches]
        options = list(DEFAULT_OPTIONS)
    elif policy == "None":
        servers, searches, options = [], [], []
    else:                                                   # Default
        servers, searches, options = host.nameservers, host.searches, host.options
    extra = spec.get("dnsConfig") or {}
    servers = _dedupe([*servers, *(extra.get("nameservers") or ())])
    searches = _dedupe([*searches, *(extra.get("searches") or ())])
    options = _merge_options(options, list(extra.get("options") or ()))
    return _limit(ResolvConf(servers, searches, options, warnings))
