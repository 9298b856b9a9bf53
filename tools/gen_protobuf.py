#!/usr/bin/env python3
"""Generate src/k1s/api/data/protobuf-fields.json: the protobuf field numbers of the core/v1 API.

kubectl's typed generators (`kubectl create namespace|configmap|secret|service|serviceaccount`)
send request bodies as `application/vnd.kubernetes.protobuf`. To decode them without a protobuf
library at runtime, k1s needs, for every message, which field number carries which JSON field.
Protobuf field numbers never change, so an old but complete descriptor set is a sound source.

The source is the PyPI sdist `k8s-proto==0.0.3` (a development-time input only). It contains the
protoc-generated `generated_pb2.py` modules of k8s.io/api/core/v1 and of apimachinery's meta/v1,
runtime, runtime/schema, util/intstr and api/resource. Those modules target protobuf 3.x and need
not import under a newer protobuf, so this script never imports them: it reads each file's
`serialized_pb=_b('...')` literal with `ast`, and parses the bytes as a FileDescriptorProto.

Run:
    pip download --no-deps -d /tmp/k8s-proto k8s-proto==0.0.3
    pip install protobuf               # only for descriptor_pb2, here at development time
    python tools/gen_protobuf.py /tmp/k8s-proto/k8s-proto-0.0.3.tar.gz
The output is committed; the runtime (k1s.apiserver.protobuf) reads only the JSON.

Output shape (compact JSON):
    {"messages": {"<full.message.Name>": {"<field number>": [json name, proto type, type name,
                                                            repeated 0|1, map 0|1, inline 0|1],
                                           ...}, ...},
     "kinds": {"<apiVersion>/<Kind>": "<full.message.Name>", ...}}
- proto type is the descriptor's scalar name ("string", "int64", "bytes", "message", ...);
- type name is the full message name for "message" fields, "" otherwise;
- a map field points at its synthetic `...Entry` message (key = field 1, value = field 2);
- inline marks a Go struct embedded with `json:",inline"` (Volume.volumeSource, Probe.handler,
  the LocalObjectReference in ConfigMapKeySelector, ...): its fields belong in the parent's JSON.
Field names in the k8s .proto files are the Go json tags (go-to-protobuf uses them), so the
descriptor's field name is the JSON name.
"""

from __future__ import annotations

import ast
import json
import os
import sys
import tarfile

from google.protobuf import descriptor_pb2

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "src", "k1s", "api", "data", "protobuf-fields.json")

# The generated modules we read, inside the sdist (path suffixes).
SOURCES = [
    "k8s/io/api/core/v1/generated_pb2.py",
    "k8s/io/apimachinery/pkg/apis/meta/v1/generated_pb2.py",
    "k8s/io/apimachinery/pkg/runtime/generated_pb2.py",
    "k8s/io/apimachinery/pkg/runtime/schema/generated_pb2.py",
    "k8s/io/apimachinery/pkg/util/intstr/generated_pb2.py",
    "k8s/io/apimachinery/pkg/api/resource/generated_pb2.py",
]

CORE_V1 = "k8s.io.api.core.v1"
META_V1 = "k8s.io.apimachinery.pkg.apis.meta.v1"
# meta/v1 types that every group-version registers as kinds of its own (sent as bodies).
META_KINDS = ["DeleteOptions", "Status"]
# core/v1 messages that carry ObjectMeta but are not kinds of their own.
NOT_KINDS = {"PodTemplateSpec"}

# Fields added to the API after 2019, which the k8s-proto descriptors lack. Each number is the
# one in the Go struct tag upstream (`protobuf:"bytes,7,opt,name=fieldsV1"` in
# apimachinery/pkg/apis/meta/v1/types.go); protobuf numbers are never reused or changed.
# Go structs embedded with `json:",inline"`: go-to-protobuf gives them a field of their own, but
# in JSON their fields sit in the parent. check_against_openapi() below confirms this list.
INLINE = {
    (f"{CORE_V1}.Volume", "volumeSource"),
    (f"{CORE_V1}.PersistentVolumeSpec", "persistentVolumeSource"),
    (f"{CORE_V1}.Probe", "handler"),
    (f"{CORE_V1}.EphemeralContainer", "ephemeralContainerCommon"),
    (f"{CORE_V1}.ConfigMapEnvSource", "localObjectReference"),
    (f"{CORE_V1}.ConfigMapKeySelector", "localObjectReference"),
    (f"{CORE_V1}.ConfigMapProjection", "localObjectReference"),
    (f"{CORE_V1}.ConfigMapVolumeSource", "localObjectReference"),
    (f"{CORE_V1}.SecretEnvSource", "localObjectReference"),
    (f"{CORE_V1}.SecretKeySelector", "localObjectReference"),
    (f"{CORE_V1}.SecretProjection", "localObjectReference"),
}
# Fields the 2019 descriptors have and today's API has dropped (never sent by current clients).
REMOVED = {
    (f"{CORE_V1}.EventSeries", "state"),
    (f"{META_V1}.ObjectMeta", "initializers"),
    (f"{META_V1}.ObjectMeta", "clusterName"),
    (f"{META_V1}.ManagedFieldsEntry", "fields"),
}
OPENAPI = os.path.join(HERE, "..", "src", "k1s", "api", "data", "openapi-schemas.json")

AUTOSCALING_V1 = "k8s.io.api.autoscaling.v1"

SUPPLEMENT = {
    f"{META_V1}.FieldsV1": {"1": ["Raw", "bytes", "", 0, 0, 0]},
    f"{META_V1}.ManagedFieldsEntry": {
        "6": ["fieldsType", "string", "", 0, 0, 0],
        "7": ["fieldsV1", "message", f"{META_V1}.FieldsV1", 0, 0, 0],
        "8": ["subresource", "string", "", 0, 0, 0],
    },
    # autoscaling/v1 Scale: `kubectl scale --current-replicas` PUTs it with the typed client
    f"{AUTOSCALING_V1}.Scale": {
        "1": ["metadata", "message", f"{META_V1}.ObjectMeta", 0, 0, 0],
        "2": ["spec", "message", f"{AUTOSCALING_V1}.ScaleSpec", 0, 0, 0],
        "3": ["status", "message", f"{AUTOSCALING_V1}.ScaleStatus", 0, 0, 0],
    },
    f"{AUTOSCALING_V1}.ScaleSpec": {"1": ["replicas", "int32", "", 0, 0, 0]},
    f"{AUTOSCALING_V1}.ScaleStatus": {"1": ["replicas", "int32", "", 0, 0, 0],
                                      "2": ["selector", "string", "", 0, 0, 0]},
}
# Kinds outside core/v1 whose messages come from SUPPLEMENT.
EXTRA_KINDS = {"autoscaling/v1/Scale": f"{AUTOSCALING_V1}.Scale"}

_TYPE_NAMES = {v: k[len("TYPE_"):].lower()
               for k, v in descriptor_pb2.FieldDescriptorProto.Type.items()}


def serialized_descriptor(source: str) -> bytes:
    """The bytes of the `serialized_pb=_b('...')` argument in a generated_pb2.py module.

    Parsed with `ast` (never executed): the first keyword argument named serialized_pb whose
    value is `_b(<str literal>)`. `_b` there is `lambda x: x.encode('latin1')` on Python 3.
    """
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.keyword) and node.arg == "serialized_pb":
            call = node.value
            if (isinstance(call, ast.Call) and call.args
                    and isinstance(call.args[0], ast.Constant)
                    and isinstance(call.args[0].value, str)):
                return call.args[0].value.encode("latin1")
    raise ValueError("no serialized_pb=_b('...') literal found")


def walk_messages(prefix: str, messages, out: dict) -> None:
    """Add every message (nested ones too, e.g. map entries) of one scope to `out`."""
    for msg in messages:
        full = f"{prefix}.{msg.name}"
        nested_maps = {f"{full}.{n.name}" for n in msg.nested_type if n.options.map_entry}
        fields = {}
        for f in msg.field:
            ptype = _TYPE_NAMES[f.type]
            tname = f.type_name.lstrip(".") if ptype in ("message", "enum") else ""
            repeated = int(f.label == descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED)
            is_map = int(tname in nested_maps)
            inline = int((full, f.name) in INLINE)
            fields[str(f.number)] = [f.name, ptype, tname, repeated, is_map, inline]
        out[full] = fields
        walk_messages(full, msg.nested_type, out)


def kinds_of(messages: dict) -> dict:
    """Map `v1/<Kind>` to messages: the core/v1 ones carrying Object- or ListMeta, plus meta."""
    kinds = {}
    meta_types = {f"{META_V1}.ObjectMeta", f"{META_V1}.ListMeta"}
    for full, fields in messages.items():
        scope, _, name = full.rpartition(".")
        if scope != CORE_V1:
            continue
        first = fields.get("1")
        if (first and first[0] == "metadata" and first[2] in meta_types
                and name not in NOT_KINDS):
            kinds[f"v1/{name}"] = full
    for name in META_KINDS:
        kinds[f"v1/{name}"] = f"{META_V1}.{name}"
        kinds[f"meta.k8s.io/v1/{name}"] = f"{META_V1}.{name}"
    kinds.update(EXTRA_KINDS)
    return dict(sorted(kinds.items()))


def check_against_openapi(messages: dict) -> list[str]:
    """Field names that neither the OpenAPI schemas k1s serves nor INLINE/REMOVED explain.

    The committed OpenAPI definitions (tools/gen_openapi.py) hold the JSON property names of
    every kind k1s serves; a protobuf field missing there is an inline embedding or a removed
    field, and anything else means this table would produce a wrong JSON name.
    """
    if not os.path.exists(OPENAPI):
        return []
    with open(OPENAPI) as fh:
        schemas = json.load(fh)["schemas"]
    problems = []
    for full, fields in messages.items():
        definition = schemas.get("io." + full.replace("k8s.io.", "k8s.", 1))
        if definition is None or full.startswith(("k8s.io.apimachinery.pkg.util.",
                                                    "k8s.io.apimachinery.pkg.api.resource.",
                                                    "k8s.io.apimachinery.pkg.runtime.")):
            continue
        props = definition.get("properties", {})
        if not props:   # types with a custom JSON form (Time, MicroTime, FieldsV1)
            continue
        for spec in fields.values():
            name = spec[0]
            if name not in props and (full, name) not in INLINE | REMOVED:
                problems.append(f"{full}.{name}")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    messages: dict = {}
    with tarfile.open(argv[1]) as tar:
        members = {m.name: m for m in tar.getmembers()}
        for suffix in SOURCES:
            name = next((n for n in members if n.endswith(suffix)), None)
            if name is None:
                raise SystemExit(f"{suffix} not found in {argv[1]}")
            source = tar.extractfile(members[name]).read().decode("utf-8")
            fdp = descriptor_pb2.FileDescriptorProto.FromString(serialized_descriptor(source))
            walk_messages(fdp.package, fdp.message_type, messages)
    for full, fields in SUPPLEMENT.items():
        messages.setdefault(full, {}).update(fields)
    for problem in check_against_openapi(messages):
        print(f"warning: {problem} is not a JSON property upstream (inline? removed?)",
              file=sys.stderr)
    out = {"source": "k8s-proto==0.0.3 (generated_pb2.py descriptors)",
           "messages": dict(sorted(messages.items())),
           "kinds": kinds_of(messages)}
    with open(OUT, "w") as fh:
        json.dump(out, fh, separators=(",", ":"))
        fh.write("\n")
    print(f"wrote {OUT}: {len(messages)} messages, {len(out['kinds'])} kinds")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
