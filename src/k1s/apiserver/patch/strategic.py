"""Strategic merge patch (`application/strategic-merge-patch+json`), as kube-apiserver applies
it (apimachinery's strategicpatch.StrategicMergeMapPatch, server side).

The schema decides how each field merges. Its property nodes carry upstream's patch metadata:
`x-kubernetes-patch-strategy` ("merge", "retainKeys", "merge,retainKeys", "replace") and
`x-kubernetes-patch-merge-key`. The rules:

- maps merge key by key and `null` deletes a key; maps without a schema (labels, annotations,
  data, unknown fields) merge exactly like a JSON merge patch;
- a list whose strategy is `merge` merges by its merge key (containers and env by name,
  volumeMounts by mountPath, ports by containerPort, conditions by type, ...); a list of
  primitives with strategy `merge` (finalizers) is a union; every other list is replaced;
- directives: `$patch: replace` (a map: take the patch as is; a list element: replace the whole
  list), `$patch: delete` (a map: becomes empty; a list element: delete the item with that
  merge key), `$retainKeys` (drop the keys it does not list), `$setElementOrder/<list>` (the
  order of the merged list: listed items in that order, server-only items kept where they
  were), `$deleteFromPrimitiveList/<list>` (remove those values from a primitive list).
  As upstream, `$patch: merge` is refused ("unknown patch type" on a map, "merging lists
  cannot yet be specified in the patch" in a list).

Errors carry upstream's texts. Malformed directives are `400 BadRequest`; lists of lists and
content that contradicts `$retainKeys` are `422`. Upstream answers the remaining failures (a
list item without its merge key, ...) with a 500; k1s answers them with 400, because they
are the client's fault (a deliberate difference).
"""

from __future__ import annotations

from typing import Any

from k1s.api import schema
from k1s.api.errors import StatusError, bad_request

from .jsonpatch import patch_failed
from .merge import copy_json, go_format, go_type

DIRECTIVE = "$patch"
REPLACE = "replace"
DELETE = "delete"
MERGE = "merge"
RETAIN_KEYS_STRATEGY = "retainKeys"
RETAIN_KEYS = "$retainKeys"
SET_ELEMENT_ORDER = "$setElementOrder"
DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList"

# mergepatch's sentinel errors
ERR_BAD_JSON_DOC = "invalid JSON document"
ERR_NO_LIST_OF_LISTS = "lists of lists are not supported"
ERR_BAD_PRIMITIVE_LIST = "invalid patch format of primitive list"
ERR_BAD_RETAIN_KEYS = "invalid patch format of retainKeys"
ERR_BAD_SET_ELEMENT_ORDER = "invalid patch format of setElementOrder list"
ERR_RETAIN_KEYS_MISMATCH = "patch content doesn't match retainKeys list"

_BAD_REQUEST = {ERR_BAD_JSON_DOC, ERR_BAD_PRIMITIVE_LIST, ERR_BAD_RETAIN_KEYS,
                ERR_BAD_SET_ELEMENT_ORDER}
_UNPROCESSABLE = {ERR_NO_LIST_OF_LISTS, ERR_RETAIN_KEYS_MISMATCH}


class _SMPError(Exception):
    pass


def strategic_merge_patch(original: dict, patch: Any, schema_name: str | None, *,
                          owned: bool = False) -> dict:
    """Apply a strategic merge patch to `original` (a kind whose schema is `schema_name`, e.g.
    io.k8s.api.apps.v1.StatefulSet; None or unknown: no schema). Inputs are not modified,
    unless `owned` (the caller's private copy of `original`, patched in place)."""
    if not isinstance(patch, dict):
        kind = "array" if isinstance(patch, list) else (
            "null" if patch is None else "string" if isinstance(patch, str) else
            "bool" if isinstance(patch, bool) else "number")
        if patch is None:
            raise bad_request(ERR_BAD_JSON_DOC)
        raise bad_request(f"json: cannot unmarshal {kind} into Go value of type "
                          f"map[string]interface {{}}")
    if not isinstance(original, dict):
        raise bad_request(ERR_BAD_JSON_DOC)
    ctx = schema.by_name(schema_name) if schema_name else {}
    try:
        return _merge_map(original if owned else copy_json(original), copy_json(patch), ctx)
    except _SMPError as e:
        msg = str(e)
        if msg in _UNPROCESSABLE:
            raise patch_failed(msg) from None
        if msg in _BAD_REQUEST:
            raise bad_request(msg) from None
        raise StatusError(400, "BadRequest", msg) from None


# ---------------------------------------------------------------------------------------------
# Schema lookups: a context is a resolved schema node ({} when nothing is known).

def _field_meta(ctx: dict, key: str) -> tuple[dict, list[str], str | None]:
    """(property node, patch strategies, merge key) of `key` in the map described by ctx."""
    props = ctx.get("properties")
    if props is not None:
        node = props.get(key)
        if node is None:
            return {}, [], None
        strategy, merge_key = schema.patch_strategy(node)
        return node, [s for s in strategy.split(",") if s], merge_key
    ap = ctx.get("additionalProperties")
    if isinstance(ap, dict):
        return ap, [], None
    return {}, [], None


def _map_ctx(node: dict) -> dict:
    return schema.resolve(node) if node else {}


def _item_ctx(node: dict) -> dict:
    return schema.items(node) if node else {}


def _other_strategy(strategies: list[str]) -> str:
    """extractRetainKeysPatchStrategy: the strategy besides retainKeys."""
    if not strategies:
        return ""
    if len(strategies) == 1:
        return "" if strategies[0] == RETAIN_KEYS_STRATEGY else strategies[0]
    if len(strategies) == 2:
        a, b = strategies
        if a == RETAIN_KEYS_STRATEGY:
            return b
        if b == RETAIN_KEYS_STRATEGY:
            return a
    raise _SMPError(ERR_BAD_RETAIN_KEYS)


# ---------------------------------------------------------------------------------------------
# Maps

def _merge_map(original: dict, patch: dict, ctx: dict) -> dict:
    if DIRECTIVE in patch:
        directive = patch[DIRECTIVE]
        if directive == REPLACE:
            del patch[DIRECTIVE]
            return _clean(patch)
        if directive == DELETE:
            return {}
        raise _SMPError(f"unknown patch type: {go_format(directive)} in map: {go_format(patch)}")

    _apply_retain_keys(original, patch)
    _merge_ordered_lists(original, patch, ctx)

    for key in list(patch):
        pv = patch[key]
        is_delete_list = False
        if key.startswith(DELETE_FROM_PRIMITIVE_LIST):
            key = _extract_key(key, DELETE_FROM_PRIMITIVE_LIST, ERR_BAD_PRIMITIVE_LIST)
            is_delete_list = True
        if pv is None:
            original.pop(key, None)
            continue
        if key not in original or _category(original[key]) != _category(pv) \
                or _category(pv) == "scalar":
            if not is_delete_list:
                v, keep = _remove_directives(_discard_nulls(pv))
                if keep:
                    original[key] = v
                else:
                    original.pop(key, None)
            continue
        node, strategies, merge_key = _field_meta(ctx, key)
        strategy = _other_strategy(strategies)
        if isinstance(pv, dict):
            if strategy == REPLACE:
                original[key] = _clean(pv)
            else:
                original[key] = _merge_map(original[key], pv, _map_ctx(node))
        else:
            original[key] = _merge_list_handler(original[key], pv, node, strategy, merge_key,
                                                is_delete_list)
    return original


def _category(v: Any) -> str:
    if isinstance(v, dict):
        return "map"
    if isinstance(v, list):
        return "list"
    return "scalar"


def _extract_key(key: str, prefix: str, err: str) -> str:
    parts = key.split("/", 1)
    if len(parts) <= 1 or parts[0] != prefix:
        raise _SMPError(err)
    return parts[1]


def _apply_retain_keys(original: dict, patch: dict) -> None:
    if RETAIN_KEYS not in patch:
        return
    keep = patch.pop(RETAIN_KEYS)
    if not isinstance(keep, list):
        raise _SMPError(ERR_BAD_RETAIN_KEYS)
    allowed = {k for k in keep if isinstance(k, str)}
    for k, v in patch.items():
        if v is None or k.startswith(DELETE_FROM_PRIMITIVE_LIST) or \
                k.startswith(SET_ELEMENT_ORDER):
            continue
        if k not in allowed:
            raise _SMPError(ERR_BAD_RETAIN_KEYS)
    for k in list(original):
        if k not in allowed:
            del original[k]


def _merge_ordered_lists(original: dict, patch: dict, ctx: dict) -> None:
    """mergePatchIntoOriginal: each `$setElementOrder/<list>` with its list, merged and put in
    order: $setElementOrder first, then the patch's order, then the live order."""
    for key in [k for k in patch if k.startswith(SET_ELEMENT_ORDER)]:
        order = patch.pop(key)
        if not isinstance(order, list):
            raise _SMPError(f"expected a []interface {{}}, but received a {go_type(order)}")
        list_key = _extract_key(key, SET_ELEMENT_ORDER, ERR_BAD_SET_ELEMENT_ORDER)
        found_original = list_key in original
        found_patch = list_key in patch
        orig_list: list = []
        patch_list: list = []
        if found_original:
            orig_list = original[list_key]
            if not isinstance(orig_list, list):
                raise _SMPError(f"expected a []interface {{}}, but received a "
                                f"{go_type(orig_list)}")
        if found_patch:
            patch_list = patch[list_key]
            if not isinstance(patch_list, list):
                raise _SMPError(f"expected a []interface {{}}, but received a "
                                f"{go_type(patch_list)}")
        node, strategies, merge_key = _field_meta(ctx, list_key)
        strategy = _other_strategy(strategies)
        merge_key = merge_key or ""
        _validate_order(patch_list, order, merge_key)
        if found_original and not found_patch:
            merged = orig_list
        elif found_patch and not found_original:
            merged, _ = _remove_directives(patch_list)
        elif found_original and found_patch:
            merged = _merge_list_handler(orig_list, patch_list, node, strategy, merge_key,
                                         False)
        else:
            continue
        is_map = _element_kind((orig_list, patch_list), merge_key) == "map"
        if merge_key and is_map:
            items, server_only = _partition_maps(merged, order, merge_key)
        else:
            items, server_only = _partition_primitives(merged, order)
        original[list_key] = _normalize_order(items, server_only, order, orig_list,
                                              merge_key if is_map else "", is_map)
        patch.pop(list_key, None)


def _validate_order(patch_list: list, order: list, merge_key: str) -> None:
    """Items of the patch list must appear in $setElementOrder, in the same relative order."""
    if not order or not patch_list:
        return
    items = [v for v in patch_list
             if not (merge_key and isinstance(v, dict) and v.get(DIRECTIVE) == DELETE)]
    pi = si = 0
    while pi < len(items) and si < len(order):
        if isinstance(items[pi], dict) and DIRECTIVE in items[pi]:
            pi += 1
            continue
        if _merge_key_equal(items[pi], order[si], merge_key):
            pi += 1
        si += 1
    if pi < len(items) and si >= len(order):
        raise _SMPError(f"The order in patch list:\n{go_format(patch_list)}\n doesn't match "
                        f"{SET_ELEMENT_ORDER} list:\n{go_format(order)}\n")


def _merge_key_equal(a: Any, b: Any, merge_key: str) -> bool:
    if not merge_key:
        return _go_eq(a, b)
    for m in (a, b):
        if not isinstance(m, dict):
            raise _SMPError(f"expected a map[string]interface {{}}, but received a {go_type(m)}")
        if merge_key not in m:
            raise _SMPError(_no_merge_key(m, merge_key))
    return _go_eq(a[merge_key], b[merge_key])


def _go_eq(a: Any, b: Any) -> bool:
    """Go's == on interface{} holding JSON scalars: same dynamic type and value."""
    if isinstance(a, (dict, list)) or isinstance(b, (dict, list)):
        return False
    return type(a) is type(b) and a == b


def _no_merge_key(m: dict, merge_key: str) -> str:
    return f"map: {go_format(m)} does not contain declared merge key: {merge_key}"


# ---------------------------------------------------------------------------------------------
# Lists

def _merge_list_handler(original: Any, patch: Any, node: dict, strategy: str,
                        merge_key: str | None, is_delete_list: bool) -> list:
    for v in (original, patch):
        if not isinstance(v, list):
            raise _SMPError(f"expected a []interface {{}}, but received a {go_type(v)}")
    if strategy == MERGE or is_delete_list:
        return _merge_list(original, patch, node, merge_key or "", is_delete_list)
    v, _ = _remove_directives(_discard_nulls(patch))
    return v


def _element_kind(lists: tuple[list, ...], merge_key: str) -> str:
    """sliceElementType: "map", "scalar" (erroring on lists of lists and mixed element types).
    Empty lists count as maps when there is a merge key (upstream errors instead)."""
    kind = None
    prev_type = None
    for lst in lists:
        for v in lst:
            t = go_type(v)
            if prev_type is None:
                prev_type = t
                if isinstance(v, list):
                    raise _SMPError(ERR_NO_LIST_OF_LISTS)
                kind = "map" if isinstance(v, dict) else "scalar"
            elif t != prev_type:
                raise _SMPError("list element types are not identical: "
                                + go_format(list(lists)))
    if kind is None:
        return "map" if merge_key else "scalar"
    return kind


def _merge_list(original: list, patch: list, node: dict, merge_key: str,
                is_delete_list: bool) -> list:
    if not original and not patch:
        return original
    kind = _element_kind((original, patch), merge_key)
    if kind != "map":
        if is_delete_list:
            drop = [v for v in patch]
            return [v for v in original if not any(_go_eq(v, d) for d in drop)]
        merged: list = []
        for v in original + patch:
            if not any(_go_eq(v, m) for m in merged):
                merged.append(v)
        items, server_only = _partition_primitives(merged, patch)
        return _normalize_order(items, server_only, patch, original, "", False)
    if not merge_key:
        raise _SMPError("cannot merge lists without merge key for "
                        + (schema.ref_name(node.get("items") or {}) or "map"))
    original, patch = _merge_special_elements(original, patch, merge_key)
    merged = _merge_without_special_elements(original, patch, merge_key, _item_ctx(node))
    items, server_only = _partition_maps(merged, patch, merge_key)
    return _normalize_order(items, server_only, patch, original, merge_key, True)


def _merge_special_elements(original: list, patch: list, merge_key: str) -> tuple[list, list]:
    """Handle `$patch` elements: delete matching items, or replace the whole list."""
    plain = []
    replace = False
    for v in patch:
        directive = v.get(DIRECTIVE, _ABSENT)
        if directive is _ABSENT:
            plain.append(v)
        elif directive == DELETE:
            if merge_key not in v:
                raise _SMPError(_no_merge_key(v, merge_key))
            original = [o for o in original
                        if not (isinstance(o, dict) and merge_key in o
                                and _go_eq(o[merge_key], v[merge_key]))]
        elif directive == REPLACE:
            replace = True  # keep going: the other $patch elements still get pruned
        elif directive == MERGE:
            raise _SMPError("merging lists cannot yet be specified in the patch")
        else:
            raise _SMPError(f"unknown patch type: {go_format(directive)} in map: "
                            f"{go_format(v)}")
    if replace:
        return [_clean(v) for v in plain], []
    return original, plain


_ABSENT = object()


def _merge_without_special_elements(original: list, patch: list, merge_key: str,
                                    item_ctx: dict) -> list:
    original = list(original)
    for v in patch:
        if merge_key not in v:
            raise _SMPError(_no_merge_key(v, merge_key))
        for i, o in enumerate(original):
            if not isinstance(o, dict):
                raise _SMPError(f"value for key {i} is not a map.")
            if merge_key in o and _go_eq(o[merge_key], v[merge_key]):
                original[i] = _merge_map(o, v, item_ctx)
                break
        else:
            original.append(_clean(v))
    return original


def _partition_primitives(merged: list, by: list) -> tuple[list, list]:
    items, server_only = [], []
    for v in merged:
        (items if any(_go_eq(v, b) for b in by) else server_only).append(v)
    return items, server_only


def _partition_maps(merged: list, by: list, merge_key: str) -> tuple[list, list]:
    items, server_only = [], []
    for v in merged:
        if not isinstance(v, dict):
            raise _SMPError(f"expected a map[string]interface {{}}, but received a {go_type(v)}")
        if merge_key not in v:
            raise _SMPError(_no_merge_key(v, merge_key))
        hit = any(isinstance(b, dict) and merge_key in b and _go_eq(b[merge_key], v[merge_key])
                  for b in by)
        (items if hit else server_only).append(v)
    return items, server_only


def _index(lst: list, v: Any, merge_key: str, is_map: bool) -> int:
    key = (lambda x: x.get(merge_key) if isinstance(x, dict) else None) if is_map else \
        (lambda x: x)
    want = key(v)
    for i, x in enumerate(lst):
        if _go_eq(key(x), want):
            return i
    return -1


def _normalize_order(items: list, server_only: list, items_order: list, server_order: list,
                     merge_key: str, is_map: bool) -> list:
    """normalizeElementOrder: sort the patch's items by the patch (or $setElementOrder), the
    server-only items by the live list, then interleave them by the live order."""
    items = _sort_by(items, items_order, merge_key, is_map)
    server_only = _sort_by(server_only, server_order, merge_key, is_map)
    out = []
    i = j = 0
    while i < len(server_only) or j < len(items):
        if i >= len(server_only):
            out.append(items[j])
            j += 1
        elif j >= len(items):
            out.append(server_only[i])
            i += 1
        else:
            li = _index(server_order, server_only[i], merge_key, is_map)
            ri = _index(server_order, items[j], merge_key, is_map)
            if li >= 0 and ri >= 0 and li < ri:
                out.append(server_only[i])
                i += 1
            else:
                out.append(items[j])
                j += 1
    return out


def _sort_by(lst: list, order: list, merge_key: str, is_map: bool) -> list:
    deletes = []
    if is_map:
        for v in list(lst) + list(order):
            if not isinstance(v, dict):
                raise _SMPError(f"expected a map[string]interface {{}}, but received a "
                                f"{go_type(v)}")
            if merge_key not in v:
                raise _SMPError(_no_merge_key(v, merge_key))
        deletes = [v for v in lst if v.get(DIRECTIVE) == DELETE]
        lst = [v for v in lst if v.get(DIRECTIVE) != DELETE]

    def pos(v: Any) -> int:
        i = _index(order, v, merge_key, is_map)
        return i if i >= 0 else len(order)
    return sorted(lst, key=pos) + deletes


# ---------------------------------------------------------------------------------------------
# Cleaning values taken from the patch as they are

def _discard_nulls(v: Any) -> Any:
    """discardNullValuesFromPatch: a null inside a value added as a whole means nothing."""
    if isinstance(v, dict):
        return {k: _discard_nulls(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [_discard_nulls(x) for x in v]
    return v


def _is_directive_key(k: str) -> bool:
    return k == DIRECTIVE or k == RETAIN_KEYS or k.startswith(SET_ELEMENT_ORDER + "/") or \
        k.startswith(DELETE_FROM_PRIMITIVE_LIST + "/")


def _remove_directives(v: Any) -> tuple[Any, bool]:
    """removeDirectives: drop maps that carry `$patch` (and list items that do); also drop the
    other directive keys, which Go's typed decoding discards as unknown fields."""
    if isinstance(v, dict):
        if DIRECTIVE in v:
            return None, False
        out = {}
        for k, x in v.items():
            if _is_directive_key(k):
                continue
            nx, keep = _remove_directives(x)
            if keep:
                out[k] = nx
        return out, True
    if isinstance(v, list):
        out_list = []
        for x in v:
            nx, keep = _remove_directives(x)
            if keep:
                out_list.append(nx)
        return out_list, True
    return v, True


def _clean(v: Any) -> Any:
    """A patch value used as is (`$patch: replace`, a new list item): without nulls, and without
    the directives typed decoding would drop."""
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items() if x is not None and not _is_directive_key(k)}
    if isinstance(v, list):
        return [_clean(x) for x in v]
    return v
