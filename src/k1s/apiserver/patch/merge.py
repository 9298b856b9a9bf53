"""RFC 7386 JSON merge patch (`application/merge-patch+json`), and the JSON value helpers the
other patch kinds share (copying, strict equality, Go's `%v` rendering for error messages).

kube-apiserver applies merge patches with evanphx/json-patch v4: a patch must be a JSON
object (`null` or a scalar is `400 Invalid JSON Patch`), `null` deletes a key, objects merge
key by key and everything else (lists included) replaces the old value.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson

from k1s.api.errors import StatusError, bad_request

# evanphx/json-patch's ErrBadJSONPatch, which the apiserver answers with 400.
BAD_JSON_PATCH = "Invalid JSON Patch"


def copy_json(v: Any) -> Any:
    """A deep copy of a JSON value (orjson round trip: several times faster than deepcopy)."""
    if not isinstance(v, (dict, list)):
        return v
    try:
        return orjson.loads(orjson.dumps(v))
    except (TypeError, orjson.JSONEncodeError):
        # ints beyond 64 bits and other oddities orjson refuses
        return copy.deepcopy(v)


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality: like ==, but true/false are never equal to 1/0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict):
        if not isinstance(b, dict) or a.keys() != b.keys():
            return False
        return all(json_equal(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        if not isinstance(b, list) or len(a) != len(b):
            return False
        return all(json_equal(x, y) for x, y in zip(a, b))
    if isinstance(b, (dict, list)):
        return False
    return a == b


def go_format(v: Any) -> str:
    """Render a decoded JSON value as Go's `%v` does for interface{} (map[k:v] with sorted keys,
    [a b] for slices, <nil>), because upstream's strategic-merge errors embed values that way."""
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{go_format(v[k])}" for k in sorted(v)) + "]"
    if isinstance(v, list):
        return "[" + " ".join(go_format(x) for x in v) + "]"
    if isinstance(v, float):
        return repr(v).replace("e+0", "e+").replace("e-0", "e-")
    return str(v)


def go_type(v: Any) -> str:
    """Go's reflect.TypeOf(v).String() for a decoded JSON value (for ErrBadArgType)."""
    if v is None:
        return "%!s(<nil>)"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, dict):
        return "map[string]interface {}"
    if isinstance(v, list):
        return "[]interface {}"
    if isinstance(v, str):
        return "string"
    if isinstance(v, int):
        return "int64"
    return "float64"


def merge_patch(original: dict, patch: Any, *, owned: bool = False) -> dict:
    """Apply an RFC 7386 merge patch to `original`; the inputs are not modified, unless
    `owned` (the caller's private copy, patched in place: saves a deep copy)."""
    if not isinstance(patch, dict):
        raise bad_request(BAD_JSON_PATCH)
    if not isinstance(original, dict):
        raise StatusError(400, "BadRequest", "invalid JSON document")
    return _merge(original if owned else copy_json(original), patch)


def _merge(target: dict, patch: dict) -> dict:
    for k, pv in patch.items():
        if pv is None:
            target.pop(k, None)
        elif isinstance(pv, dict):
            cur = target.get(k)
            target[k] = _merge(cur if isinstance(cur, dict) else {}, pv)
        else:
            target[k] = copy_json(pv)
    return target
