"""Decode Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`) into JSON form.

kubectl's typed generators (`kubectl create namespace|configmap|secret generic|service|
serviceaccount|quota ...`) POST their objects as protobuf and never fall back to JSON. k1s keeps
answering in JSON (kubectl accepts it); only these request bodies need decoding, so this module
turns one into the dict the same object would have been as JSON, and the rest of the request
path never sees protobuf.

Wire format. A body is the 4-byte magic `k8s\\x00` followed by a `runtime.Unknown` message:
field 1 typeMeta {1 apiVersion, 2 kind}, field 2 raw (the object's own message, e.g.
k8s.io.api.core.v1.Namespace), field 3 contentEncoding, field 4 contentType. Messages use the
plain protobuf encoding: each field is a varint key `number << 3 | wire type`, then a varint
(type 0), 8 bytes (type 1), a varint length and that many bytes (type 2) or 4 bytes (type 5).
The field numbers of each message come from `k1s/api/data/protobuf-fields.json`, produced by
`tools/gen_protobuf.py`; field names there are already the JSON names. Field numbers the table
does not know (fields added to the API after the table's source) are skipped silently, as
protobuf decoders do. No protobuf library is needed.

JSON mapping (what Go's decode-into-struct followed by encoding/json gives):
- int32/int64 are two's-complement varints (so -1 arrives as ten bytes), bool is a varint,
  `bytes` become base64 strings (Secret.data, ConfigMap.binaryData values);
- map<K,V> fields arrive as repeated entry messages {1 key, 2 value} and become a dict (a
  repeated key keeps the last value); other repeated fields become lists;
- a singular message field that occurs more than once is merged (its pieces are concatenated,
  which is protobuf's merge rule);
- a field marked inline in the table (a Go struct embedded with `json:",inline"`, such as
  Volume's VolumeSource or the LocalObjectReference in a ConfigMapKeySelector) contributes its
  fields to the parent object instead of a key of its own;
- well-known apimachinery types become their JSON forms: meta/v1 Time -> RFC 3339 seconds
  ("2024-01-02T03:04:05Z"), MicroTime -> six fractional digits, an empty Time -> omitted;
  Quantity {1 string} -> that string ("0" when empty, as Go's zero Quantity prints);
  IntOrString {1 type, 2 intVal, 3 strVal} -> int or str; Duration {1 ns} -> Go's duration
  string ("1m30s"); RawExtension {1 raw} and FieldsV1 {1 Raw} -> the JSON value they hold.

Zero values. go-to-protobuf writes every non-pointer field, zero values included, where Go's
encoding/json would leave most of them out (`omitempty`). So in a message, a scalar field whose
value is zero ("", 0, false, an empty bytes) and a Time or IntOrString that is zero is dropped;
that is the JSON kubectl would have sent. Empty lists and maps never appear on the wire at all.
Empty *messages* are kept: protobuf writes a nested message exactly when Go's JSON would write
it (a non-pointer struct always, a pointer only when set), and an empty one can carry meaning
(`emptyDir: {}` selects the volume type). Entries of maps and elements of lists are always kept.
The rare mismatch: a pointer scalar explicitly set to its zero value (`immutable: false`,
`automountServiceAccountToken: false`, `terminationGracePeriodSeconds: 0`) looks on the wire
exactly like an unset non-pointer field, so it is dropped and the server's default applies,
where Go would have kept the explicit zero. Non-pointer fields without omitempty (a ServicePort's
`port: 0`) are dropped too, which decodes to the same Go value.

Errors are Kubernetes Status errors: 400 BadRequest for a body without the magic prefix,
truncated or malformed data and unknown core/v1 kinds; 415 UnsupportedMediaType for kinds
outside core/v1, whose field tables k1s does not carry (such clients must send JSON).
"""

from __future__ import annotations

import base64
import datetime as _dt
import functools
import os
import struct
from typing import Any, Callable

import orjson

from k1s.api import protowire
from k1s.api.errors import StatusError, bad_request

MAGIC = b"k8s\x00"
MEDIA_TYPE = "application/vnd.kubernetes.protobuf"

_DATA = os.path.join(os.path.dirname(__file__), "..", "api", "data", "protobuf-fields.json")
_META = "k8s.io.apimachinery.pkg.apis.meta.v1"
# Nesting deeper than any real object means a hostile or corrupt body; stop before Python's
# recursion limit would.
MAX_DEPTH = 100

# Wire types.
_VARINT, _I64, _LEN, _I32 = protowire.VARINT, protowire.I64, protowire.LEN, protowire.I32

_VARINT_TYPES = {"int32", "int64", "uint32", "uint64", "sint32", "sint64", "bool", "enum"}
_I64_TYPES = {"fixed64", "sfixed64", "double"}
_I32_TYPES = {"fixed32", "sfixed32", "float"}


class _Spec:
    """One field of a message: its JSON name and how to read it."""

    __slots__ = ("name", "ptype", "tname", "repeated", "is_map", "inline")

    def __init__(self, name: str, ptype: str, tname: str, repeated: int, is_map: int,
                 inline: int = 0):
        self.name, self.ptype, self.tname = name, ptype, tname
        self.repeated, self.is_map, self.inline = bool(repeated), bool(is_map), bool(inline)


@functools.cache
def _tables() -> tuple[dict[str, dict[int, _Spec]], dict[str, str]]:
    """The message field tables and the kind -> message map, loaded once."""
    with open(_DATA, "rb") as fh:
        data = orjson.loads(fh.read())
    messages = {name: {int(num): _Spec(*spec) for num, spec in fields.items()}
                for name, fields in data["messages"].items()}
    return messages, data["kinds"]


# the wire-format reader: shared with gRPC probes (k1s.api.protowire)
_Malformed = protowire.Malformed
_varint = protowire.read_varint
_fields = protowire.fields


def _last_values(buf: bytes, wires: dict[int, int]) -> dict[int, Any]:
    """Field number -> last raw value, for the small scalar-only wrapper messages.

    `wires` names the fields wanted and their wire types; other field numbers are skipped.
    """
    out = {}
    for num, wt, val in _fields(buf, 0, len(buf)):
        want = wires.get(num)
        if want is None:
            continue
        if wt != want:
            raise _Malformed(f"wrong wireType = {wt} for field {num}")
        out[num] = val
    return out


_INTS = {1: _VARINT, 2: _VARINT}           # Time, MicroTime, Duration
_TEXT = {1: _LEN, 2: _LEN, 3: _LEN, 4: _LEN}


def _signed(v: int, bits: int) -> int:
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


def _scalar(ptype: str, val: Any) -> Any:
    """A raw varint/fixed/bytes value as the JSON value of a scalar of type ptype."""
    if ptype == "string":
        # Go keeps invalid UTF-8 in a string and encoding/json then writes U+FFFD: same here.
        return val.decode("utf-8", "replace")
    if ptype == "bytes":
        return base64.b64encode(val).decode("ascii")
    if ptype == "bool":
        return val != 0
    if ptype in ("int64", "sfixed64"):
        return _signed(val, 64)
    if ptype in ("int32", "sfixed32", "enum"):
        return _signed(val, 32)
    if ptype in ("uint64", "fixed64"):
        return val & (2**64 - 1)
    if ptype in ("uint32", "fixed32"):
        return val & (2**32 - 1)
    if ptype == "sint64":
        return (val >> 1) ^ -(val & 1)
    if ptype == "sint32":
        v = val & (2**32 - 1)
        return (v >> 1) ^ -(v & 1)
    if ptype == "double":
        return struct.unpack("<d", val.to_bytes(8, "little"))[0]
    if ptype == "float":
        return struct.unpack("<f", val.to_bytes(4, "little"))[0]
    raise _Malformed(f"unsupported protobuf type {ptype}")


def _expected_wire(ptype: str) -> int:
    if ptype in _VARINT_TYPES:
        return _VARINT
    if ptype in _I64_TYPES:
        return _I64
    if ptype in _I32_TYPES:
        return _I32
    return _LEN


def _packed(ptype: str, buf: bytes) -> list[Any]:
    """The elements of a packed repeated scalar field (proto3 style; accepted as protobuf must)."""
    wt = _expected_wire(ptype)
    out, pos, end = [], 0, len(buf)
    while pos < end:
        if wt == _VARINT:
            v, pos = _varint(buf, pos, end)
        else:
            size = 8 if wt == _I64 else 4
            if pos + size > end:
                raise _Malformed("unexpected EOF")
            v = int.from_bytes(buf[pos:pos + size], "little")
            pos += size
        out.append(_scalar(ptype, v))
    return out


# --- well-known apimachinery types ------------------------------------------------------------

_OMIT = object()   # a converter's answer for "Go's JSON would leave this field out"
_EPOCH = _dt.datetime(1970, 1, 1)
_GO_ZERO_TIME = -62135596800   # time.Time{}.Unix(): 0001-01-01T00:00:00Z


def _time(buf: bytes, micro: bool) -> Any:
    if not buf:
        return _OMIT   # Go writes a zero metav1.Time as an empty message
    v = _last_values(buf, _INTS)
    seconds = _signed(v.get(1, 0), 64)
    nanos = _signed(v.get(2, 0), 32) if micro else 0   # metav1.Time drops nanos on decode
    if seconds == _GO_ZERO_TIME and nanos == 0:
        return _OMIT
    try:
        t = _EPOCH + _dt.timedelta(seconds=seconds, microseconds=nanos // 1000)
    except OverflowError:
        raise _Malformed(f"time out of range: {seconds}s") from None
    if not 1 <= t.year <= 9999:
        raise _Malformed(f"time out of range: {seconds}s")
    if micro:
        return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond:06d}Z"
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _quantity(buf: bytes) -> Any:
    s = _last_values(buf, {1: _LEN}).get(1, b"")
    return s.decode("utf-8", "replace") if s else "0"


def _int_or_string(buf: bytes) -> Any:
    v = _last_values(buf, {1: _VARINT, 2: _VARINT, 3: _LEN})
    if _signed(v.get(1, 0), 64) == 1:
        return v.get(3, b"").decode("utf-8", "replace")
    return _signed(v.get(2, 0), 32)


def go_duration(ns: int) -> str:
    """Format nanoseconds as Go's time.Duration.String() does ("1h2m3.5s", "1.5ms", "0s")."""
    if ns == 0:
        return "0s"
    sign, u = ("-", -ns) if ns < 0 else ("", ns)
    if u < 1_000_000_000:
        for unit, scale in (("ns", 1), ("µs", 1_000), ("ms", 1_000_000)):
            if u < scale * 1000:
                whole, frac = divmod(u, scale)
                digits = len(str(scale)) - 1
                tail = f"{frac:0{digits}d}".rstrip("0") if frac else ""
                return f"{sign}{whole}{'.' + tail if tail else ''}{unit}"
    secs, frac = divmod(u, 1_000_000_000)
    tail = f"{frac:09d}".rstrip("0")
    out = f"{secs % 60}{'.' + tail if tail else ''}s"
    minutes = secs // 60
    if minutes:
        out = f"{minutes % 60}m{out}"
        hours = minutes // 60
        if hours:
            out = f"{hours}h{out}"
    return sign + out


def _duration(buf: bytes) -> Any:
    return go_duration(_signed(_last_values(buf, {1: _VARINT}).get(1, 0), 64))


def _embedded_json(buf: bytes, depth: int) -> Any:
    raw = _last_values(buf, {1: _LEN}).get(1, b"")
    if not raw:
        return _OMIT
    if raw.startswith(MAGIC):
        return _decode_envelope(raw, depth + 1)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise _Malformed(f"embedded object is not valid JSON: {e}") from None


_CONVERTERS: dict[str, Callable[[bytes, int], Any]] = {
    f"{_META}.Time": lambda b, d: _time(b, micro=False),
    f"{_META}.MicroTime": lambda b, d: _time(b, micro=True),
    f"{_META}.Duration": lambda b, d: _duration(b),
    f"{_META}.FieldsV1": _embedded_json,
    "k8s.io.apimachinery.pkg.runtime.RawExtension": _embedded_json,
    "k8s.io.apimachinery.pkg.api.resource.Quantity": lambda b, d: _quantity(b),
    "k8s.io.apimachinery.pkg.util.intstr.IntOrString": lambda b, d: _int_or_string(b),
}


# --- messages ---------------------------------------------------------------------------------

def _is_zero(v: Any) -> bool:
    """A zero scalar as Go's omitempty sees it (messages, even empty ones, are not scalars)."""
    return v is _OMIT or v is False or v == "" or (type(v) in (int, float) and v == 0)


def _message_value(tname: str, buf: bytes, depth: int) -> Any:
    conv = _CONVERTERS.get(tname)
    if conv is not None:
        return conv(buf, depth)
    return _decode_message(buf, tname, depth + 1)


def _map_entry(spec: _Spec, buf: bytes, depth: int) -> tuple[Any, Any]:
    messages, _ = _tables()
    entry = messages.get(spec.tname, {})
    kspec, vspec = entry.get(1), entry.get(2)
    key: Any = ""
    value: Any = None
    for num, wt, val in _fields(buf, 0, len(buf)):
        if num == 1 and kspec is not None:
            _check_wire(kspec, wt, spec.tname)
            key = _scalar(kspec.ptype, val)
        elif num == 2 and vspec is not None:
            _check_wire(vspec, wt, spec.tname)
            value = (_message_value(vspec.tname, val, depth) if vspec.ptype == "message"
                     else _scalar(vspec.ptype, val))
    if value is None and vspec is not None:   # an absent value is the type's zero value
        value = (_message_value(vspec.tname, b"", depth) if vspec.ptype == "message"
                 else _scalar(vspec.ptype, b"" if _expected_wire(vspec.ptype) == _LEN else 0))
    if value is _OMIT:
        value = None
    return (key if isinstance(key, str) else str(key)), value


def _check_wire(spec: _Spec, wt: int, where: str) -> None:
    expected = _expected_wire(spec.ptype)
    if wt != expected and not (spec.repeated and wt == _LEN and expected != _LEN):
        raise _Malformed(f"wrong wireType = {wt} for field {spec.name} in {where}")


def _decode_message(buf: bytes, tname: str, depth: int) -> dict[str, Any]:
    """One message as a JSON object, following the zero-value rule in the module docstring."""
    if depth > MAX_DEPTH:
        raise _Malformed("message nesting too deep")
    messages, _ = _tables()
    table = messages.get(tname)
    if table is None:
        raise _Malformed(f"no field table for message {tname}")
    out: dict[str, Any] = {}
    pieces: dict[int, list[bytes]] = {}   # singular message fields, merged at the end
    for num, wt, val in _fields(buf, 0, len(buf)):
        spec = table.get(num)
        if spec is None:
            continue   # a field newer than our table: skipped, as protobuf decoders do
        _check_wire(spec, wt, tname)
        if spec.is_map:
            k, v = _map_entry(spec, val, depth)
            out.setdefault(spec.name, {})[k] = v
        elif spec.ptype == "message":
            if spec.repeated:
                v = _message_value(spec.tname, val, depth)
                out.setdefault(spec.name, []).append(None if v is _OMIT else v)
            else:
                if num not in pieces:
                    out[spec.name] = None   # keeps the wire order of keys
                pieces.setdefault(num, []).append(val)
        elif spec.repeated:
            items = out.setdefault(spec.name, [])
            if wt == _LEN and spec.ptype not in ("string", "bytes"):
                items.extend(_packed(spec.ptype, val))
            else:
                items.append(_scalar(spec.ptype, val))
        else:
            out[spec.name] = _scalar(spec.ptype, val)
    for num, chunks in pieces.items():
        spec = table[num]
        value = _message_value(spec.tname, b"".join(chunks), depth)
        if spec.inline:
            # A Go struct embedded with `json:",inline"` (Volume's VolumeSource): in JSON its
            # fields are the parent's own.
            del out[spec.name]
            out.update(value)
        else:
            out[spec.name] = value
    return {k: v for k, v in out.items() if not _is_zero(v)}


# --- the envelope -----------------------------------------------------------------------------

def _unsupported(api_version: str, kind: str) -> StatusError:
    gvk = f"{api_version}, Kind={kind}"
    return StatusError(
        415, "UnsupportedMediaType",
        f"protobuf request bodies are accepted for core/v1 kinds and autoscaling/v1 Scale only, not {gvk}; "
        f"send this object as application/json")


def _decode_envelope(raw: bytes, depth: int) -> dict[str, Any]:
    if depth > MAX_DEPTH:
        raise _Malformed("message nesting too deep")
    if not raw.startswith(MAGIC):
        raise bad_request("provided data does not appear to be a protobuf message, "
                          "expected prefix [107 56 115 0]")
    env = _last_values(raw[len(MAGIC):], _TEXT)
    type_meta = _last_values(env.get(1, b""), _TEXT)
    api_version = type_meta.get(1, b"").decode("utf-8", "replace")
    kind = type_meta.get(2, b"").decode("utf-8", "replace")
    encoding = env.get(3, b"").decode("utf-8", "replace")
    content_type = env.get(4, b"").decode("utf-8", "replace")
    if encoding:
        raise StatusError(415, "UnsupportedMediaType",
                          f"unsupported contentEncoding {encoding!r} in protobuf request body")
    if content_type not in ("", MEDIA_TYPE):
        raise StatusError(415, "UnsupportedMediaType",
                          f"unsupported contentType {content_type!r} in protobuf request body")
    if not kind:
        raise bad_request("Object 'Kind' is missing in the protobuf request body")
    if not api_version:
        raise bad_request(f"Object 'apiVersion' is missing in the protobuf request body "
                          f"(kind {kind})")
    _, kinds = _tables()
    tname = kinds.get(f"{api_version}/{kind}")
    if tname is None:
        if api_version in ("v1", "meta.k8s.io/v1"):
            raise bad_request(f'no kind "{kind}" is registered for version "{api_version}"')
        raise _unsupported(api_version, kind)
    body = env.get(2, b"")
    obj: dict[str, Any] = {"apiVersion": api_version, "kind": kind}
    obj.update(_decode_message(body, tname, depth + 1))
    return obj


def decode_body(raw: bytes) -> dict[str, Any]:
    """A protobuf request body as the JSON object the API would have received.

    `apiVersion` and `kind` come from the envelope. Raises StatusError: 400 BadRequest for a
    missing magic prefix or truncated/malformed data or an unknown core/v1 kind, 415
    UnsupportedMediaType for kinds outside core/v1.
    """
    try:
        return _decode_envelope(bytes(raw), 0)
    except _Malformed as e:
        raise bad_request(f"unable to decode the protobuf request body: {e}") from None
