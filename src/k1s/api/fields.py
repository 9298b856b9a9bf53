"""Field selectors (`?fieldSelector=spec.nodeName=n1,status.phase!=Failed`) and the fields each kind exposes.

Syntax, as upstream's fields.ParseSelector: comma-separated terms ANDed together, each
`field=value`, `field==value` or `field!=value`. In values, `\\,` `\\=` and `\\\\` escape the
characters that would otherwise split the selector; any other backslash sequence is an error.
An empty value is allowed (`involvedObject.namespace=` selects cluster-scoped objects' events).
A field an object does not have reads as "".

Which fields a kind accepts is upstream's per-kind "field label conversion": pods, nodes,
events, namespaces, secrets and services each list theirs, StatefulSets accept a historical
`status.successful` that never matches anything, and every other kind accepts only
`metadata.name` and `metadata.namespace`. The rejection texts differ between those three
families, and we keep each one, since kubectl prints them.

k1s extensions (upstream rejects these): PersistentVolumes accept `spec.claimRef.name`,
`spec.claimRef.namespace`, `spec.storageClassName` and `status.phase`; PersistentVolumeClaims
accept `spec.volumeName`, `spec.storageClassName` and `status.phase`. Controllers use them to
find a claim's volume without listing every volume.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from .registry import Resource
from .selectors import SelectorError, go_quote

__all__ = [
    "FieldRequirement", "FieldSelector", "parse_field_selector", "escape_value", "unescape_value",
    "field_set", "supported_fields", "check_supported", "SelectorError",
]

EQUALS = "="
NOT_EQUALS = "!="
# `!=` and `==` are tried before `=` so neither leaves a stray `=` in the value.
_OPERATORS = ("!=", "==", "=")


def escape_value(s: str) -> str:
    return s.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def unescape_value(s: str) -> str:
    if not any(c in s for c in "\\,="):
        return s
    out: list[str] = []
    in_slash = False
    for c in s:
        if in_slash:
            if c in "\\,=":
                out.append(c)
            else:
                raise SelectorError(
                    f"invalid field selector: invalid escape sequence: \\{c}")
            in_slash = False
            continue
        if c == "\\":
            in_slash = True
        elif c in ",=":
            # Upstream formats the rune with %v, which prints its code point.
            raise SelectorError(f"invalid field selector: unescaped character in value: {ord(c)}")
        else:
            out.append(c)
    if in_slash:
        raise SelectorError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    operator: str   # EQUALS or NOT_EQUALS (`==` is read as `=`, as upstream does)
    value: str

    def matches(self, fields: Mapping[str, str]) -> bool:
        have = fields.get(self.field, "")
        return have == self.value if self.operator == EQUALS else have != self.value

    def __str__(self) -> str:
        return f"{self.field}{self.operator}{escape_value(self.value)}"


@dataclass(frozen=True)
class FieldSelector:
    requirements: tuple[FieldRequirement, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, fields: Mapping[str, str]) -> bool:
        return all(r.matches(fields) for r in self.requirements)

    def requires_exact(self, field: str) -> str | None:
        """The value `field` must equal, if a term pins it (upstream's RequiresExactMatch)."""
        for r in self.requirements:
            if r.field == field and r.operator == EQUALS:
                return r.value
        return None

    def exact_name(self) -> str | None:
        """The name when the selector pins `metadata.name=` (the single-object fast path)."""
        return self.requires_exact("metadata.name")

    def exact_namespace(self) -> str | None:
        return self.requires_exact("metadata.namespace")

    @property
    def fields(self) -> frozenset[str]:
        return frozenset(r.field for r in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


EVERYTHING = FieldSelector()


def _split_terms(s: str) -> list[str]:
    terms: list[str] = []
    start = 0
    in_slash = False
    for i, c in enumerate(s):
        if in_slash:
            in_slash = False
        elif c == "\\":
            in_slash = True
        elif c == ",":
            terms.append(s[start:i])
            start = i + 1
    terms.append(s[start:])
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    for i in range(len(term)):
        for op in _OPERATORS:
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op):]
    return None


def parse_field_selector(s: str | None) -> FieldSelector:
    """Parse a `fieldSelector` query parameter; SelectorError with upstream's text on bad input."""
    if not s:
        return EVERYTHING
    reqs: list[FieldRequirement] = []
    # Upstream sorts the raw terms, which fixes the order str() prints them in.
    for part in sorted(_split_terms(s)):
        if part == "":
            continue
        split = _split_term(part)
        if split is None:
            raise SelectorError(f"invalid selector: '{s}'; can't understand '{part}'")
        lhs, op, rhs = split
        reqs.append(FieldRequirement(lhs, NOT_EQUALS if op == "!=" else EQUALS,
                                     unescape_value(rhs)))
    return FieldSelector(tuple(reqs))


# --- per-kind fields ---------------------------------------------------------------------------

_META = ("metadata.name", "metadata.namespace")

# (group, plural) -> labels accepted in selectors. Kinds absent here take the default pair.
_SUPPORTED: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "pods"): _META + ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
                           "spec.serviceAccountName", "spec.hostNetwork", "status.phase",
                           "status.podIP", "status.podIPs", "status.nominatedNodeName",
                           "spec.host"),
    ("", "nodes"): ("metadata.name", "spec.unschedulable"),
    ("", "events"): _META + ("involvedObject.kind", "involvedObject.namespace",
                             "involvedObject.name", "involvedObject.uid",
                             "involvedObject.apiVersion", "involvedObject.resourceVersion",
                             "involvedObject.fieldPath", "reason", "reportingComponent",
                             "source", "type"),
    ("events.k8s.io", "events"): _META + ("regarding.kind", "regarding.namespace",
                                          "regarding.name", "regarding.uid",
                                          "regarding.apiVersion", "regarding.resourceVersion",
                                          "regarding.fieldPath", "reason",
                                          "reportingController", "type"),
    ("", "namespaces"): ("metadata.name", "status.phase"),
    ("", "secrets"): _META + ("type",),
    ("", "services"): _META + ("spec.clusterIP", "spec.type"),
    ("apps", "statefulsets"): _META + ("status.successful",),
    # k1s extensions, see the module docstring.
    ("", "persistentvolumes"): _META + ("spec.claimRef.name", "spec.claimRef.namespace",
                                        "spec.storageClassName", "status.phase"),
    ("", "persistentvolumeclaims"): _META + ("spec.volumeName", "spec.storageClassName",
                                             "status.phase"),
}

# Kinds whose upstream conversion function says "field label not supported: X".
_STRICT_MESSAGE = {("", "pods"), ("", "nodes"), ("", "events"), ("events.k8s.io", "events"),
                   ("", "namespaces"), ("", "secrets"), ("", "services")}

# Old clients send spec.host; upstream reads it as spec.nodeName.
_ALIASES: dict[tuple[str, str], dict[str, str]] = {("", "pods"): {"spec.host": "spec.nodeName"}}


def _key(resource: Resource) -> tuple[str, str]:
    return (resource.group, resource.plural)


def supported_fields(resource: Resource) -> frozenset[str]:
    return frozenset(_SUPPORTED.get(_key(resource), _META))


def _unsupported(resource: Resource, label: str) -> SelectorError:
    key = _key(resource)
    if key in _STRICT_MESSAGE:
        return SelectorError(f"field label not supported: {label}")
    if key == ("apps", "statefulsets"):
        return SelectorError(f"field label not supported for appsv1.StatefulSet: {label}")
    return SelectorError(f"{go_quote(label)} is not a known field selector: only "
                         f"{go_quote('metadata.name')}, {go_quote('metadata.namespace')}")


def check_supported(resource: Resource, selector: FieldSelector) -> FieldSelector:
    """Refuse labels the kind does not select on (a 400 BadRequest carrying this message).

    Returns the selector with upstream's label aliases applied (`spec.host` -> `spec.nodeName`).
    """
    allowed = supported_fields(resource)
    aliases = _ALIASES.get(_key(resource), {})
    out = []
    for r in selector.requirements:
        if r.field not in allowed:
            raise _unsupported(resource, r.field)
        field = aliases.get(r.field, r.field)
        out.append(r if field == r.field else FieldRequirement(field, r.operator, r.value))
    return FieldSelector(tuple(out))


def _s(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _get(obj: Mapping, *path: str) -> Any:
    cur: Any = obj
    for p in path:
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(p)
    return cur


def _meta_fields(resource: Resource, obj: Mapping) -> dict[str, str]:
    md = obj.get("metadata") or {}
    return {"metadata.name": _s(md.get("name")),
            "metadata.namespace": _s(md.get("namespace")) if resource.namespaced else ""}


def _pod_fields(obj: Mapping) -> dict[str, str]:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    ips = status.get("podIPs") or []
    pod_ip = _s(ips[0].get("ip")) if ips and isinstance(ips[0], Mapping) else ""
    return {
        "spec.nodeName": _s(spec.get("nodeName")),
        "spec.restartPolicy": _s(spec.get("restartPolicy")),
        "spec.schedulerName": _s(spec.get("schedulerName")),
        "spec.serviceAccountName": _s(spec.get("serviceAccountName")),
        "spec.hostNetwork": "true" if spec.get("hostNetwork") else "false",
        "status.phase": _s(status.get("phase")),
        # upstream reads the first of podIPs, not podIP
        "status.podIP": pod_ip,
        "status.nominatedNodeName": _s(status.get("nominatedNodeName")),
        # status.podIPs is an accepted label upstream but never set: it always reads ""
    }


def _core_event_fields(obj: Mapping) -> dict[str, str]:
    """Selectable fields of an event, from either schema (core v1 or events.k8s.io/v1)."""
    if "regarding" in obj or "note" in obj or "deprecatedSource" in obj:
        ref = obj.get("regarding") or {}
        source = _get(obj, "deprecatedSource", "component")
    else:
        ref = obj.get("involvedObject") or {}
        source = _get(obj, "source", "component")
    reporting = _s(obj.get("reportingController") or obj.get("reportingComponent"))
    out = {f"involvedObject.{k}": _s(ref.get(k)) for k in
           ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")}
    out.update({
        "reason": _s(obj.get("reason")),
        "reportingComponent": reporting,
        "source": _s(source) or reporting,
        "type": _s(obj.get("type")),
    })
    return out


def field_set(resource: Resource, obj: Mapping) -> dict[str, str]:
    """The selectable fields of `obj`, keyed by the labels `resource`'s selectors use."""
    out = _meta_fields(resource, obj)
    key = _key(resource)
    if key == ("", "pods"):
        out.update(_pod_fields(obj))
    elif key in (("", "events"), ("events.k8s.io", "events")):
        # Both views share storage; both label families are filled so a selector checked
        # against one view still matches when evaluated against the storage resource.
        core = _core_event_fields(obj)
        out.update(core)
        out.update({f"regarding.{k}": core[f"involvedObject.{k}"] for k in
                    ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion",
                     "fieldPath")})
        out["reportingController"] = core["reportingComponent"]
    elif key == ("", "nodes"):
        out["spec.unschedulable"] = "true" if _get(obj, "spec", "unschedulable") else "false"
    elif key == ("", "namespaces"):
        out["status.phase"] = _s(_get(obj, "status", "phase"))
    elif key == ("", "secrets"):
        out["type"] = _s(obj.get("type"))
    elif key == ("", "services"):
        out["spec.clusterIP"] = _s(_get(obj, "spec", "clusterIP"))
        out["spec.type"] = _s(_get(obj, "spec", "type"))
    elif key == ("", "persistentvolumes"):
        out["spec.claimRef.name"] = _s(_get(obj, "spec", "claimRef", "name"))
        out["spec.claimRef.namespace"] = _s(_get(obj, "spec", "claimRef", "namespace"))
        out["spec.storageClassName"] = _s(_get(obj, "spec", "storageClassName"))
        out["status.phase"] = _s(_get(obj, "status", "phase"))
    elif key == ("", "persistentvolumeclaims"):
        out["spec.volumeName"] = _s(_get(obj, "spec", "volumeName"))
        out["spec.storageClassName"] = _s(_get(obj, "spec", "storageClassName"))
        out["status.phase"] = _s(_get(obj, "status", "phase"))
    return out
