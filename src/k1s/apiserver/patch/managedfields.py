"""metadata.managedFields: who owns which fields, and how ordinary writes change that.

Every write records its field manager (`?fieldManager=`, default from the User-Agent — the
caller's business) in `metadata.managedFields`. An entry is identified by manager, operation
("Apply" or "Update"), subresource and — for Update only — apiVersion, as upstream's
BuildManagerIdentifier does. Its `fieldsV1` is a field set (see fieldset.py).

For a non-apply write (create, update, patch) `update_managed_fields` does what upstream's
field manager does:
- the fields the write added or changed move to the writer (taken from every other manager),
  and fields it removed are dropped from every manager;
- the writer's entry gets `time: now` only if it gained fields; empty entries are dropped;
- fields nobody owns: apiVersion, kind, metadata.name/namespace/uid/resourceVersion/
  generation/creationTimestamp/selfLink/managedFields (upstream's stripped meta fields), and
  the strategy's reset fields (status on the main resource, spec on /status), passed in;
- an existing object without managedFields is not tracked by updates (upstream skips it; the
  first apply then records the existing fields as "before-first-apply").
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any, Iterable

import orjson

from k1s.api import schema

from .fieldset import (Path, Type, compare, from_fields_v1, root_type, to_fields_v1)

APPLY = "Apply"
UPDATE = "Update"
BEFORE_FIRST_APPLY = "before-first-apply"

# upstream's stripMetaManager: exact paths nobody owns
STRIPPED: frozenset[Path] = frozenset({
    ("f:apiVersion",), ("f:kind",), ("f:metadata",),
    ("f:metadata", "f:name"), ("f:metadata", "f:namespace"),
    ("f:metadata", "f:creationTimestamp"), ("f:metadata", "f:selfLink"),
    ("f:metadata", "f:uid"), ("f:metadata", "f:clusterName"),
    ("f:metadata", "f:generation"), ("f:metadata", "f:managedFields"),
    ("f:metadata", "f:resourceVersion"),
})


@dataclass
class Entry:
    """One manager's record, decoded."""
    manager: str
    operation: str
    api_version: str
    subresource: str = ""
    time: str | None = None
    fields: set[Path] = field(default_factory=set)

    @property
    def key(self) -> tuple[str, str, str, str]:
        # appliers keep one identity across apiVersions; updaters have one per apiVersion
        return (self.manager, self.operation,
                "" if self.operation == APPLY else self.api_version, self.subresource)

    def encode(self) -> dict:
        e: dict[str, Any] = {"manager": self.manager, "operation": self.operation,
                             "apiVersion": self.api_version}
        if self.time:
            e["time"] = self.time
        e["fieldsType"] = "FieldsV1"
        e["fieldsV1"] = _fields_v1(self.fields)
        if self.subresource:
            e["subresource"] = self.subresource
        return e


Managers = dict  # key tuple -> Entry, in input order


def rfc3339(now: Any = None) -> str:
    """`now` as upstream's metav1.Time renders it (seconds, UTC, Z)."""
    if isinstance(now, str):
        return now
    if now is None:
        now = _dt.datetime.now(_dt.timezone.utc)
    if now.tzinfo is not None:
        now = now.astimezone(_dt.timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


# Field sets repeat: every pod of a StatefulSet, every claim of a template has the same ones.
# Both conversions are memoised by content (a set's frozenset, a tree's JSON). A fieldsV1 tree
# is shared by every object that has it: it only goes into objects being stored, which nobody
# changes once written (the watch cache keeps them; every later write decodes its own copy).
_MEMO_MAX = 4096
_TREES: dict[frozenset, dict] = {}
_PATHS: dict[bytes, frozenset] = {}


def _fields_v1(fields: set[Path]) -> dict:
    key = frozenset(fields)
    tree = _TREES.get(key)
    if tree is None:
        tree = to_fields_v1(fields)
        if len(_TREES) >= _MEMO_MAX:
            _TREES.clear()
        _TREES[key] = tree
    return tree


def _paths_of(tree: Any) -> set[Path]:
    if not isinstance(tree, dict):
        return from_fields_v1(tree)
    try:
        key = orjson.dumps(tree)
    except (TypeError, orjson.JSONEncodeError):
        return from_fields_v1(tree)
    fs = _PATHS.get(key)
    if fs is None:
        fs = frozenset(from_fields_v1(tree))
        if len(_PATHS) >= _MEMO_MAX:
            _PATHS.clear()
        _PATHS[key] = fs
    return set(fs)


def decode(managed_fields: Iterable[dict] | None) -> Managers:
    """managedFields entries by identity; malformed entries are skipped."""
    out: Managers = {}
    for raw in managed_fields or ():
        if not isinstance(raw, dict) or not isinstance(raw.get("manager", ""), str):
            continue
        if raw.get("fieldsType", "FieldsV1") != "FieldsV1":
            continue
        e = Entry(manager=raw.get("manager") or "", operation=raw.get("operation") or UPDATE,
                  api_version=raw.get("apiVersion") or "",
                  subresource=raw.get("subresource") or "", time=raw.get("time"),
                  fields=_paths_of(raw.get("fieldsV1")))
        prev = out.get(e.key)
        if prev is not None:
            prev.fields |= e.fields
        else:
            out[e.key] = e
    return out


def encode(managers: Managers) -> list[dict]:
    """Entries as upstream stores them: non-empty, sorted by operation (Apply before Update),
    time, manager, apiVersion, subresource."""
    entries = [e for e in managers.values() if e.fields]
    entries.sort(key=lambda e: (e.operation, e.time or "", e.manager, e.api_version,
                                e.subresource))
    return [e.encode() for e in entries]


def reset_paths(reset_fields: Iterable[Any]) -> list[Path]:
    """("status",) / "status" / "metadata.labels" -> (("f:status",), ...)."""
    out = []
    for r in reset_fields or ():
        names = r.split(".") if isinstance(r, str) else list(r)
        out.append(tuple(n if n.startswith(("f:", "k:", "v:", "i:")) else "f:" + n
                         for n in names))
    return out


def strip_meta(paths: set[Path]) -> set[Path]:
    return {p for p in paths if p not in STRIPPED}


def without_managed_fields(obj: dict | None) -> dict:
    """A shallow-copied object without metadata.managedFields (never compared or owned)."""
    if not obj:
        return {}
    out = dict(obj)
    meta = out.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        meta = dict(meta)
        del meta["managedFields"]
        out["metadata"] = meta
    return out


def schema_name_of(obj: dict) -> str | None:
    api_version = obj.get("apiVersion") or ""
    group, _, version = api_version.rpartition("/")
    return schema.name_for_kind(group, version, obj.get("kind") or "")


def record_update(managers: Managers, old: dict, new: dict, t: Type, key_entry: Entry,
                  now: str, reset: list[Path]) -> Managers:
    """Upstream's Updater.Update wrapped in managedFieldsUpdater: the write's changes move to
    `key_entry`'s manager. `old`/`new` carry no managedFields. Mutates and returns managers."""
    # top-level reset fields (spec on /status, status on the main resource) are dropped
    # before comparing: whatever they hold would be filtered out anyway
    top = {p[0][2:] for p in reset if len(p) == 1 and p[0].startswith("f:")}
    if top:
        old = {k: v for k, v in old.items() if k not in top}
        new = {k: v for k, v in new.items() if k not in top}
    c = compare(old, new, t).filter(reset)
    changed = c.added | c.modified
    for e in managers.values():
        e.fields -= changed
        e.fields -= c.removed
    gained = strip_meta(changed)
    if gained:
        e = managers.get(key_entry.key)
        if e is None:
            e = managers[key_entry.key] = key_entry
        e.fields |= gained
        e.api_version = key_entry.api_version
        e.time = now
    for k in [k for k, e in managers.items() if not e.fields]:
        del managers[k]
    return managers


def update_managed_fields(old_obj: dict | None, new_obj: dict, manager: str,
                          operation: str = UPDATE, api_version: str | None = None,
                          subresource: str = "", managed_fields: list | None = None,
                          now: Any = None, *, schema_name: str | None = None,
                          reset_fields: Iterable[Any] = ()) -> list[dict]:
    """The managedFields to store with `new_obj` after a create (old_obj None), update or
    patch by `manager`.

    managed_fields: the current entries (usually old_obj's; see `managed_fields_for_write`).
    api_version: the request's group/version (default: new_obj's apiVersion).
    subresource: "" | "status" | "scale". now: datetime or RFC 3339 string (default: now).
    schema_name: the kind's schema (default: looked up from new_obj's apiVersion/kind).
    reset_fields: fields the strategy resets, never owned (e.g. ["status"] on the main
    resource, ["spec"] on /status)."""
    if managed_fields is None:
        managed_fields = ((old_obj or {}).get("metadata") or {}).get("managedFields") or []
    if not managed_fields and old_obj and ((old_obj.get("metadata") or {}).get("uid")):
        # upstream's skipNonAppliedManager: an untracked existing object stays untracked
        return []
    api_version = api_version or new_obj.get("apiVersion") or ""
    t = root_type(schema_name or schema_name_of(new_obj))
    managers = decode(managed_fields)
    entry = Entry(manager=manager, operation=operation, api_version=api_version,
                  subresource=subresource)
    record_update(managers, without_managed_fields(old_obj), without_managed_fields(new_obj),
                  t, entry, rfc3339(now), reset_paths(reset_fields))
    return encode(managers)


def managed_fields_for_write(live_obj: dict | None, new_obj: dict,
                             subresource: str = "") -> list[dict]:
    """Which managedFields a write starts from (upstream's decodeLiveOrNew): a subresource
    write always uses the live object's; `[{}]` in the request resets them; otherwise the
    request's own managedFields if it sent valid ones, else the live object's (so clients
    that drop the field do not wipe it)."""
    live_mf = ((live_obj or {}).get("metadata") or {}).get("managedFields") or []
    if subresource:
        return live_mf
    new_mf = (new_obj.get("metadata") or {}).get("managedFields")
    if isinstance(new_mf, list) and len(new_mf) == 1 and new_mf[0] == {}:
        return []
    if isinstance(new_mf, list) and new_mf and all(
            isinstance(e, dict) and isinstance(e.get("fieldsV1", {}), dict) for e in new_mf):
        return new_mf
    return live_mf


def manager_string(e: Entry) -> str:
    """A manager as upstream prints it in conflicts: "kubectl" / "x" using apps/v1 /
    "x" with subresource "status"."""
    s = orjson.dumps(e.manager).decode()
    if e.subresource:
        s += " with subresource " + orjson.dumps(e.subresource).decode()
    if e.operation == APPLY:
        return s
    return f"{s} using {e.api_version}"


# ---------------------------------------------------------------------------------------------
# The object store's hook

def default_reset_fields(schema_name: str | None, subresource: str | None,
                         has_status: bool = True) -> list[str]:
    """What the write may not change, hence nobody owns through it (upstream's per-strategy
    reset fields, simplified): status on the main resource, everything but status on
    /status."""
    props = (schema.by_name(schema_name).get("properties") or {}) if schema_name else {}
    if subresource == "status":
        return [p for p in props if p not in ("status", "metadata", "apiVersion", "kind")]
    if has_status and "status" in props:
        return ["status"]
    return []


def _manager_of(opts: Any) -> str:
    """?fieldManager=, else the User-Agent's product (upstream's managerOrUserAgent)."""
    m = getattr(opts, "field_manager", "") or ""
    if m:
        return m
    ua = getattr(opts, "user_agent", "") or ""
    return ua.split("/", 1)[0][:128] or "unknown"


def _applied_in_this_write(old: dict | None, new: dict, manager: str) -> bool:
    """Did server-side apply already record this write? (Its result carries an Apply entry for
    the manager that the stored object did not have in that form.)"""
    new_mf = (new.get("metadata") or {}).get("managedFields") or []
    old_mf = ((old or {}).get("metadata") or {}).get("managedFields") or []
    mine = [e for e in new_mf if isinstance(e, dict) and e.get("manager") == manager
            and e.get("operation") == APPLY]
    return bool(mine) and any(e not in old_mf for e in mine)


def managed_fields_hook(r: Any, old: dict | None, new: dict, opts: Any,
                        operation: str = UPDATE, subresource: str | None = None) -> None:
    """ObjectStore.managed_fields: set new.metadata.managedFields for a create (old None) or
    an update of resource `r` (a k1s.api.registry.Resource) by opts.field_manager."""
    manager = _manager_of(opts)
    if operation == UPDATE and _applied_in_this_write(old, new, manager):
        return
    sub = subresource if subresource in ("status", "scale") else ""
    name = schema.name_for_kind(r.group, r.version, r.kind)
    has_status = "status" in (getattr(r, "subresources", ()) or ())
    start = managed_fields_for_write(old, new, sub)
    mf = update_managed_fields(old, new, manager, operation, r.group_version if hasattr(
        r, "group_version") else new.get("apiVersion"), sub, start, None, schema_name=name,
        reset_fields=default_reset_fields(name, sub, has_status))
    meta = new.setdefault("metadata", {})
    if mf:
        meta["managedFields"] = mf
    else:
        meta.pop("managedFields", None)
