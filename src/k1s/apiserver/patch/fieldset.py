"""Field sets and the typed walks server-side apply needs (structured-merge-diff, in Python).

A *path* is a tuple of path elements written as upstream's FieldsV1 keys:
`f:<field>` (a struct field or map key), `k:{"name":"pg"}` (an item of a list keyed by
`x-kubernetes-list-map-keys`, keys sorted), `v:"a"` (an item of a set list) and `i:3` (an
index). A field set is a Python set of paths; FieldsV1 is its tree form, with `".": {}`
marking a node that is itself a member and has children:

    {"f:metadata":{"f:labels":{"f:app":{}}},
     "f:spec":{"f:containers":{"k:{\\"name\\":\\"pg\\"}":{".":{},"f:image":{}}}}}

How a value splits into fields comes from the schema (`k1s.api.schema`), as upstream's
OpenAPI-to-SMD conversion does it:
- a list with `x-kubernetes-list-type: map` is keyed by `x-kubernetes-list-map-keys`, `set`
  is keyed by value, `atomic` (and a list with no list type and no merge strategy) is one
  leaf; a list with no list type but patch strategy `merge` is keyed by its merge key;
- a struct or map with `x-kubernetes-map-type: atomic` is one leaf (a property's map type
  overrides its definition's); an empty map is a leaf (so `resources: {}` is owned);
- a value with no schema (free-form objects) is "deduced": maps are walked, lists are atomic.

The walks (`field_set`, `compare`, `merge`, `remove`) are pure functions over JSON values.
"""

from __future__ import annotations

from dataclasses import dataclass, field as dc_field
from typing import Any, Iterable, Iterator

import orjson

from k1s.api import schema

from .merge import copy_json, json_equal

Path = tuple[str, ...]

# Defaults of list-map key fields that clients usually omit (upstream's OpenAPI carries them as
# `default`, which our generated schemas do not have).
KEY_DEFAULTS: dict[str, dict[str, Any]] = {
    "io.k8s.api.core.v1.ContainerPort": {"protocol": "TCP"},
    "io.k8s.api.core.v1.ServicePort": {"protocol": "TCP"},
    "io.k8s.api.core.v1.EndpointPort": {"protocol": "TCP"},
    "io.k8s.api.discovery.v1.EndpointPort": {"protocol": "TCP"},
}


class SchemaError(Exception):
    """A value that does not fit the schema (upstream: `.spec.foo: field not declared in
    schema`). The message is upstream's, prefixed with the path."""


# ---------------------------------------------------------------------------------------------
# Types

@dataclass(frozen=True)
class Type:
    kind: str                  # "struct" | "map" | "list" | "scalar" | "untyped"
    atomic: bool = False
    props: dict = dc_field(default_factory=dict, compare=False)
    required: frozenset = frozenset()
    elem: dict | None = dc_field(default=None, compare=False)
    keys: tuple[str, ...] = ()
    list_type: str = ""        # "atomic" | "set" | "map"
    item_name: str = ""        # schema name of list items (for key defaults)


SCALAR = Type("scalar")
UNTYPED = Type("untyped")
# by id(node); the node is kept alongside so its id cannot be reused by another dict
_cache: dict[int, tuple[dict, Type]] = {}


def root_type(schema_name: str | None) -> Type:
    """The type of a whole object of the kind `schema_name`."""
    return type_of(schema.by_name(schema_name) if schema_name else {})


def type_of(node: dict | None) -> Type:
    """The SSA type of a schema node (a property node, an items node or a definition)."""
    if not node:
        return UNTYPED
    hit = _cache.get(id(node))
    if hit is not None and hit[0] is node:
        return hit[1]
    t = _build_type(node)
    _cache[id(node)] = (node, t)
    return t


def _build_type(node: dict) -> Type:
    resolved = schema.resolve(node)
    map_type = node.get("x-kubernetes-map-type") or resolved.get("x-kubernetes-map-type")
    if resolved.get("x-kubernetes-preserve-unknown-fields"):
        return UNTYPED
    if "properties" in resolved:
        return Type("struct", atomic=map_type == "atomic", props=resolved["properties"],
                    required=frozenset(resolved.get("required") or ()))
    typ = node.get("type") or resolved.get("type")
    if typ == "array" or "items" in node:
        items = node.get("items") or resolved.get("items") or {}
        list_type = node.get("x-kubernetes-list-type") or resolved.get("x-kubernetes-list-type")
        keys = tuple(node.get("x-kubernetes-list-map-keys") or ())
        if not list_type:
            strategy, merge_key = schema.patch_strategy(node)
            if strategy in ("merge", "merge,retainKeys"):
                list_type = "map" if merge_key else "set"
                keys = (merge_key,) if merge_key else ()
            else:
                list_type = "atomic"
        if list_type == "map" and not keys:
            list_type = "atomic"
        return Type("list", atomic=list_type == "atomic", elem=items, keys=keys,
                    list_type=list_type, item_name=schema.ref_name(items) or "")
    if typ == "object":
        ap = node.get("additionalProperties", resolved.get("additionalProperties"))
        if isinstance(ap, dict):
            return Type("map", atomic=map_type == "atomic", elem=ap)
        return UNTYPED
    if typ in ("string", "integer", "number", "boolean"):
        return SCALAR
    return UNTYPED


def _effective(t: Type, value: Any) -> Type:
    """Untyped values are deduced from their shape: maps are walked, lists are atomic."""
    if t.kind != "untyped":
        return t
    if isinstance(value, dict):
        return Type("map", elem=None)
    if isinstance(value, list):
        return Type("list", atomic=True, list_type="atomic")
    return SCALAR


def _child_type(t: Type, key: str, strict: bool) -> tuple[Type, bool]:
    """(type of map entry `key`, whether it is a declared struct field)."""
    if t.kind == "struct":
        node = t.props.get(key)
        if node is None:
            if strict:
                raise SchemaError(f".{key}: field not declared in schema")
            return UNTYPED, False
        return type_of(node), True
    return type_of(t.elem), False


# ---------------------------------------------------------------------------------------------
# Path elements

def _dumps(v: Any) -> str:
    return orjson.dumps(v, option=orjson.OPT_SORT_KEYS).decode()


def field_pe(name: str) -> str:
    return "f:" + name


def item_pe(t: Type, item: Any, index: int) -> str:
    """The path element of a list item (raises SchemaError if it has none)."""
    if t.list_type == "map":
        if not isinstance(item, dict):
            raise SchemaError(f"element {index}: associative list with keys may not have "
                              f"non-map elements")
        key = {}
        defaults = KEY_DEFAULTS.get(t.item_name, {})
        for k in t.keys:
            if k in item and item[k] is not None:
                key[k] = item[k]
            elif k in defaults:
                key[k] = defaults[k]
            else:
                raise SchemaError(f'element {index}: associative list with keys has an element '
                                  f'that omits key field "{k}" (and doesn\'t have default '
                                  f'value)')
        return "k:" + _dumps(key)
    if t.list_type == "set":
        if isinstance(item, (dict, list)):
            raise SchemaError(f"element {index}: associative list without keys has an element "
                              f"that's a map type")
        return "v:" + _dumps(item)
    return f"i:{index}"


def _index_items(t: Type, items: list, strict: bool) -> list[tuple[str, Any]] | None:
    """[(path element, item)] with repeats dropped; None if an item has no path element and
    we are lenient (the list is then treated as one atomic leaf)."""
    out = []
    seen = set()
    for i, item in enumerate(items):
        try:
            pe = item_pe(t, item, i)
        except SchemaError:
            if strict:
                raise
            return None
        if pe in seen:
            if strict:
                raise SchemaError(f"duplicate entries for key {pe_string(pe)}")
            continue
        seen.add(pe)
        out.append((pe, item))
    return out


def pe_string(pe: str) -> str:
    """A path element as upstream prints it in conflicts: .name, [name="x"], [="v"], [0]."""
    kind, _, rest = pe.partition(":")
    if kind == "f":
        return "." + rest
    if kind == "k":
        key = orjson.loads(rest)
        return "[" + ",".join(f"{k}={_value_string(v)}" for k, v in key.items()) + "]"
    if kind == "v":
        return f"[={_value_string(orjson.loads(rest))}]"
    return f"[{rest}]"


def _value_string(v: Any) -> str:
    if isinstance(v, str):
        return orjson.dumps(v).decode()
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    return _dumps(v) if isinstance(v, (dict, list)) else str(v)


def path_string(path: Path) -> str:
    return "".join(pe_string(pe) for pe in path)


# ---------------------------------------------------------------------------------------------
# FieldsV1 <-> sets

def from_fields_v1(tree: dict | None) -> set[Path]:
    out: set[Path] = set()

    def walk(node: dict, prefix: Path) -> None:
        for k, child in node.items():
            if k == ".":
                if prefix:
                    out.add(prefix)
                continue
            p = prefix + (k,)
            if not isinstance(child, dict) or not child:
                out.add(p)
            else:
                walk(child, p)
    if isinstance(tree, dict):
        walk(tree, ())
    return out


def _pe_sort_key(pe: str) -> tuple[int, str]:
    # upstream orders fields, then keys, then values, then indices
    return ({"f": 0, "k": 1, "v": 2, "i": 3}.get(pe[:1], 4), pe)


def to_fields_v1(paths: Iterable[Path]) -> dict:
    root: dict = {}
    members: set[Path] = set()
    for p in paths:
        node = root
        for pe in p:
            node = node.setdefault(pe, {})
        members.add(p)

    def emit(node: dict, prefix: Path) -> dict:
        out: dict = {}
        if node and prefix in members:
            out["."] = {}
        for pe in sorted(node, key=_pe_sort_key):
            out[pe] = emit(node[pe], prefix + (pe,))
        return out
    return emit(root, ())


def filter_prefixes(paths: set[Path], prefixes: Iterable[Path]) -> set[Path]:
    """The paths that are not under (or equal to) any of `prefixes`."""
    prefixes = [tuple(p) for p in prefixes]
    if not prefixes:
        return paths
    return {p for p in paths if not any(p[:len(x)] == x for x in prefixes)}


# ---------------------------------------------------------------------------------------------
# ToFieldSet: the fields a value sets

def field_set(value: Any, t: Type, strict: bool = False) -> set[Path]:
    """The fields `value` sets: leaves, list items, map entries and empty maps (upstream's
    ToFieldSet). With strict, fields missing from the schema raise SchemaError."""
    out: set[Path] = set()
    _to_set(value, t, (), out, strict)
    return out


def _to_set(value: Any, t: Type, path: Path, out: set[Path], strict: bool) -> None:
    t = _effective(t, value)
    if t.kind == "scalar" or value is None:
        out.add(path)
        return
    if t.kind == "list":
        if t.atomic or not isinstance(value, list):
            out.add(path)
            return
        items = _index_items(t, value, strict)
        if items is None:
            out.add(path)
            return
        et = type_of(t.elem)
        for pe, item in items:
            p = path + (pe,)
            try:
                _to_set(item, et, p, out, strict)
            except SchemaError as e:
                raise SchemaError(_prefixed(pe_string(pe), str(e))) from None
            out.add(p)
        return
    # struct or map
    if t.atomic or not isinstance(value, dict):
        out.add(path)
        return
    for k, v in value.items():
        ct, declared = _child_type(t, k, strict)
        p = path + (field_pe(k),)
        try:
            _to_set(v, ct, p, out, strict)
        except SchemaError as e:
            raise SchemaError(_prefixed("." + k, str(e))) from None
        if v is None or (isinstance(v, dict) and not v) or not declared:
            out.add(p)


def _prefixed(where: str, message: str) -> str:
    return where + message if message.startswith((".", "[")) else f"{where}: {message}"


def ensure_named_fields(paths: set[Path], t: Type) -> set[Path]:
    """Add, as members, the declared struct fields on the way to each path (upstream's
    EnsureNamedFieldsAreMembers), so that a whole struct field can be found owned or not."""
    out = set(paths)
    for p in paths:
        cur = t
        for i, pe in enumerate(p[:-1]):
            if pe.startswith("f:"):
                name = pe[2:]
                if cur.kind == "struct" and name in cur.props:
                    out.add(p[:i + 1])
                    cur = type_of(cur.props[name])
                elif cur.kind in ("map", "untyped"):
                    cur = type_of(cur.elem) if cur.kind == "map" else UNTYPED
                else:
                    break
            elif cur.kind == "list":
                cur = type_of(cur.elem)
            else:
                break
    return out


# ---------------------------------------------------------------------------------------------
# Compare: which fields an update added, removed or modified

@dataclass
class Comparison:
    added: set[Path] = dc_field(default_factory=set)
    removed: set[Path] = dc_field(default_factory=set)
    modified: set[Path] = dc_field(default_factory=set)

    def filter(self, prefixes: Iterable[Path]) -> "Comparison":
        prefixes = list(prefixes)
        return Comparison(filter_prefixes(self.added, prefixes),
                          filter_prefixes(self.removed, prefixes),
                          filter_prefixes(self.modified, prefixes))


_MISSING = object()


def compare(old: Any, new: Any, t: Type) -> Comparison:
    """Fields added, removed and modified from `old` to `new` (upstream's TypedValue.Compare).
    Leaves (scalars, atomic values, empty maps and lists) are reported when they change;
    list items and map entries also when they appear or disappear."""
    c = Comparison()
    _compare(old, new, t, (), c, hook=False)
    return c


def _is_leaf(t: Type, lhs: Any, rhs: Any) -> bool:
    """Scalars, atomic values, nulls, values of the wrong shape and two empty containers are
    compared as one leaf (upstream's emptyPromoteToLeaf keeps {} and null apart)."""
    if t.kind == "scalar" or t.atomic:
        return True
    # (unrolled: this runs for every node of every compared object)
    container = list if t.kind == "list" else dict
    if lhs is _MISSING:
        return rhs is _MISSING or not isinstance(rhs, container) or not rhs
    if not isinstance(lhs, container):
        return True
    if rhs is _MISSING:
        return not lhs
    return not isinstance(rhs, container) or (not lhs and not rhs)


def _same(lhs: Any, rhs: Any) -> bool:
    """A cheap sufficient test that two present subtrees hold the same JSON: most of an
    update is unchanged, and one C-level serialisation beats walking it field by field
    (orjson tells true from 1; a different key order merely falls back to the walk)."""
    if lhs is rhs:
        return True
    if not isinstance(lhs, (dict, list)) or type(lhs) is not type(rhs):
        return False
    try:
        return orjson.dumps(lhs) == orjson.dumps(rhs)
    except (TypeError, orjson.JSONEncodeError):
        return False


def _compare(lhs: Any, rhs: Any, t: Type, path: Path, c: Comparison, hook: bool) -> None:
    if lhs is not _MISSING and rhs is not _MISSING and _same(lhs, rhs):
        return
    t = _effective(t, rhs if rhs is not _MISSING else lhs)
    if _is_leaf(t, lhs, rhs):
        if lhs is _MISSING:
            c.added.add(path)
        elif rhs is _MISSING:
            c.removed.add(path)
        elif not json_equal(lhs, rhs):
            c.modified.add(path)
        return
    if hook:
        # a non-leaf item that appears or disappears is itself a field (upstream's postItemHook)
        if lhs is _MISSING:
            c.added.add(path)
        elif rhs is _MISSING:
            c.removed.add(path)
    if t.kind == "list":
        li = _index_items(t, lhs if lhs is not _MISSING else [], False)
        ri = _index_items(t, rhs if rhs is not _MISSING else [], False)
        if li is None or ri is None:
            if not json_equal(lhs, rhs):
                c.modified.add(path)
            return
        et = type_of(t.elem)
        lmap = dict(li)
        rmap = dict(ri)
        for pe in list(lmap) + [pe for pe in rmap if pe not in lmap]:
            _compare(lmap.get(pe, _MISSING), rmap.get(pe, _MISSING), et, path + (pe,), c, True)
        return
    lmap = lhs if lhs is not _MISSING else {}
    rmap = rhs if rhs is not _MISSING else {}
    for k in list(lmap) + [k for k in rmap if k not in lmap]:
        ct, declared = _child_type(t, k, False)
        # Struct-typed and required fields are not reported as added or removed themselves:
        # upstream's typed zero values always carry them (non-pointer Go fields).
        child_hook = not (declared and (k in t.required or _effective(
            ct, rmap.get(k, lmap.get(k))).kind == "struct"))
        _compare(lmap.get(k, _MISSING), rmap.get(k, _MISSING), ct, path + (field_pe(k),), c,
                 child_hook)


# ---------------------------------------------------------------------------------------------
# Merge: an applied configuration over the live object

def merge(live: Any, config: Any, t: Type) -> Any:
    """`config` merged into `live`: config's leaves win, maps merge by key, keyed lists merge
    by key (keeping the config's order for shared items and live-only items in place), atomic
    values are replaced (upstream's TypedValue.Merge)."""
    if live is _MISSING or live is None:
        return copy_json(config)
    if config is _MISSING:
        return copy_json(live)
    t = _effective(t, config)
    if t.kind == "scalar" or t.atomic:
        return copy_json(config)
    if t.kind == "list":
        if not isinstance(live, list) or not isinstance(config, list) or \
                (not live and not config):
            return copy_json(config)
        return _merge_list(live, config, t)
    if not isinstance(live, dict) or not isinstance(config, dict) or (not live and not config):
        return copy_json(config)
    out = {}
    for k in list(live) + [k for k in config if k not in live]:
        ct, _ = _child_type(t, k, False)
        out[k] = merge(live.get(k, _MISSING), config.get(k, _MISSING), ct)
    return out


def _merge_list(live: list, config: list, t: Type) -> list:
    li = _index_items(t, live, False)
    ri = _index_items(t, config, False)
    if li is None or ri is None:
        return copy_json(config)
    et = type_of(t.elem)
    lmap, rmap = dict(li), dict(ri)
    lpes = [pe for pe, _ in li]
    rpes = [pe for pe, _ in ri]
    shared = [pe for pe in rpes if pe in lmap]
    next_shared = shared.pop(0) if shared else None
    merged_rhs: set[str] = set()
    out = []
    i = j = 0
    while i < len(lpes) or j < len(rpes):
        if i < len(lpes) and j < len(rpes):
            pe = lpes[i]
            if pe == rpes[j]:
                merged_rhs.add(pe)
                out.append(merge(lmap[pe], rmap[pe], et))
                i += 1
                j += 1
                next_shared = shared.pop(0) if shared else None
                continue
            if pe in rmap and next_shared is not None and next_shared != pe:
                i += 1  # a shared item, but not the one due now
                continue
        if i < len(lpes):
            pe = lpes[i]
            if pe not in rmap:
                out.append(copy_json(lmap[pe]))
                i += 1
                continue
            if pe in merged_rhs:
                i += 1
                continue
        if j < len(rpes):
            pe = rpes[j]
            merged_rhs.add(pe)
            out.append(merge(lmap.get(pe, _MISSING), rmap[pe], et))
            j += 1
            if next_shared is not None and next_shared == pe:
                next_shared = shared.pop(0) if shared else None
    return out


# ---------------------------------------------------------------------------------------------
# Remove: drop fields (and what is under them) from a value

def remove(value: Any, paths: set[Path], t: Type) -> Any:
    """`value` without the fields in `paths` and everything under them. A map or list that
    this empties is dropped from its parent, as upstream's RemoveItems leaves a null there."""
    trie = _trie(paths)
    if trie.get(".") or () in paths:
        return None
    out = _remove(value, trie, t)
    return out if out is not _MISSING else {}


def _trie(paths: Iterable[Path]) -> dict:
    root: dict = {}
    for p in paths:
        node = root
        for pe in p:
            node = node.setdefault(pe, {})
        node["."] = True
    return root


def _remove(value: Any, trie: dict, t: Type) -> Any:
    t = _effective(t, value)
    if t.kind == "scalar" or t.atomic:
        return value
    if t.kind == "list" and isinstance(value, list):
        items = _index_items(t, value, False)
        if items is None:
            return value
        et = type_of(t.elem)
        out = []
        for pe, item in items:
            sub = trie.get(pe)
            if sub is None:
                out.append(item)
            elif sub.get("."):
                continue
            else:
                v = _remove(item, sub, et)
                if v is not _MISSING:
                    out.append(v)
        return out if out or not value else _MISSING
    if isinstance(value, dict):
        out_map = {}
        for k, v in value.items():
            sub = trie.get(field_pe(k))
            if sub is None:
                out_map[k] = v
                continue
            if sub.get("."):
                continue
            ct, _ = _child_type(t, k, False)
            nv = _remove(v, sub, ct)
            if nv is not _MISSING:
                out_map[k] = nv
        return out_map if out_map or not value else _MISSING
    return value


def iter_paths(paths: set[Path]) -> Iterator[Path]:
    """Paths in upstream's order (for conflict messages)."""
    return iter(sorted(paths, key=lambda p: [_pe_sort_key(pe) for pe in p]))
