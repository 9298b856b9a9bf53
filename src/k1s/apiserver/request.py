"""Turning an HTTP request into what it asks for: the resource, the verb, and the options.

`parse_path` follows upstream's RequestInfoFactory: `/api/v1/namespaces/{ns}/{resource}/{name}/
{subresource}` and `/apis/{group}/{version}/...`, where `namespaces/{name}/status|finalize` are
subresources of the namespace itself. `parse_accept` picks the representation (plain JSON or a
meta.k8s.io Table) from the Accept header kubectl sends. Query values are parsed like Go's
strconv.ParseBool and ParseInt, because clients send `watch=True` or `watch=1`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from ..api import registry
from ..api.errors import StatusError, bad_request, path_not_found
from ..api.registry import Resource

NAMESPACE_SUBRESOURCES = ("status", "finalize")


@dataclass(frozen=True)
class RequestInfo:
    resource: Resource
    namespace: str | None
    name: str | None
    subresource: str | None


@functools.lru_cache(maxsize=8192)
def parse_path(path: str) -> RequestInfo | None:
    """Parse a resource path; None if it is not a resource path at all."""
    parts = [p for p in path.split("/") if p]
    if not parts:
        return None
    if parts[0] == "api":
        if len(parts) < 3:
            return None
        group, version, rest = "", parts[1], parts[2:]
    elif parts[0] == "apis":
        if len(parts) < 4:
            return None
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    namespace = None
    if rest[0] == "namespaces" and len(rest) > 1:
        if len(rest) > 2 and rest[2] not in NAMESPACE_SUBRESOURCES:
            namespace = rest[1]
            rest = rest[2:]
    resource = registry.lookup(group, version, rest[0])
    if resource is None:
        raise path_not_found()
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else None
    if len(rest) > 3:
        raise path_not_found()
    if resource.namespaced and namespace is None and rest[0] != "namespaces" and name is not None:
        # /api/v1/pods/web: a namespaced resource addressed without its namespace
        raise path_not_found()
    if not resource.namespaced and namespace is not None:
        raise path_not_found()
    if sub is not None and sub not in resource.subresources:
        raise path_not_found()
    return RequestInfo(resource, namespace, name, sub)


def parse_bool(value: str | None, name: str = "") -> bool:
    """Go's strconv.ParseBool."""
    if value is None or value == "":
        return False
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise bad_request(f'invalid boolean value "{value}" for parameter {name}')


def parse_int(value: str | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise bad_request(f'invalid value "{value}" for parameter {name}: must be an integer')


@dataclass
class MediaType:
    type: str           # "application/json"
    params: dict


def parse_accept(accept: str | None) -> list[MediaType]:
    out = []
    for part in (accept or "").split(","):
        part = part.strip()
        if not part:
            continue
        fields = [f.strip() for f in part.split(";")]
        params = {}
        for f in fields[1:]:
            k, _, v = f.partition("=")
            params[k.strip()] = v.strip()
        out.append(MediaType(fields[0].lower(), params))
    return out


# What a GET/LIST can answer with
AS_JSON = "json"
AS_TABLE = "table"
AS_PARTIAL = "partial"   # PartialObjectMetadata (metadata-only clients)


@functools.lru_cache(maxsize=256)
def negotiate_output(accept: str | None) -> tuple[str, str]:
    """(representation, table API version) for an object or list response."""
    for mt in parse_accept(accept):
        if mt.type not in ("application/json", "*/*", "application/*"):
            continue
        as_ = mt.params.get("as")
        if as_ == "Table" and mt.params.get("g") == "meta.k8s.io" and \
                mt.params.get("v") in ("v1", "v1beta1"):
            return AS_TABLE, mt.params["v"]
        if as_ in ("PartialObjectMetadata", "PartialObjectMetadataList") and \
                mt.params.get("g") == "meta.k8s.io":
            return AS_PARTIAL, mt.params.get("v", "v1")
        if as_ is None:
            return AS_JSON, ""
    return AS_JSON, ""


def wants_protobuf_only(accept: str | None) -> bool:
    types = [mt.type for mt in parse_accept(accept)]
    return bool(types) and all(t == "application/vnd.kubernetes.protobuf" for t in types)


def not_acceptable() -> StatusError:
    return StatusError(406, "NotAcceptable",
                       "only the following media types are accepted: application/json, "
                       "application/yaml, application/vnd.kubernetes.protobuf")
