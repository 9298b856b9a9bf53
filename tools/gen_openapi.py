#!/usr/bin/env python3
"""Generate src/k1s/api/data/openapi-schemas.json from upstream's published definitions.

The source is the PyPI package `kubernetes-validate` (a development dependency only), which
ships the definitions of every Kubernetes release's OpenAPI document, with field descriptions,
required fields, GVKs and the strategic-merge metadata (`x-kubernetes-patch-merge-key`,
`x-kubernetes-patch-strategy`, list types). We keep the closure of the kinds k1s serves and
rewrite it into the OpenAPI v3 component form kube-apiserver serves:

- `$ref: #/$defs/X`            -> `$ref: #/components/schemas/X` (wrapped in `allOf` when the
                                   reference carries its own description, as upstream does);
- `type: [T, "null"]`          -> `type: T`;
- IntOrString / Quantity       -> upstream's string schemas (`format: int-or-string`);
- the apiVersion/kind enums that kubernetes-json-schema adds are dropped (upstream has none).

Run:  pip install kubernetes-validate==1.37.0 && python tools/gen_openapi.py
The output is committed; the runtime never imports kubernetes-validate.
"""

from __future__ import annotations

import json
import os
import sys

KUBE_VERSION = "v1.32.0"   # the release whose API k1s reports (/version says v1.32.x)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "src"))

from k1s.api import registry  # noqa: E402

OUT = os.path.join(HERE, "..", "src", "k1s", "api", "data", "openapi-schemas.json")

# Kinds served outside the registry (subresource bodies, meta types kubectl reads).
EXTRA = [
    "io.k8s.api.autoscaling.v1.Scale",
    "io.k8s.api.core.v1.Binding",
    "io.k8s.api.policy.v1.Eviction",
    "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
    "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions",
    "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent",
    "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList",
    "io.k8s.apimachinery.pkg.apis.meta.v1.APIGroupList",
    "io.k8s.apimachinery.pkg.apis.meta.v1.Patch",
]

QUANTITY_DOC = (
    "Quantity is a fixed-point representation of a number. It provides convenient "
    "marshaling/unmarshaling in JSON and YAML, in addition to String() and AsInt64() "
    "accessors.\n\nThe serialization format is:\n\n``` <quantity>        ::= "
    "<signedNumber><suffix>\n```\n\nSuffixes: binary SI (Ki | Mi | Gi | Ti | Pi | Ei), "
    "decimal SI (m | \"\" | k | M | G | T | P | E), or a decimal exponent (e | E followed by "
    "a signed number).")
INTORSTRING_DOC = (
    "IntOrString is a type that can hold an int32 or a string.  When used in JSON or YAML "
    "marshalling and unmarshalling, it produces or consumes the inner type.  This allows you "
    "to have, for example, a JSON field that can accept a name or number.")


def load_source() -> dict:
    import kubernetes_validate  # development dependency
    base = os.path.join(os.path.dirname(kubernetes_validate.__file__), "kubernetes-json-schema",
                        f"{KUBE_VERSION}-local", "_definitions.json")
    with open(base) as f:
        return json.load(f)["$defs"]


def convert(node, top=False):
    """Rewrite one schema node into upstream's OpenAPI v3 form."""
    if isinstance(node, list):
        return [convert(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for k, v in node.items():
        if k == "$ref":
            out[k] = v.replace("#/$defs/", "#/components/schemas/")
        elif k == "type" and isinstance(v, list):
            types = [t for t in v if t != "null"]
            out[k] = types[0] if len(types) == 1 else types
        elif k in ("properties",):
            out[k] = {pk: convert(pv) for pk, pv in v.items()}
        else:
            out[k] = convert(v)
    if "$ref" in out and len(out) > 1:
        ref = out.pop("$ref")
        out = {"allOf": [{"$ref": ref}], **out}
    return out


def main() -> None:
    src = load_source()
    by_gvk = {}
    for name, d in src.items():
        for gvk in d.get("x-kubernetes-group-version-kind", []) or []:
            by_gvk[(gvk["group"], gvk["version"], gvk["kind"])] = name

    roots = list(EXTRA)
    for r in registry.RESOURCES:
        for kind in (r.kind, r.kind + "List"):
            name = by_gvk.get((r.group, r.version, kind))
            if name is None:
                raise SystemExit(f"no upstream definition for {r.group}/{r.version} {kind}")
            roots.append(name)

    keep: dict[str, dict] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in keep:
            continue
        d = src[name]
        keep[name] = d
        stack = [d]
        while stack:
            n = stack.pop()
            if isinstance(n, dict):
                ref = n.get("$ref")
                if isinstance(ref, str) and ref.startswith("#/$defs/"):
                    todo.append(ref[len("#/$defs/"):])
                stack.extend(n.values())
            elif isinstance(n, list):
                stack.extend(n)

    out = {}
    for name, d in sorted(keep.items()):
        c = convert(d, top=True)
        props = c.get("properties", {})
        for tm in ("apiVersion", "kind"):
            if tm in props:
                props[tm].pop("enum", None)
        out[name] = c
    out["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] = {
        "description": INTORSTRING_DOC, "format": "int-or-string", "type": "string"}
    out["io.k8s.apimachinery.pkg.api.resource.Quantity"] = {
        "description": QUANTITY_DOC, "type": "string"}

    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"kubeVersion": KUBE_VERSION, "schemas": out}, f, sort_keys=True,
                  separators=(",", ":"))
    print(f"wrote {len(out)} schemas to {os.path.relpath(OUT)} "
          f"({os.path.getsize(OUT) // 1024} KiB)")


if __name__ == "__main__":
    main()
