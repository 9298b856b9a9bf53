"""RFC 6902 JSON patch (`application/json-patch+json`): add, remove, replace, move, copy, test.

Behaviour and error texts follow evanphx/json-patch v4, which kube-apiserver uses:

- a body that is not a list of operation objects is `400 BadRequest` (Go's decode error);
- more than 10000 operations is `413`;
- an operation that does not apply (missing path, bad index, failed test) is `422 Invalid`
  with upstream's generic message `the server rejected our request due to an error in our
  request` and the json-patch error in `details.causes[0].message` — kubectl prints
  `The request is invalid: ...`;
- JSON pointers unescape `~1` to `/` and `~0` to `~`; `-` appends to an array; negative
  indices count from the end (v4's SupportNegativeIndices, on in the apiserver);
- like v4, `replace` of a missing object key sets it, and `test` of a missing key against
  `null` succeeds.
"""

from __future__ import annotations

import re
from typing import Any

from k1s.api.errors import StatusError, bad_request

from .merge import copy_json, json_equal

MAX_OPERATIONS = 10000

# json-patch's error sentinels, appended to messages as github.com/pkg/errors.Wrapf does.
_MISSING = "missing value"
_INVALID_INDEX = "invalid index referenced"
_TEST_FAILED = "test failed"

_INT = re.compile(r"^[+-]?[0-9]+$")


class _PatchError(Exception):
    """An operation that does not apply; becomes the 422 the apiserver answers."""


def patch_failed(message: str) -> StatusError:
    """The 422 kube-apiserver returns when a JSON patch does not apply."""
    # upstream builds this with NewGenericServerResponse(isUnexpectedResponse=false): the
    # json-patch error text is not sent, and kubectl prints the generic sentence
    return StatusError(422, "Invalid",
                       "the server rejected our request due to an error in our request", {})


def json_patch(original: dict, ops: Any, *, owned: bool = False) -> dict:
    """Apply the RFC 6902 operation list `ops` to `original`; the inputs are not modified,
    unless `owned` (the caller's private copy of `original`, patched in place)."""
    if not isinstance(ops, list):
        raise bad_request("json: cannot unmarshal " + _json_kind(ops)
                          + " into Go value of type jsonpatch.Patch")
    for op in ops:
        if not isinstance(op, dict):
            raise bad_request("json: cannot unmarshal " + _json_kind(op)
                              + " into Go value of type jsonpatch.Operation")
    if len(ops) > MAX_OPERATIONS:
        raise StatusError(413, "RequestEntityTooLarge",
                          f"The allowed maximum operations in a JSON patch is {MAX_OPERATIONS}, "
                          f"got {len(ops)}")
    doc: Any = original if owned else copy_json(original)
    try:
        for op in ops:
            doc = _apply_op(doc, op)
    except _PatchError as e:
        # the client gets upstream's generic 422; the specific reason stays the cause (logs)
        raise patch_failed(str(e)) from e
    return doc


def _json_kind(v: Any) -> str:
    if v is None:
        return "null"  # unreachable for a list of ops, kept for completeness
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, dict):
        return "object"
    return "array"


def _apply_op(doc: Any, op: dict) -> Any:
    kind = op.get("op")
    if not isinstance(kind, str):
        kind = "unknown"
    fn = _OPS.get(kind)
    if fn is None:
        raise _PatchError(f"Unexpected kind: {kind}")
    fn(doc, op)
    return doc


def _decode_token(tok: str) -> str:
    return tok.replace("~1", "/").replace("~0", "~")


def _pointer(op: dict, name: str, verb: str) -> str:
    v = op.get(name)
    if not isinstance(v, str):
        what = "path" if name == "path" else "from"
        raise _PatchError(f"{verb} operation failed to decode {what}: operation missing "
                          f"{what} field: {_MISSING}")
    return v


def _find(doc: Any, path: str) -> tuple[Any, str] | None:
    """The container holding the last token of `path`, and that token (v4's findObject)."""
    parts = path.split("/")
    if len(parts) < 2 or parts[0] != "":
        return None
    cur = doc
    for raw in parts[1:-1]:
        tok = _decode_token(raw)
        if isinstance(cur, dict):
            nxt = cur.get(tok)
        elif isinstance(cur, list):
            idx = _index(tok)
            nxt = cur[idx] if idx is not None and 0 <= idx < len(cur) else None
        else:
            return None
        if not isinstance(nxt, (dict, list)):
            return None
        cur = nxt
    if not isinstance(cur, (dict, list)):
        return None
    return cur, _decode_token(parts[-1])


def _index(tok: str) -> int | None:
    return int(tok) if _INT.match(tok) else None


def _atoi_error(tok: str) -> str:
    return f'strconv.Atoi: parsing "{tok}": invalid syntax'


def _get(con: Any, key: str) -> tuple[bool, Any]:
    """(found, value) of `key` in a container; raises for a bad array index."""
    if isinstance(con, dict):
        return (key in con), con.get(key)
    idx = _index(key)
    if idx is None:
        raise _PatchError(_atoi_error(key))
    if idx < 0 or idx >= len(con):
        raise _PatchError(f"Unable to access invalid index: {idx}: {_INVALID_INDEX}")
    return True, con[idx]


def _add_to(con: Any, key: str, value: Any, path: str) -> None:
    if isinstance(con, dict):
        con[key] = value
        return
    if key == "-":
        con.append(value)
        return
    idx = _index(key)
    if idx is None:
        raise _PatchError(f"error in add for path: '{path}': value was not a proper array "
                          f"index: '{key}': {_atoi_error(key)}")
    size = len(con) + 1
    if idx >= size or idx < -size:
        raise _PatchError(f"error in add for path: '{path}': Unable to access invalid index: "
                          f"{idx}: {_INVALID_INDEX}")
    if idx < 0:
        idx += size
    con.insert(idx, value)


def _remove_from(con: Any, key: str, path: str, verb: str = "remove") -> Any:
    where = f"error in {verb} for path: '{path}'"
    if isinstance(con, dict):
        if key not in con:
            raise _PatchError(f"{where}: Unable to remove nonexistent key: {key}: {_MISSING}")
        return con.pop(key)
    idx = _index(key)
    if idx is None:
        raise _PatchError(f"{where}: {_atoi_error(key)}")
    if idx >= len(con) or idx < -len(con):
        raise _PatchError(f"{where}: Unable to access invalid index: {idx}: {_INVALID_INDEX}")
    return con.pop(idx)


# How each operation words a pointer that leads nowhere (v4's texts differ in quoting and noun).
_NO_PATH_QUOTED = '{verb} operation does not apply: doc is missing path: "{path}"'
_NO_PATH = "{verb} operation does not apply: doc is missing path: {path}"
_NO_FROM = "{verb} operation does not apply: doc is missing from path: {path}"
_NO_DEST = "{verb} operation does not apply: doc is missing destination path: {path}"
_NO_TEST_PATH = "{verb} operation does not apply: is missing path: {path}"


def _missing(template: str, verb: str, pointer: str) -> _PatchError:
    return _PatchError(f"{template.format(verb=verb, path=pointer)}: {_MISSING}")


def _locate(doc: Any, op: dict, name: str, verb: str, template: str) -> tuple[str, Any, str]:
    """The op's pointer `name`, the container it ends in and its last token."""
    pointer = _pointer(op, name, verb)
    found = _find(doc, pointer)
    if found is None:
        raise _missing(template, verb, pointer)
    return (pointer, *found)


def _value_at(con: Any, key: str, where: str, pointer: str) -> tuple[bool, Any]:
    """`_get`, its failure prefixed with the operation and pointer (`error in copy for from`)."""
    try:
        return _get(con, key)
    except _PatchError as e:
        raise _PatchError(f"error in {where}: '{pointer}': {e}") from None


def _op_add(doc: Any, op: dict) -> None:
    path, con, key = _locate(doc, op, "path", "add", _NO_PATH_QUOTED)
    _add_to(con, key, copy_json(op.get("value")), path)


def _op_remove(doc: Any, op: dict) -> None:
    path, con, key = _locate(doc, op, "path", "remove", _NO_PATH_QUOTED)
    _remove_from(con, key, path)


def _op_replace(doc: Any, op: dict) -> None:
    path, con, key = _locate(doc, op, "path", "replace", _NO_PATH)
    value = copy_json(op.get("value"))
    if isinstance(con, dict):
        con[key] = value
        return
    try:
        _get(con, key)
    except _PatchError:
        raise _PatchError(f"replace operation does not apply: doc is missing key: {path}: "
                          f"{_MISSING}") from None
    con[int(key)] = value


def _op_move(doc: Any, op: dict) -> None:
    _, con, key = _locate(doc, op, "from", "move", _NO_FROM)
    value = _remove_from(con, key, key, "move")
    path, con, key = _locate(doc, op, "path", "move", _NO_DEST)
    _add_to(con, key, value, path)


def _op_copy(doc: Any, op: dict) -> None:
    src, con, key = _locate(doc, op, "from", "copy", _NO_FROM)
    present, value = _value_at(con, key, "copy for from", src)
    if not present:
        raise _missing(_NO_FROM, "copy", src)
    path, con, key = _locate(doc, op, "path", "copy", _NO_DEST)
    _add_to(con, key, copy_json(value), path)


def _op_test(doc: Any, op: dict) -> None:
    path, con, key = _locate(doc, op, "path", "test", _NO_TEST_PATH)
    _, value = _value_at(con, key, "test for path", path)
    if value is None:
        # v4 treats a missing key and an explicit null alike
        if "value" in op and op["value"] is None:
            return
    elif "value" in op and json_equal(value, op["value"]):
        return
    raise _PatchError(f"testing value {path} failed: {_TEST_FAILED}")


_OPS = {"add": _op_add, "remove": _op_remove, "replace": _op_replace, "move": _op_move,
        "copy": _op_copy, "test": _op_test}
