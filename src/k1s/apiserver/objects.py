"""The generic object store: every create, read, update, patch and delete of every resource.

This is upstream's generic registry (`genericregistry.Store`) in one place. A write passes:

    decode (types, unknown fields) -> defaults -> strategy -> admission -> validation -> store

and only then is it acknowledged; a refused write stores nothing. Reads come from the watch
cache once it has caught up with the store (consistent reads). Updates are optimistic: the
stored object is read, the change is computed, and the write is a compare-and-swap on its
revision, retried for patches and unconditional updates when another writer got there first.

Deletion follows upstream: preconditions; finalizers for propagation (`foregroundDeletion`,
`orphan`); graceful deletion of scheduled pods (deletionTimestamp in the future, the node agent
finishes it); namespaces wait for their `kubernetes` finalizer; an object with
deletionTimestamp is removed by the update that clears its last finalizer.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import orjson

from ..api import registry, schema
from ..api.errors import (StatusError, already_exists, bad_request, conflict, forbidden,
                          invalid_error, not_found_error)
from ..api.registry import Resource
from ..store.interface import (Compacted, FutureRevision, KeyExists, KeyNotFound,
                               RevisionConflict, Store)
from . import strategy
from .admission import Attributes, Chain
from .meta import generate_name, new_uid, now_rfc3339
from .watchcache import Entry, WatchCache, decode

log = logging.getLogger(__name__)

# Optimistic-concurrency retries for patches and unconditional updates. Upstream retries
# without bound; each round lets at least one of the writers racing on a key through, so this
# many concurrent writers of one object all succeed.
MAX_UPDATE_RETRIES = 64
# Unknown fields dropped with a warning even under fieldValidation=Strict, where upstream
# refuses them: the user's source document puts the RBD *StorageClass* parameters imageformat
# and imagefeatures in its PersistentVolume, and its walkthrough (the acceptance scenario)
# must apply it. Only these two paths; everything else is as strict as upstream
# (docs/compatibility.md).
TOLERATED_UNKNOWN = frozenset({("PersistentVolume", "spec.rbd.imageformat"),
                               ("PersistentVolume", "spec.rbd.imagefeatures")})
# How many generated names to try before giving up on a create with generateName.
GENERATE_NAME_RETRIES = 8

FINALIZER_FOREGROUND = "foregroundDeletion"
FINALIZER_ORPHAN = "orphan"
FINALIZER_NAMESPACE = "kubernetes"


@dataclass
class WriteOptions:
    field_manager: str = ""
    field_validation: str = "Warn"      # Strict | Warn | Ignore
    dry_run: bool = False
    force: bool = False
    user_agent: str = ""                # names the manager when fieldManager is absent
    warnings: list[str] = field(default_factory=list)


@dataclass
class ListOptions:
    label_selector: Any = None          # k1s.api.selectors.LabelSelector or None
    field_selector: Any = None          # k1s.api.fields.FieldSelector or None
    limit: int = 0
    continue_token: str | None = None
    resource_version: str | None = None
    resource_version_match: str | None = None


@dataclass
class ListResult:
    entries: list[Entry]
    revision: int
    continue_token: str | None = None
    remaining: int | None = None


def encode_for_store(obj: dict) -> bytes:
    """Objects are stored without resourceVersion: the store's revision is the version."""
    md = obj.get("metadata")
    rv = md.pop("resourceVersion", None) if md else None
    try:
        return orjson.dumps(obj)
    finally:
        if rv is not None:
            md["resourceVersion"] = rv


def _copy(obj: dict) -> dict:
    return orjson.loads(orjson.dumps(obj))


def _decode_stamped(value: bytes, mod_revision: int) -> dict:
    """A private copy of a stored or cached object, carrying its resourceVersion."""
    obj = orjson.loads(value)
    obj.setdefault("metadata", {})["resourceVersion"] = str(mod_revision)
    return obj


@dataclass(slots=True)
class _CachedKV:
    value: bytes
    mod_revision: int


class ObjectStore:
    def __init__(self, store: Store, cache: WatchCache, admission: Chain | None = None):
        self.store = store
        self.cache = cache
        self.admission = admission or Chain([])
        # hooks for later layers (managed fields, SSA), set by the server
        self.managed_fields: Callable[..., None] | None = None

    # ------------------------------------------------------------------------- cache reads
    def cached(self, plural: str, namespace: str | None, name: str, group: str = "") -> dict | None:
        r = registry.lookup(group, "v1", plural) or registry.get(plural)
        e = self.cache.for_resource(r).entries.get(r.key(namespace, name))
        return e.obj if e else None

    def cached_all(self, plural: str, group: str = "") -> list[dict]:
        r = registry.get(plural + ("." + group if group else ""))
        return [e.obj for e in self.cache.for_resource(r).entries.values()]

    async def get(self, r: Resource, namespace: str | None, name: str) -> Entry:
        if self.cache.revision < self.store.current_revision():
            await self.cache.sync()
        e = self.cache.for_resource(r).entries.get(r.key(namespace, name))
        if e is None:
            raise not_found_error(r.plural, r.group, name)
        return e

    async def get_at(self, r: Resource, namespace: str | None, name: str, rv: int) -> Entry:
        try:
            kv = await self.store.get(r.key(namespace, name), revision=rv)
        except Compacted:
            raise StatusError(410, "Expired", f"too old resource version: {rv}")
        except FutureRevision as e:
            raise StatusError(504, "Timeout", f"Too large resource version: {rv}, current: "
                              f"{e.current}")
        if kv is None:
            raise not_found_error(r.plural, r.group, name)
        obj, raw = decode(kv.value, kv.mod_revision)
        return Entry(obj, raw, kv.mod_revision)

    # ------------------------------------------------------------------------------- lists
    async def list(self, r: Resource, namespace: str | None, opts: ListOptions) -> ListResult:
        if opts.continue_token:
            rev, start = decode_continue(opts.continue_token)
            return await self._list_from_store(r, namespace, opts, rev, start)
        rv = opts.resource_version
        match = opts.resource_version_match
        if rv and rv != "0" and match == "Exact":
            return await self._list_from_store(r, namespace, opts, _parse_rv(rv), None)
        if rv and rv != "0":
            # NotOlderThan (the default for a set resourceVersion): the cache, once it is there
            want = _parse_rv(rv)
            if want > self.store.current_revision():
                raise StatusError(504, "Timeout", f"Too large resource version: {want}, current: "
                                  f"{self.store.current_revision()}")
            await self.cache.wait_for(want)
        elif rv != "0":
            await self.cache.sync()
        c = self.cache.for_resource(r)
        revision = self.cache.revision
        prefix = r.list_prefix(namespace)
        name = opts.field_selector.exact_name() if opts.field_selector is not None else None
        if name is not None and (namespace or not r.namespaced):
            e = c.entries.get(r.key(namespace, name))
            keys = [r.key(namespace, name)] if e is not None else []
        else:
            keys = c.keys_with_prefix(prefix)
        out: list[Entry] = []
        limit = opts.limit or 0
        for i, key in enumerate(keys):
            e = c.entries[key]
            if self._matches(r, e.obj, opts):
                out.append(e)
                if limit and len(out) == limit:
                    rest = len(keys) - i - 1
                    if rest:
                        filtered = opts.label_selector is not None or \
                            opts.field_selector is not None
                        return ListResult(out, revision, encode_continue(revision, key),
                                          None if filtered else rest)
                    break
        return ListResult(out, revision)

    def _matches(self, r: Resource, obj: dict, opts: ListOptions) -> bool:
        if opts.label_selector is not None and not opts.label_selector.matches(
                (obj.get("metadata") or {}).get("labels") or {}):
            return False
        if opts.field_selector is not None:
            from ..api import fields as fieldsel
            if not opts.field_selector.matches(fieldsel.field_set(r, obj)):
                return False
        return True

    async def _list_from_store(self, r: Resource, namespace: str | None, opts: ListOptions,
                               rev: int, start: str | None) -> ListResult:
        prefix = r.list_prefix(namespace)
        limit = opts.limit or 0
        out: list[Entry] = []
        after = start
        filtered = opts.label_selector is not None or opts.field_selector is not None
        while True:
            try:
                res = await self.store.range(prefix, revision=rev, limit=max(limit, 500)
                                             if limit else 0, start_after=after,
                                             count=bool(limit) and not filtered)
            except Compacted:
                if opts.continue_token:
                    # the token continues from the same key at the latest revision (rv 0)
                    raise StatusError(
                        410, "Expired",
                        "The provided continue parameter is too old to display a consistent "
                        "list result. You can start a new list without the continue parameter, "
                        "or use the continue token in this response to retrieve the remainder "
                        "of the results. Continuing with the provided token results in an "
                        "inconsistent list - objects that were created, modified, or deleted "
                        "between the time the first chunk was returned and now may show up in "
                        "the list.", metadata={"continue": encode_continue(0, after or "")})
                raise StatusError(410, "Expired",
                                  "The resourceVersion for the provided list is too old.")
            except FutureRevision as e:
                raise StatusError(504, "Timeout", f"Too large resource version: {rev}, "
                                  f"current: {e.current}")
            for i, kv in enumerate(res.kvs):
                obj, raw = decode(kv.value, kv.mod_revision)
                after = kv.key
                if self._matches(r, obj, opts):
                    out.append(Entry(obj, raw, kv.mod_revision))
                    if limit and len(out) == limit:
                        more = res.more or kv is not res.kvs[-1]
                        if more:
                            remaining = None if filtered else res.count - i - 1
                            return ListResult(out, rev or res.revision,
                                              encode_continue(rev or res.revision, kv.key),
                                              remaining)
                        return ListResult(out, rev or res.revision)
            if not res.more:
                return ListResult(out, rev or res.revision)
            rev = rev or res.revision

    # ----------------------------------------------------------------------------- decoding
    def decode_body(self, r: Resource, obj: Any, opts: WriteOptions) -> dict:
        """Check what Go's decoder checks: an object, of this kind, with values of the right
        types; unknown fields are dropped (Strict refuses them, Warn reports them)."""
        if not isinstance(obj, dict):
            raise bad_request(f"the object provided is unrecognized (must be of type {r.kind})")
        kind = obj.get("kind")
        api_version = obj.get("apiVersion")
        if kind not in (None, "", r.kind):
            body_version = str(api_version or "").rpartition("/")[2] or r.version
            raise bad_request(
                f'{kind} in version "{body_version}" cannot be handled as a {r.kind}: '
                f'converting ({body_version}.{kind}) to ({_internal_package(r)}.{r.kind}): '
                f'unknown conversion')
        if api_version not in (None, "", r.api_version):
            raise bad_request(f"the API version in the data ({api_version}) does not match the "
                              f"expected API version ({r.api_version})")
        obj["kind"] = r.kind
        obj["apiVersion"] = r.api_version
        md = obj.get("metadata")
        if md is None:
            obj["metadata"] = md = {}
        elif not isinstance(md, dict):
            raise bad_request(f"{r.kind} in version \"{r.version}\" cannot be handled as a "
                              f"{r.kind}: json: cannot unmarshal {type(md).__name__} into Go "
                              f"struct field {r.kind}.metadata of type v1.ObjectMeta")
        name = schema.name_for_kind(r.group, r.version, r.kind)
        if name is None:
            return obj
        try:
            unknown = schema.check_object(obj, name, prune=True)
        except schema.DecodeError as e:
            raise bad_request(f'{r.kind} in version "{r.version}" cannot be handled as a '
                              f'{r.kind}: {e}')
        if unknown:
            tolerated = [u for u in unknown if (r.kind, u) in TOLERATED_UNKNOWN]
            if tolerated and opts.field_validation != "Ignore":
                opts.warnings.extend(f'unknown field "{u}"' for u in tolerated)
            unknown = [u for u in unknown if (r.kind, u) not in TOLERATED_UNKNOWN]
        if unknown:
            if opts.field_validation == "Strict":
                raise bad_request(
                    f'{r.kind} in version "{r.version}" cannot be handled as a {r.kind}: '
                    f'strict decoding error: ' +
                    ", ".join(f'unknown field "{u}"' for u in unknown))
            if opts.field_validation != "Ignore":
                opts.warnings.extend(f'unknown field "{u}"' for u in unknown)
        return obj

    # ------------------------------------------------------------------------------ create
    async def create(self, r: Resource, namespace: str | None, obj: dict,
                     opts: WriteOptions) -> Entry:
        from ..api import defaults, validation
        md = obj["metadata"]
        if r.namespaced:
            body_ns = md.get("namespace")
            if body_ns and namespace and body_ns != namespace:
                raise bad_request("the namespace of the provided object does not match the "
                                  "namespace sent on the request")
            md["namespace"] = namespace or body_ns or "default"
            namespace = md["namespace"]
        else:
            md.pop("namespace", None)
        defaults.apply_defaults(r, obj)
        strategy.prepare_for_create(r, obj)
        for k in ("deletionTimestamp", "deletionGracePeriodSeconds", "resourceVersion",
                  "selfLink"):
            md.pop(k, None)
        md["uid"] = new_uid()
        md["creationTimestamp"] = now_rfc3339()
        generated = not md.get("name") and bool(md.get("generateName"))
        attempts = GENERATE_NAME_RETRIES if generated else 1
        for attempt in range(attempts):
            if generated:
                md["name"] = generate_name(md["generateName"])
            name = md.get("name") or ""
            if self.managed_fields is not None:
                self.managed_fields(r, None, obj, opts, "Update", None)
            self.admission.admit(Attributes(r, "CREATE", obj, None, namespace, name,
                                            dry_run=opts.dry_run))
            errs = validation.validate_create(r, obj)
            if not name and not any(e.field in ("metadata.name", "metadata.generateName")
                                    for e in errs):
                from ..api.errors import required
                errs.insert(0, required("metadata.name", "name or generateName is required"))
            if errs:
                raise invalid_error(r.kind, r.group, name, errs)
            if opts.dry_run:
                if r.key(namespace, name) in self.cache.for_resource(r).entries:
                    raise already_exists(r.plural, r.group, name)
                return Entry(obj, orjson.dumps(obj), 0)
            try:
                kv = await self._store_write(r.key(namespace, name), obj, None)
            except KeyExists:
                if generated and attempt + 1 < attempts:
                    continue
                raise already_exists(r.plural, r.group, name)
            return await self._entry_after_write(r, kv.key, kv.mod_revision, obj)
        raise already_exists(r.plural, r.group, md.get("name", ""))  # pragma: no cover

    async def _store_write(self, key: str, obj: dict, expected: int | None):
        """Create (expected None) or compare-and-swap `obj` at `key`. The watch cache takes
        `obj` itself as the new entry when the write comes back (no decode of what we just
        encoded), so after a successful write `obj` belongs to the cache: callers only read it."""
        value = encode_for_store(obj)
        self.cache.expect(key, value, obj)
        try:
            if expected is None:
                return await self.store.create(key, value)
            return await self.store.update(key, value, expected)
        except BaseException:
            self.cache.forget(key, value)
            raise

    async def _entry_after_write(self, r: Resource, key: str, rev: int, obj: dict) -> Entry:
        try:
            await self.cache.wait_for(rev)
        except asyncio.TimeoutError:
            pass
        e = self.cache.for_resource(r).entries.get(key)
        if e is not None and e.revision == rev:
            return e
        obj["metadata"]["resourceVersion"] = str(rev)
        return Entry(obj, orjson.dumps(obj), rev)

    def _cached_kv(self, r: Resource, key: str) -> _CachedKV | None:
        e = self.cache.for_resource(r).entries.get(key)
        return _CachedKV(e.raw, e.revision) if e is not None else None

    # ------------------------------------------------------------------------------ update
    async def update(self, r: Resource, namespace: str | None, name: str,
                     mutate: Callable[[dict], dict], opts: WriteOptions, *,
                     subresource: str | None = None, create_missing: Callable[[], Any] | None
                     = None, replace: bool = False) -> tuple[Entry, bool]:
        """Read-modify-write. `mutate(current)` returns the new object (it may raise). A
        resourceVersion in the new object is a precondition. Returns (entry, created).
        `replace`: mutate ignores its argument (a PUT), so it is given the read-only decoded
        stored object instead of a private copy of its own."""
        from ..api import defaults, validation
        key = r.key(namespace, name)
        # The first try starts from the watch cache (no store read, no re-encoding); the
        # compare-and-swap catches a cache that was behind, and every retry reads the store.
        from_cache = True
        for _ in range(MAX_UPDATE_RETRIES):
            kv = self._cached_kv(r, key) if from_cache else None
            if kv is None:
                from_cache = False
                kv = await self.store.get(key)
            if kv is None:
                if create_missing is not None:
                    return await create_missing(), True
                raise not_found_error(r.plural, r.group, name)
            try:
                old = _decode_stamped(kv.value, kv.mod_revision)
                new = mutate(old if replace else _decode_stamped(kv.value, kv.mod_revision))
                md = new.setdefault("metadata", {})
                want_rv = md.get("resourceVersion")
                if from_cache and want_rv and want_rv != str(kv.mod_revision):
                    from_cache = False      # the cache may be behind the precondition: ask the store
                    continue
                old_uid = (old.get("metadata") or {}).get("uid")
                if md.get("uid") and md["uid"] != old_uid:
                    # upstream treats a uid in the body as a precondition of the storage write
                    raise conflict(r.plural, r.group, name,
                                   f"StorageError: invalid object, Code: 4, Key: {key}, "
                                   f"ResourceVersion: 0, AdditionalErrorMsg: Precondition failed: "
                                   f"UID in precondition: {md['uid']}, UID in object meta: "
                                   f"{old_uid}")
                if want_rv and want_rv != str(kv.mod_revision):
                    raise conflict(r.plural, r.group, name)
                if md.get("name") not in (None, "", name):
                    raise bad_request(f"the name of the object ({md.get('name')}) does not match "
                                      f"the name on the URL ({name})")
                md["name"] = name
                if r.namespaced:
                    if md.get("namespace") not in (None, "", namespace):
                        raise bad_request("the namespace of the provided object does not match "
                                          "the namespace sent on the request")
                    md["namespace"] = namespace
                else:
                    md.pop("namespace", None)
                if subresource == "binding":
                    # pods/binding sets spec.nodeName, which a pod update may not change
                    strategy.copy_system_metadata(new, old)
                elif subresource == "status":
                    strategy.prepare_for_status_update(r, new, old)
                elif subresource == "finalize":
                    strategy.prepare_for_finalize(new, old)
                else:
                    defaults.apply_defaults(r, new)
                    strategy.prepare_for_update(r, new, old)
                    omd = old.get("metadata") or {}
                    if omd.get("deletionTimestamp"):
                        added = set(md.get("finalizers") or []) - set(omd.get("finalizers") or [])
                        if added:
                            raise invalid_error(r.kind, r.group, name, [forbidden(
                                "metadata.finalizers",
                                "no new finalizers can be added if the object is being deleted, "
                                "found new finalizers " + _go_string_list(sorted(added)))])
                # an unconditional update validates as if it named the stored version
                md["resourceVersion"] = str(kv.mod_revision)
                if self.managed_fields is not None:
                    self.managed_fields(r, old, new, opts, "Update", subresource)
                self.admission.admit(Attributes(r, "UPDATE", new, old, namespace, name,
                                                subresource, opts.dry_run))
                if subresource == "binding":
                    errs = []
                elif subresource == "status":
                    errs = validation.validate_status_update(r, new, old)
                else:
                    errs = validation.validate_update(r, new, old)
                if errs:
                    raise invalid_error(r.kind, r.group, name, errs)
                if (new == old or opts.dry_run) and from_cache:
                    from_cache = False      # a write that stores nothing must not answer stale
                    continue
                if new == old:
                    # a no-op write stores nothing and keeps the resourceVersion, as upstream
                    return Entry(old, orjson.dumps(old), kv.mod_revision), False
                if opts.dry_run:
                    return Entry(new, orjson.dumps(new), kv.mod_revision), False
                try:
                    if self._finished_deleting(r, new):
                        dkv = await self.store.delete(key, kv.mod_revision)
                        await self._entry_after_write(r, key, dkv.mod_revision, new)
                        new["metadata"]["resourceVersion"] = str(dkv.mod_revision)
                        return Entry(new, orjson.dumps(new), dkv.mod_revision), False
                    nkv = await self._store_write(key, new, kv.mod_revision)
                except RevisionConflict:
                    if want_rv and not from_cache:
                        raise conflict(r.plural, r.group, name)
                    from_cache = False
                    continue
                except KeyNotFound:
                    raise not_found_error(r.plural, r.group, name)
                return await self._entry_after_write(r, key, nkv.mod_revision, new), False
            except StatusError:
                # an answer computed from a cache that was behind is not an answer: only the
                # store's current object may refuse a write
                if not from_cache:
                    raise
                from_cache = False
        raise conflict(r.plural, r.group, name)

    @staticmethod
    def _finished_deleting(r: Resource, obj: dict) -> bool:
        md = obj.get("metadata") or {}
        if not md.get("deletionTimestamp") or md.get("finalizers"):
            return False
        if r.plural == "namespaces" and r.group == "" and \
                (obj.get("spec") or {}).get("finalizers"):
            return False
        if r.plural == "pods" and r.group == "" and md.get("deletionGracePeriodSeconds"):
            # a pod on a node is removed by its node agent (a delete with grace 0)
            return False
        return True

    # ------------------------------------------------------------------------------ delete
    async def delete(self, r: Resource, namespace: str | None, name: str, options: dict,
                     opts: WriteOptions) -> tuple[dict, bool]:
        """Returns (object, deleted_now)."""
        key = r.key(namespace, name)
        policy = options.get("propagationPolicy")
        orphan = options.get("orphanDependents")
        if policy is None and orphan is not None:
            policy = "Orphan" if orphan else "Background"
        if policy not in (None, "Orphan", "Foreground", "Background"):
            from ..api.errors import unsupported
            raise invalid_error("DeleteOptions", "", "", [unsupported(
                "propagationPolicy", policy, ["Foreground", "Background", "Orphan", "nil"])])
        grace = options.get("gracePeriodSeconds")
        pre = options.get("preconditions") or {}
        for _ in range(MAX_UPDATE_RETRIES):
            kv = await self.store.get(key)
            if kv is None:
                raise not_found_error(r.plural, r.group, name)
            cur, _ = decode(kv.value, kv.mod_revision)
            md = cur["metadata"]
            # upstream's rest.BeforeDelete names the Kind in these conflicts
            if pre.get("uid") and pre["uid"] != md.get("uid"):
                raise conflict(r.kind, r.group, name,
                               f"the UID in the precondition ({pre['uid']}) does not match the "
                               f"UID in record ({md.get('uid')}). The object might have been "
                               f"deleted and then recreated")
            if pre.get("resourceVersion") and pre["resourceVersion"] != str(kv.mod_revision):
                raise conflict(r.kind, r.group, name,
                               f"the ResourceVersion in the precondition "
                               f"({pre['resourceVersion']}) does not match the ResourceVersion "
                               f"in record ({kv.mod_revision}). The object might have been "
                               f"modified")
            self.admission.admit(Attributes(r, "DELETE", None, cur, namespace, name,
                                            dry_run=opts.dry_run))
            new = _copy(cur)
            nmd = new["metadata"]
            finalizers = list(nmd.get("finalizers") or [])
            eff_policy = policy or r.default_propagation
            if eff_policy == "Foreground":
                finalizers = [f for f in finalizers if f != FINALIZER_ORPHAN]
                if FINALIZER_FOREGROUND not in finalizers:
                    finalizers.append(FINALIZER_FOREGROUND)
            elif eff_policy == "Orphan":
                finalizers = [f for f in finalizers if f != FINALIZER_FOREGROUND]
                if FINALIZER_ORPHAN not in finalizers:
                    finalizers.append(FINALIZER_ORPHAN)
            elif policy == "Background":
                finalizers = [f for f in finalizers
                              if f not in (FINALIZER_ORPHAN, FINALIZER_FOREGROUND)]
            if finalizers:
                nmd["finalizers"] = finalizers
            else:
                nmd.pop("finalizers", None)
            pending = bool(finalizers)
            now = time.time()
            if r.group == "" and r.plural == "namespaces":
                if (new.get("spec") or {}).get("finalizers"):
                    pending = True
                    new.setdefault("status", {})["phase"] = "Terminating"
            if r.group == "" and r.plural == "pods":
                g = self._pod_grace(new, grace)
                if g > 0:
                    pending = True
                    cur_grace = nmd.get("deletionGracePeriodSeconds")
                    if cur_grace is None or g < cur_grace:
                        nmd["deletionGracePeriodSeconds"] = g
                        nmd["deletionTimestamp"] = now_rfc3339(now + g)
                elif nmd.get("deletionTimestamp") and grace == 0:
                    # a force delete of a pod its node has not finished: remove it now
                    nmd.pop("deletionGracePeriodSeconds", None)
            if pending:
                if not nmd.get("deletionTimestamp"):
                    nmd["deletionTimestamp"] = now_rfc3339(now)
                    nmd.setdefault("deletionGracePeriodSeconds", 0)
                if new == cur:
                    return cur, False
                if opts.dry_run:
                    return new, False
                try:
                    nkv = await self._store_write(key, new, kv.mod_revision)
                except RevisionConflict:
                    continue
                except KeyNotFound:
                    raise not_found_error(r.plural, r.group, name)
                e = await self._entry_after_write(r, key, nkv.mod_revision, new)
                return e.obj, False
            if opts.dry_run:
                return cur, True
            try:
                dkv = await self.store.delete(key, kv.mod_revision)
            except RevisionConflict:
                continue
            except KeyNotFound:
                raise not_found_error(r.plural, r.group, name)
            await self.cache.wait_for(dkv.mod_revision)
            cur["metadata"]["resourceVersion"] = str(dkv.mod_revision)
            return cur, True
        raise conflict(r.plural, r.group, name)

    @staticmethod
    def _pod_grace(pod: dict, requested: int | None) -> int:
        """Upstream's pod graceful-deletion rules: unscheduled or finished pods go at once."""
        spec = pod.get("spec") or {}
        phase = (pod.get("status") or {}).get("phase")
        if not spec.get("nodeName") or phase in ("Succeeded", "Failed"):
            return 0
        if requested is not None:
            return max(int(requested), 0)
        g = spec.get("terminationGracePeriodSeconds")
        return 30 if g is None else int(g)


# ----------------------------------------------------------------------------- continue tokens
def encode_continue(revision: int, last_key: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(
        {"v": "meta.k8s.io/v1", "rv": revision, "start": last_key})).decode()


def decode_continue(token: str) -> tuple[int, str]:
    try:
        d = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if d.get("v") != "meta.k8s.io/v1":
            raise ValueError
        return int(d["rv"]), str(d["start"])
    except Exception:
        raise bad_request("continue key is not valid: illegal base64 data")


def _internal_package(r: Resource) -> str:
    """The Go package of a group's internal types, as conversion errors name it."""
    return r.group.split(".")[0] if r.group else "core"


def _go_string_list(items: list[str]) -> str:
    """Go's %#v of a []string, as upstream prints it in messages."""
    return "[]string{" + ", ".join(orjson.dumps(i).decode() for i in items) + "}"


def _parse_rv(rv: str) -> int:
    try:
        v = int(rv)
        if v < 0:
            raise ValueError
        return v
    except ValueError:
        raise bad_request(f'invalid resource version "{rv}"') from None
