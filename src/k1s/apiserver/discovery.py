"""API discovery documents, built once from the kind registry.

kubectl 1.30+ asks for aggregated discovery (apidiscovery.k8s.io v2, then v2beta1) and reads it
only when the response's Content-Type carries the `g=...;v=...;as=APIGroupDiscoveryList`
parameters; older clients and fallbacks use the legacy documents (`/api`, `/api/v1`, `/apis`,
`/apis/<group>/<version>`). Both are served.
"""

from __future__ import annotations

import functools

import orjson

from ..api import registry
from ..api.registry import Resource
from .request import parse_accept

SUBRESOURCE_KINDS = {
    "status": None,                                          # the resource's own kind
    "scale": ("autoscaling", "v1", "Scale"),
    "binding": ("", "v1", "Binding"),
    "eviction": ("policy", "v1", "Eviction"),
    "finalize": None,
    "log": ("", "v1", "Pod"),
    "exec": ("", "v1", "PodExecOptions"),
    "attach": ("", "v1", "PodAttachOptions"),
    "portforward": ("", "v1", "PodPortForwardOptions"),
}
SUBRESOURCE_VERBS = {
    "status": ["get", "patch", "update"], "scale": ["get", "patch", "update"],
    "binding": ["create"], "eviction": ["create"], "finalize": ["update"],
    "log": ["get"], "exec": ["create", "get"], "attach": ["create", "get"],
    "portforward": ["create", "get"],
}


def _resources(group: str, version: str) -> list[Resource]:
    return [r for r in registry.RESOURCES if r.group == group and r.version == version]


def _sub_kind(r: Resource, sub: str) -> dict:
    gvk = SUBRESOURCE_KINDS.get(sub)
    if gvk is None:
        return {"group": r.group, "version": r.version, "kind": r.kind}
    return {"group": gvk[0], "version": gvk[1], "kind": gvk[2]}


def _aggregated_resource(r: Resource) -> dict:
    d = {"resource": r.plural,
         "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
         "scope": "Namespaced" if r.namespaced else "Cluster",
         "singularResource": r.singular,
         "verbs": list(r.verbs)}
    if r.short_names:
        d["shortNames"] = list(r.short_names)
    if r.categories:
        d["categories"] = list(r.categories)
    if r.subresources:
        d["subresources"] = [{"subresource": s, "responseKind": _sub_kind(r, s),
                              "verbs": SUBRESOURCE_VERBS.get(s, ["get"])}
                             for s in r.subresources]
    return d


def _group_item(group: str) -> dict:
    versions = registry.group_versions()[group]
    return {"metadata": {"name": group},
            "versions": [{"version": v, "freshness": "Current",
                          "resources": [_aggregated_resource(r) for r in _resources(group, v)]}
                         for v in versions]}


@functools.lru_cache(maxsize=None)
def aggregated(core: bool, version: str) -> bytes:
    """APIGroupDiscoveryList for /api (core) or /apis, in apidiscovery.k8s.io/<version>."""
    groups = [""] if core else [g for g in registry.GROUP_ORDER if g]
    doc = {"kind": "APIGroupDiscoveryList", "apiVersion": f"apidiscovery.k8s.io/{version}",
           "metadata": {}, "items": [_group_item(g) for g in groups]}
    return orjson.dumps(doc)


def aggregated_content_type(version: str) -> str:
    return f"application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList"


def wants_aggregated(accept: str | None) -> str | None:
    """The aggregated discovery version the client prefers, or None for legacy."""
    for mt in parse_accept(accept):
        if mt.params.get("as") == "APIGroupDiscoveryList" and \
                mt.params.get("g") == "apidiscovery.k8s.io":
            v = mt.params.get("v")
            if v in ("v2", "v2beta1"):
                return v
        elif mt.type in ("application/json", "*/*") and not mt.params:
            return None
    return None


def legacy_api_versions(server_address: str) -> bytes:
    return orjson.dumps({"kind": "APIVersions", "versions": ["v1"],
                         "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                         "serverAddress": server_address}]})


def _group_doc(group: str) -> dict:
    versions = registry.group_versions()[group]
    gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": gvs, "preferredVersion": gvs[0]}


@functools.lru_cache(maxsize=None)
def legacy_group_list() -> bytes:
    return orjson.dumps({"kind": "APIGroupList", "apiVersion": "v1",
                         "groups": [_group_doc(g) for g in registry.GROUP_ORDER if g]})


@functools.lru_cache(maxsize=None)
def legacy_group(group: str) -> bytes | None:
    if group not in registry.group_versions() or not group:
        return None
    return orjson.dumps({"kind": "APIGroup", "apiVersion": "v1", **_group_doc(group)})


@functools.lru_cache(maxsize=None)
def legacy_resource_list(group: str, version: str) -> bytes | None:
    rs = _resources(group, version)
    if not rs:
        return None
    items = []
    for r in rs:
        d = {"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
             "kind": r.kind, "verbs": list(r.verbs)}
        if r.short_names:
            d["shortNames"] = list(r.short_names)
        if r.categories:
            d["categories"] = list(r.categories)
        items.append(d)
        for s in r.subresources:
            k = _sub_kind(r, s)
            sd = {"name": f"{r.plural}/{s}", "singularName": "", "namespaced": r.namespaced,
                  "kind": k["kind"], "verbs": SUBRESOURCE_VERBS.get(s, ["get"])}
            if k["group"] != r.group or k["version"] != r.version:
                sd["group"] = k["group"]
                sd["version"] = k["version"]
            items.append(sd)
    gv = f"{group}/{version}" if group else version
    return orjson.dumps({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
                         "resources": items})
