"""Server-side apply (`application/apply-patch+yaml`): merge an applied configuration into the
live object and track who owns which field (upstream's structured-merge-diff Updater.Apply
behind kube-apiserver's field manager).

An apply by manager M with configuration C:
1. checks C: its apiVersion/kind must be the endpoint's (`400 invalid object type: ...`) and it
   may not carry metadata.managedFields (`400 metadata.managedFields must be nil`);
2. merges C into the live object (C's values win; keyed lists merge by key; atomic lists and
   maps are replaced);
3. prunes: fields M applied last time, left out of C and owned by no other manager are
   removed (with everything under them);
4. finds conflicts: fields C adds or changes that another manager owns. Without force that is
   `409 Conflict`, `Apply failed with 1 conflict: conflict with "kubectl-client-side-apply"
   using apps/v1: .spec.replicas` (upstream's wording, plural form for several, one
   `FieldManagerConflict` cause per field); with force M takes those fields over. Two
   managers applying the same value share the field without conflict;
5. records M's entry (operation Apply) = the fields C sets, with time = now when the object
   changed. Fields removed from the object are dropped from every manager.

Nulls in C mean "not set" (they are dropped before merging).
"""

from __future__ import annotations

from typing import Any, Iterable

from k1s.api import schema
from k1s.api.errors import StatusError, bad_request

from .fieldset import (Path, SchemaError, Type, compare, ensure_named_fields, field_set,
                       filter_prefixes, iter_paths, merge, path_string, remove, root_type)
from .managedfields import (APPLY, BEFORE_FIRST_APPLY, STRIPPED, UPDATE, Entry, decode,
                            default_reset_fields, encode, managed_fields_hook, manager_string,
                            record_update, reset_paths, rfc3339, strip_meta,
                            without_managed_fields)

__all__ = ["apply", "server_side_apply", "managed_fields_hook"]
from .merge import copy_json, json_equal


def apply(live: dict | None, applied: dict, schema_name: str, manager: str, force: bool,
          managed_fields: list | None = None, *, now: Any = None, subresource: str = "",
          reset_fields: Iterable[Any] = ()) -> tuple[dict, list[dict]]:
    """Server-side apply of `applied` by `manager` onto `live` (None: the object does not exist
    yet; the caller then creates the result and answers 201).

    managed_fields: live's current entries (default: live's metadata.managedFields).
    schema_name: the kind's schema, e.g. io.k8s.api.apps.v1.StatefulSet.
    reset_fields: fields the strategy resets and nobody owns (["status"] on the main resource).
    Returns (new object with metadata.managedFields set, the managedFields list). On a no-op
    the object equals `live`. Raises StatusError 400 (bad configuration) or 409 (conflicts)."""
    if not isinstance(applied, dict):
        raise bad_request("error decoding YAML: the applied configuration is not an object")
    _check_kind(applied, schema_name)
    meta = applied.get("metadata")
    if isinstance(meta, dict) and meta.get("managedFields") is not None:
        raise bad_request("metadata.managedFields must be nil")

    t = root_type(schema_name)
    config = _drop_nulls(applied)
    try:
        config_set = field_set(config, t, strict=True)
    except SchemaError as e:
        raise bad_request(f"failed to create typed patch object ({_describe(applied)}): "
                          f"{str(e).lstrip()}") from None
    reset = reset_paths(reset_fields)
    # the full set (with metadata.name, kind, ...) keeps those in place when pruning; the
    # stripped set is what the applier is recorded to own
    config_full = filter_prefixes(config_set, reset)
    config_set = strip_meta(config_full)

    if managed_fields is None:
        managed_fields = ((live or {}).get("metadata") or {}).get("managedFields") or []
    now_s = rfc3339(now)
    old = without_managed_fields(live)
    managers = decode(managed_fields)
    api_version = applied.get("apiVersion") or ""
    if live and not managers:
        # upstream's skipNonAppliedManager: an object nobody tracked yet is owned, field by
        # field, by "before-first-apply", so the first applier sees conflicts on what it changes
        record_update(managers, {}, old, t,
                      Entry(BEFORE_FIRST_APPLY, UPDATE, api_version), now_s, reset)

    me = Entry(manager, APPLY, api_version, subresource)
    previous = managers.get(me.key)
    last_set = set(previous.fields) if previous else set()

    merged = merge(old, config, t)
    me_now = Entry(manager, APPLY, api_version, subresource,
                   time=previous.time if previous else None, fields=config_set)
    managers[me.key] = me_now
    if last_set:
        merged = _prune(merged, last_set, config_full, managers, t)

    c = compare(old, merged, t).filter(reset)
    changed = c.added | c.modified
    conflicts = {k: e.fields & changed for k, e in managers.items()
                 if k != me.key and e.fields & changed}
    if conflicts and not force:
        raise _conflict_error([managers[k] for k in conflicts], conflicts)
    for k, e in managers.items():
        if k == me.key:
            continue
        e.fields -= conflicts.get(k, set())
        e.fields -= c.removed
    for k in [k for k, e in managers.items() if not e.fields]:
        del managers[k]

    if json_equal(merged, old):
        result = copy_json(old)
    else:
        result = merged
        if me.key in managers:
            managers[me.key].time = now_s
    entries = encode(managers)
    result.setdefault("metadata", {})
    if isinstance(result["metadata"], dict):
        result["metadata"]["managedFields"] = entries
    return result, entries


def server_side_apply(live: dict | None, applied: Any, schema_name: str, manager: str,
                      force: bool, subresource: str | None = None, *, now: Any = None) -> dict:
    """`apply` for the HTTP layer: the new object (metadata.managedFields set), with the
    default reset fields for the subresource ("status" on the main resource)."""
    sub = subresource or ""
    return apply(live, applied, schema_name, manager, force, None, now=now, subresource=sub,
                 reset_fields=default_reset_fields(schema_name, sub))[0]


def _prune(merged: dict, last_set: set[Path], config_full: set[Path], managers: dict,
           t: Type) -> dict:
    """Remove what the applier owned last time, no longer applies and nobody else owns
    (upstream's prune + addBackOwnedItems + addBackDanglingItems)."""
    owned: set[Path] = set(config_full)
    for e in managers.values():
        owned |= e.fields
    owned = ensure_named_fields(owned, t)
    last = ensure_named_fields(last_set, t)
    # server-set metadata is never pruned, whatever the sets say
    to_remove = {p for p in last - owned if p not in STRIPPED}
    if not to_remove:
        return merged
    out = remove(merged, to_remove, t)
    return out if isinstance(out, dict) else {}


def _conflict_error(entries: list[Entry], conflicts: dict) -> StatusError:
    ordered = sorted(zip(entries, conflicts.values()),
                     key=lambda x: (x[0].manager, x[0].operation, x[0].api_version,
                                    x[0].subresource))
    causes = []
    lines = []
    total = 0
    for e, paths in ordered:
        who = manager_string(e)
        lines.append(f"conflicts with {who}:")
        for p in iter_paths(paths):
            causes.append({"reason": "FieldManagerConflict", "message": f"conflict with {who}",
                           "field": path_string(p)})
            lines.append(f"- {path_string(p)}")
            total += 1
    if total == 1:
        message = (f"Apply failed with 1 conflict: {causes[0]['message']}: "
                   f"{causes[0]['field']}")
    else:
        message = f"Apply failed with {total} conflicts: " + "\n".join(lines)
    return StatusError(409, "Conflict", message, {"causes": causes})


def _gvk_of(schema_name: str) -> tuple[str, str, str] | None:
    gvks = schema.by_name(schema_name).get("x-kubernetes-group-version-kind") or []
    if not gvks:
        return None
    g = gvks[0]
    return g.get("group", ""), g.get("version", ""), g.get("kind", "")


def _split_api_version(api_version: str) -> tuple[str, str]:
    group, _, version = (api_version or "").rpartition("/")
    return group, version


def _check_kind(applied: dict, schema_name: str) -> None:
    want = _gvk_of(schema_name)
    if want is None:
        return
    group, version = _split_api_version(applied.get("apiVersion") or "")
    kind = applied.get("kind") or ""
    if (group, version, kind) != want:
        raise bad_request(f"invalid object type: {group}/{version}, Kind={kind}")


def _describe(applied: dict) -> str:
    meta = applied.get("metadata") or {}
    group, version = _split_api_version(applied.get("apiVersion") or "")
    nn = f"{meta.get('namespace')}/{meta.get('name')}" if meta.get("namespace") else \
        f"{meta.get('name') or ''}"
    return f"{nn}; {group}/{version}, Kind={applied.get('kind') or ''}"


def _drop_nulls(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _drop_nulls(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [_drop_nulls(x) for x in v]
    return v
