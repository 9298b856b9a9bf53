"""OpenAPI v3: the index at /openapi/v3 and one document per group-version.

kubectl's strict validation looks, in the group-version document, for the PATCH operation of
the kind (by `x-kubernetes-group-version-kind`) with a `fieldValidation` parameter; `kubectl
explain` walks `components.schemas`. Paths are built here from the kind registry; schemas come
from api.schema (upstream's definitions). Each document is built once and addressed by a hash
of its bytes, as upstream does, so clients may cache it.
"""

from __future__ import annotations

import functools
import hashlib

import orjson

from ..api import registry, schema
from ..api.registry import Resource

META = "io.k8s.apimachinery.pkg.apis.meta.v1."


def _ref(name: str) -> dict:
    return {"$ref": schema.REF_PREFIX + name}


def _json_content(name: str) -> dict:
    return {"application/json": {"schema": _ref(name)},
            "application/yaml": {"schema": _ref(name)}}


def _param(name: str, desc: str, in_: str = "query", required: bool = False,
           type_: str = "string") -> dict:
    p = {"name": name, "in": in_, "description": desc, "schema": {"type": type_,
                                                                  "uniqueItems": True}}
    if required:
        p["required"] = True
    return p


WRITE_PARAMS = [
    _param("dryRun", "When present, indicates that modifications should not be persisted."),
    _param("fieldManager", "fieldManager is a name associated with the actor or entity that is "
                           "making these changes."),
    _param("fieldValidation", "fieldValidation instructs the server on how to handle objects in "
                              "the request (POST/PUT/PATCH) containing unknown or duplicate "
                              "fields. Valid values are: - Ignore - Warn - Strict"),
]
LIST_PARAMS = [
    _param("labelSelector", "A selector to restrict the list of returned objects by their labels."),
    _param("fieldSelector", "A selector to restrict the list of returned objects by their fields."),
    _param("limit", "limit is a maximum number of responses to return for a list call.",
           type_="integer"),
    _param("continue", "The continue option should be set when retrieving more results from "
                       "the server."),
    _param("resourceVersion", "resourceVersion sets a constraint on what resource versions a "
                              "request may be served from."),
    _param("resourceVersionMatch", "resourceVersionMatch determines how resourceVersion is "
                                   "applied to list calls."),
    _param("watch", "Watch for changes to the described resources.", type_="boolean"),
    _param("allowWatchBookmarks", "allowWatchBookmarks requests watch events with type "
                                  "\"BOOKMARK\".", type_="boolean"),
    _param("sendInitialEvents", "sendInitialEvents=true may be set together with watch=true.",
           type_="boolean"),
    _param("timeoutSeconds", "Timeout for the list/watch call.", type_="integer"),
]


def _op_name(r: Resource) -> str:
    g = r.group.split(".")[0] if r.group else "core"
    return g[:1].upper() + g[1:] + r.version[:1].upper() + r.version[1:]


def _paths_for(r: Resource) -> dict:
    kind_schema = schema.name_for_kind(r.group, r.version, r.kind)
    list_schema = schema.name_for_kind(r.group, r.version, r.kind + "List")
    gvk = {"group": r.group, "version": r.version, "kind": r.kind}
    base = "/api/v1" if not r.group else f"/apis/{r.group}/{r.version}"
    ns_part = "Namespaced" if r.namespaced else ""
    opn = _op_name(r)
    coll = f"{base}/namespaces/{{namespace}}/{r.plural}" if r.namespaced else f"{base}/{r.plural}"
    item = coll + "/{name}"
    common = [_param("name", f"name of the {r.kind}", "path", True)]
    if r.namespaced:
        ns_param = [_param("namespace", "object name and auth scope", "path", True)]
    else:
        ns_param = []

    def op(action: str, verb: str, body: str | None = None, resp: str | None = None,
           params: list | None = None, patch: bool = False, kind: dict | None = None) -> dict:
        o: dict = {"operationId": f"{verb}{opn}{ns_part}{r.kind}",
                   "x-kubernetes-action": action,
                   "x-kubernetes-group-version-kind": kind or gvk,
                   "tags": [r.group.split(".")[0] + "_" + r.version if r.group else "core_v1"],
                   "parameters": params or [],
                   "responses": {"200": {"description": "OK",
                                         "content": _json_content(resp)} if resp else
                                 {"description": "OK"}}}
        if body:
            if patch:
                o["requestBody"] = {"content": {
                    t: {"schema": _ref(META + "Patch")} for t in (
                        "application/apply-patch+yaml", "application/json-patch+json",
                        "application/merge-patch+json", "application/strategic-merge-patch+json")},
                    "required": True}
            else:
                o["requestBody"] = {"content": {"*/*": {"schema": _ref(body)}}, "required": True}
        return o

    paths = {
        coll: {"get": op("list", "list", resp=list_schema, params=LIST_PARAMS),
               "post": op("post", "create", kind_schema, kind_schema, WRITE_PARAMS),
               "delete": op("deletecollection", "deleteCollection", META + "DeleteOptions",
                            META + "Status", LIST_PARAMS),
               "parameters": ns_param},
        item: {"get": op("get", "read", resp=kind_schema),
               "put": op("put", "replace", kind_schema, kind_schema, WRITE_PARAMS),
               "patch": op("patch", "patch", kind_schema, kind_schema,
                           WRITE_PARAMS + [_param("force", "Force is going to \"force\" Apply "
                                                           "requests.", type_="boolean")],
                           patch=True),
               "delete": op("delete", "delete", META + "DeleteOptions", META + "Status",
                            [_param("gracePeriodSeconds", "The duration in seconds before the "
                                    "object should be deleted.", type_="integer"),
                             _param("propagationPolicy", "Whether and how garbage collection "
                                    "will be performed.")]),
               "parameters": common + ns_param},
    }
    if r.namespaced:
        paths[f"{base}/{r.plural}"] = {"get": dict(op("list", "list", resp=list_schema,
                                                      params=LIST_PARAMS),
                                                   operationId=f"list{opn}{r.kind}ForAllNamespaces")}
    for sub in r.subresources:
        if sub == "status":
            paths[item + "/status"] = {
                "get": dict(op("get", "read", resp=kind_schema),
                            operationId=f"read{opn}{ns_part}{r.kind}Status"),
                "put": dict(op("put", "replace", kind_schema, kind_schema, WRITE_PARAMS),
                            operationId=f"replace{opn}{ns_part}{r.kind}Status"),
                "patch": dict(op("patch", "patch", kind_schema, kind_schema, WRITE_PARAMS,
                                 patch=True), operationId=f"patch{opn}{ns_part}{r.kind}Status"),
                "parameters": common + ns_param}
        elif sub == "scale":
            scale = "io.k8s.api.autoscaling.v1.Scale"
            sk = {"group": "autoscaling", "version": "v1", "kind": "Scale"}
            paths[item + "/scale"] = {
                "get": dict(op("get", "read", resp=scale, kind=sk),
                            operationId=f"read{opn}{ns_part}{r.kind}Scale"),
                "put": dict(op("put", "replace", scale, scale, WRITE_PARAMS, kind=sk),
                            operationId=f"replace{opn}{ns_part}{r.kind}Scale"),
                "patch": dict(op("patch", "patch", scale, scale, WRITE_PARAMS, patch=True,
                                 kind=sk), operationId=f"patch{opn}{ns_part}{r.kind}Scale"),
                "parameters": common + ns_param}
    return paths


def _gv_key(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


@functools.lru_cache(maxsize=None)
def document(group: str, version: str) -> tuple[bytes, str] | None:
    """(bytes, hash) of the OpenAPI v3 document of one group-version."""
    rs = [r for r in registry.RESOURCES if r.group == group and r.version == version]
    if not rs:
        return None
    paths: dict = {}
    roots = [META + "Status", META + "DeleteOptions", META + "Patch"]
    for r in rs:
        paths.update(_paths_for(r))
        for k in (r.kind, r.kind + "List"):
            n = schema.name_for_kind(r.group, r.version, k)
            if n:
                roots.append(n)
        if "scale" in r.subresources:
            roots.append("io.k8s.api.autoscaling.v1.Scale")
    comps: dict = {}
    for root in roots:
        for n, d in schema.walk_schema(root):
            comps[n] = d
    doc = {"openapi": "3.0.0",
           "info": {"title": "Kubernetes", "version": schema.kube_version()},
           "paths": paths,
           "components": {"schemas": dict(sorted(comps.items()))}}
    raw = orjson.dumps(doc)
    return raw, hashlib.sha512(raw).hexdigest()[:128].upper()


@functools.lru_cache(maxsize=1)
def index() -> bytes:
    paths = {}
    for group, versions in registry.group_versions().items():
        for v in versions:
            d = document(group, v)
            if d is not None:
                key = _gv_key(group, v)
                paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={d[1]}"}
    return orjson.dumps({"paths": paths})
