"""The API server's watch cache: current objects and recent events of every resource, in memory.

One store watch over `/registry/` feeds it. For each resource it keeps the current objects
(decoded, for selectors and printers, and encoded once, with their resourceVersion, for
responses) and a ring of recent events. LIST and GET are served from here after the cache has
caught up with the store's revision (a consistent read, as upstream's consistent list from
cache); watches from a recent resourceVersion replay from the ring and then follow live.

Vocabulary:
- revision / resourceVersion: the store's global revision; the cache's `revision` is the last
  one it applied.
- entry: (object dict, encoded bytes, mod revision) of one key.
- ring: the last EVENT_RING events per resource; a watch from an older revision is served from
  the store's own history instead (see apiserver.watch).
"""

from __future__ import annotations

import asyncio
import bisect
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import orjson

from ..api import registry
from ..api.registry import Resource
from ..store.interface import Compacted, Event as StoreEvent, Store, WatchOverflow

log = logging.getLogger(__name__)

# Recent events kept per resource for watches that start at a recent resourceVersion.
EVENT_RING = 4096


def decode(value: bytes, mod_revision: int) -> tuple[dict, bytes]:
    """Decode a stored value and stamp its resourceVersion; return (object, encoded)."""
    obj = orjson.loads(value)
    obj.setdefault("metadata", {})["resourceVersion"] = str(mod_revision)
    return obj, orjson.dumps(obj)


@dataclass(slots=True)
class Entry:
    obj: dict
    raw: bytes
    revision: int


@dataclass(slots=True)
class CacheEvent:
    type: str               # ADDED | MODIFIED | DELETED
    entry: Entry            # the object after the event (for DELETED: the last state)
    prev: Entry | None      # the object before (None for ADDED)
    revision: int
    _wire: dict = field(default_factory=dict)

    def wire(self) -> bytes:
        """`{"type":..,"object":..}\n`, encoded once and shared by every watcher."""
        b = self._wire.get("json")
        if b is None:
            b = b'{"type":"' + self.type.encode() + b'","object":' + self.entry.raw + b"}\n"
            self._wire["json"] = b
        return b


class ResourceCache:
    """Current objects and recent events of one resource (one storage prefix)."""

    def __init__(self, resource: Resource):
        self.resource = resource
        self.entries: dict[str, Entry] = {}
        self._sorted: list[str] | None = []
        self.ring: deque[CacheEvent] = deque(maxlen=EVENT_RING)
        self.watchers: set[Callable[[CacheEvent], None]] = set()
        # Watches from a revision >= floor are served from the ring: every change of this
        # resource after `floor` is still in it.
        self.floor = 0

    def sorted_keys(self) -> list[str]:
        if self._sorted is None:
            self._sorted = sorted(self.entries)
        return self._sorted

    def keys_with_prefix(self, prefix: str) -> list[str]:
        keys = self.sorted_keys()
        lo = bisect.bisect_left(keys, prefix)
        hi = bisect.bisect_left(keys, prefix + "\xff")
        return keys[lo:hi]


    def apply(self, ev: StoreEvent, written: dict | None = None) -> CacheEvent:
        """Apply one store event. `written` is the object this process encoded as the event's
        value (see WatchCache.expect): it is taken as the entry's object instead of decoding
        the value again."""
        key = ev.kv.key
        prev = self.entries.get(key)
        if ev.type == "DELETE":
            if prev is None:
                # deleted before we saw it; synthesise from the event's last value
                obj, raw = decode(ev.kv.value, ev.revision) if ev.kv.value else ({}, b"{}")
                prev = Entry(obj, raw, ev.revision)
            else:
                del self.entries[key]
                if self._sorted is not None:
                    i = bisect.bisect_left(self._sorted, key)
                    if i < len(self._sorted) and self._sorted[i] == key:
                        self._sorted.pop(i)
            # the DELETED object carries the deletion's revision, as upstream does
            obj = dict(prev.obj)
            obj["metadata"] = dict(obj.get("metadata", {}), resourceVersion=str(ev.revision))
            ce = CacheEvent("DELETED", Entry(obj, orjson.dumps(obj), ev.revision), prev,
                            ev.revision)
        else:
            if written is not None:
                obj = written
                obj["metadata"]["resourceVersion"] = str(ev.kv.mod_revision)
                raw = orjson.dumps(obj)
            else:
                obj, raw = decode(ev.kv.value, ev.kv.mod_revision)
            entry = Entry(obj, raw, ev.kv.mod_revision)
            self.entries[key] = entry
            if prev is None:
                if self._sorted is not None:
                    bisect.insort(self._sorted, key)
                ce = CacheEvent("ADDED", entry, None, ev.revision)
            else:
                ce = CacheEvent("MODIFIED", entry, prev, ev.revision)
        if len(self.ring) == self.ring.maxlen:
            self.floor = self.ring[0].revision
        self.ring.append(ce)
        for w in list(self.watchers):
            w(ce)
        return ce


class WatchCache:
    """All resource caches, fed by one store watch."""

    def __init__(self, store: Store):
        self.store = store
        self.revision = 0
        self._by_prefix: list[tuple[str, ResourceCache]] = []
        self.caches: dict[str, ResourceCache] = {}
        for r in registry.RESOURCES:
            if r.stored_as is not None:
                continue
            c = ResourceCache(r)
            self.caches[r.key_prefix] = c
            self._by_prefix.append((r.key_prefix, c))
        # longest prefix first: `services/specs/` must not swallow `services/endpoints/`
        self._by_prefix.sort(key=lambda p: -len(p[0]))
        self._waiters: list[tuple[int, asyncio.Future]] = []
        self._task: asyncio.Task | None = None
        self._ready = asyncio.Event()
        self.on_event: list[Callable[[ResourceCache, CacheEvent], None]] = []
        # key -> (value, object) of writes this process has sent to the store and not yet seen
        # come back: decoding a value costs ~5x encoding it, and the writer already holds the
        # object the value was encoded from (see expect()).
        self._written: dict[str, tuple[bytes, dict]] = {}

    def for_resource(self, r: Resource) -> ResourceCache:
        return self.caches[registry.storage_resource(r).key_prefix]

    def _cache_for_key(self, key: str) -> ResourceCache | None:
        for prefix, c in self._by_prefix:
            if key.startswith(prefix):
                return c
        return None

    async def start(self) -> None:
        # Load the current state, then follow the store from that revision.
        res = await self.store.range("/registry/")
        for kv in res.kvs:
            c = self._cache_for_key(kv.key)
            if c is None:
                continue
            obj, raw = decode(kv.value, kv.mod_revision)
            c.entries[kv.key] = Entry(obj, raw, kv.mod_revision)
            c._sorted = None
        self.revision = res.revision
        for c in self.caches.values():
            c.floor = res.revision
        self._task = asyncio.create_task(self._run(res.revision), name="watchcache")
        self._ready.set()

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass

    async def _run(self, after: int) -> None:
        while True:
            w = self.store.watch("/registry/", after)
            try:
                async for ev in w:
                    self._apply(ev)
                    after = ev.revision
            except (Compacted, WatchOverflow):
                # We fell behind the store (should not happen in-process): relist.
                log.warning("watch cache fell behind the store; reloading")
                await self._reload()
                after = self.revision
            finally:
                w.close()

    async def _reload(self) -> None:
        res = await self.store.range("/registry/")
        self._written.clear()
        for c in self.caches.values():
            c.entries.clear()
            c._sorted = None
            c.ring.clear()
        for kv in res.kvs:
            c = self._cache_for_key(kv.key)
            if c is not None:
                obj, raw = decode(kv.value, kv.mod_revision)
                c.entries[kv.key] = Entry(obj, raw, kv.mod_revision)
        self.revision = res.revision
        for c in self.caches.values():
            c.floor = res.revision

    def expect(self, key: str, value: bytes, obj: dict) -> None:
        """The caller is about to store `value`, encoded from `obj` (without resourceVersion);
        if that very value comes back as the key's next event, the cache takes `obj` as the
        entry (the caller hands it over: nobody may change it afterwards). Only the identical
        bytes object matches, so a write that failed or lost a race is simply decoded."""
        self._written[key] = (value, obj)

    def forget(self, key: str, value: bytes) -> None:
        """Drop the expectation of a write that did not happen."""
        w = self._written.get(key)
        if w is not None and w[0] is value:
            del self._written[key]

    def _apply(self, ev: StoreEvent) -> None:
        c = self._cache_for_key(ev.kv.key)
        if c is not None:
            written = None
            if self._written and ev.type != "DELETE":
                w = self._written.get(ev.kv.key)
                if w is not None and w[0] is ev.kv.value:
                    del self._written[ev.kv.key]
                    written = w[1]
            ce = c.apply(ev, written)
            for hook in self.on_event:
                hook(c, ce)
        self.revision = ev.revision
        if self._waiters:
            keep = []
            for rev, fut in self._waiters:
                if rev <= self.revision:
                    if not fut.done():
                        fut.set_result(None)
                else:
                    keep.append((rev, fut))
            self._waiters = keep

    async def wait_for(self, revision: int, timeout: float = 3.0) -> None:
        """Return once the cache has applied `revision` (a consistent read point)."""
        if self.revision >= revision:
            return
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append((revision, fut))
        await asyncio.wait_for(fut, timeout)

    async def sync(self) -> None:
        """Wait until every acknowledged write is visible here."""
        await self.wait_for(self.store.current_revision())
