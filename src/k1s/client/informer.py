"""Informers: a list+watch cache of one resource, with indexes and event handlers.

The reflector loop follows upstream's client-go `Reflector.ListAndWatch`:

1. **List** in pages (limit 500 + continue), remember the list's resourceVersion, and replace
   the cache, delivering the difference to handlers as add / update / delete (so a handler
   sees the delete of an object that vanished while we were disconnected).
2. **Watch** from that resourceVersion with bookmarks; every event (and bookmark) advances the
   last seen resourceVersion.
3. When the server ends the watch (its timeout), **re-watch** from the last seen version.
   On **410 Gone/Expired** relist (step 1). On connection errors back off (exponential, capped)
   and retry the watch from the last version; other API errors back off and relist.

The cache is updated before handlers run, and handlers are called in event order by one
dispatcher task per informer, fed through an unbounded queue: a slow handler delays the
following notifications but never the watch. A handler's exception is logged and skipped.
A handler added after start first receives an add for every cached object (like upstream).
Handlers are plain callables; if one returns an awaitable it is awaited before the next
notification (so async handlers keep the order too).

Objects in the cache are shared with handlers and listers: treat them as read-only.

Large lists: decoding and inserting thousands of dicts at once triggers repeated full GC
passes (python-stack.md §2), so the cyclic GC is paused around bulk list handling, and after
a large initial sync the now long-lived cache is moved out of the collector's view
(`gc.freeze()`), so later collections do not rescan it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
import logging
import random
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import aiohttp

from k1s.api.registry import Resource

from .errors import ApiError
from .rest import APIClient, resource_of

log = logging.getLogger(__name__)

PAGE_SIZE = 500                 # upstream reflector's list chunk size
MIN_WATCH_TIMEOUT = 300         # upstream: a random timeout in [5, 10) minutes per watch
BACKOFF_INITIAL = 0.8           # upstream's reflector back-off manager: 800 ms ...
BACKOFF_MAX = 30.0              # ... doubling to 30 s
GC_FREEZE_MIN_ITEMS = 5000      # freeze after initial lists at least this large

NAMESPACE_INDEX = "namespace"

Indexer = Callable[[dict], Iterable[str]]


def object_key(obj: dict) -> str:
    """`namespace/name`, or `name` for cluster-scoped objects (upstream MetaNamespaceKeyFunc)."""
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{ns}/{meta.get('name', '')}" if ns else meta.get("name", "")


def split_key(key: str) -> tuple[str | None, str]:
    ns, sep, name = key.partition("/")
    return (ns, name) if sep else (None, ns)


def namespace_index(obj: dict) -> list[str]:
    ns = (obj.get("metadata") or {}).get("namespace")
    return [ns] if ns else []


async def start_and_sync(informers) -> None:
    """Start every informer, then wait until each has synced (they list concurrently)."""
    informers = list(informers)
    for inf in informers:
        await inf.start()
    for inf in informers:
        await inf.wait_synced()


def _rv(obj: dict) -> str:
    return (obj.get("metadata") or {}).get("resourceVersion", "")


@dataclass(eq=False)
class _Handler:
    on_add: Callable | None
    on_update: Callable | None
    on_delete: Callable | None
    first_seq: int = 0          # notifications before this sequence number are not for us


@dataclass
class _Backoff:
    """Exponential back-off with jitter, reset after a period of health."""
    initial: float = BACKOFF_INITIAL
    cap: float = BACKOFF_MAX
    current: float = field(default=0.0)

    def next(self) -> float:
        self.current = self.initial if self.current == 0 else min(self.current * 2, self.cap)
        return self.current * (1 + random.random() * 0.2)

    def reset(self) -> None:
        self.current = 0.0


class _Cache:
    """The thread-unsafe indexed store: key -> object, and index -> value -> keys."""

    def __init__(self):
        self.items: dict[str, dict] = {}
        self.indexers: dict[str, Indexer] = {NAMESPACE_INDEX: namespace_index}
        self.indices: dict[str, dict[str, set[str]]] = {NAMESPACE_INDEX: {}}
        # key -> index name -> the values the stored object was indexed under (indexers are
        # functions of the object: what they said of the stored one need not be asked again)
        self.indexed: dict[str, dict[str, list[str]]] = {}

    def add_indexer(self, name: str, fn: Indexer) -> None:
        self.indexers[name] = fn
        index: dict[str, set[str]] = {}
        self.indices[name] = index
        for key, obj in self.items.items():
            values = self._values(fn, obj)
            self.indexed.setdefault(key, {})[name] = values
            for value in values:
                index.setdefault(value, set()).add(key)

    @staticmethod
    def _values(fn: Indexer, obj: dict) -> list[str]:
        try:
            return list(fn(obj) or ())
        except Exception:
            log.exception("indexer failed on %s", object_key(obj))
            return []

    def put(self, key: str, obj: dict) -> dict | None:
        old = self.items.get(key)
        self.items[key] = obj
        was = self.indexed.get(key) or {}
        now: dict[str, list[str]] = {}
        for name, fn in self.indexers.items():
            new_values = now[name] = self._values(fn, obj)
            old_values = was.get(name, ())
            if old_values == new_values:
                continue
            index = self.indices[name]
            for v in old_values:
                self._unindex(index, v, key)
            for v in new_values:
                index.setdefault(v, set()).add(key)
        self.indexed[key] = now
        return old

    def remove(self, key: str) -> dict | None:
        old = self.items.pop(key, None)
        if old is not None:
            for name, values in (self.indexed.pop(key, None) or {}).items():
                for v in values:
                    self._unindex(self.indices[name], v, key)
        return old

    @staticmethod
    def _unindex(index: dict[str, set[str]], value: str, key: str) -> None:
        keys = index.get(value)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del index[value]

    def by_index(self, name: str, value: str) -> list[dict]:
        if name not in self.indices:
            raise KeyError(f"no index named {name!r}")
        return [self.items[k] for k in self.indices[name].get(value, ())]


class Informer:
    """A list+watch cache for one resource (optionally one namespace and selectors)."""

    # The server-side timeout for each watch; None picks upstream's random 5-10 minutes.
    # Tests set it small to exercise re-watching.
    watch_timeout_seconds: int | None = None

    def __init__(self, client: APIClient, resource, namespace: str | None = None, *,
                 label_selector: str | None = None, field_selector: str | None = None,
                 resync_period: float = 0, indexers: dict | None = None):
        self.client = client
        self.resource: Resource = resource_of(resource)
        self.namespace = namespace if self.resource.namespaced else None
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.resync_period = resync_period
        self.has_synced = False
        self.last_sync_resource_version = ""
        self._cache = _Cache()
        for name, fn in (indexers or {}).items():
            self._cache.add_indexer(name, fn)
        self._handlers: list[_Handler] = []
        # notifications: (seq, kind, old, new); kind in add/update/delete/synced/replay
        self._pending: asyncio.Queue | None = None
        self._seq = 0
        self._tasks: list[asyncio.Task] = []
        self._synced: asyncio.Event | None = None
        self._started = False
        self._backoff = _Backoff()

    # -- handlers and indexes ------------------------------------------------------------------

    def add_handler(self, on_add=None, on_update=None, on_delete=None) -> None:
        h = _Handler(on_add, on_update, on_delete)
        if self._started:
            # Catch the late handler up with what the cache already holds; it then sees only
            # notifications queued after this point (the snapshot already includes the rest).
            snapshot = list(self._cache.items.values())
            self._notify("replay", h, snapshot)
            h.first_seq = self._seq
        self._handlers.append(h)

    def add_indexer(self, name: str, fn) -> None:
        self._cache.add_indexer(name, fn)

    # -- lister ---------------------------------------------------------------------------------

    def get(self, name: str, namespace: str | None = None) -> dict | None:
        ns = (namespace or self.namespace) if self.resource.namespaced else None
        return self._cache.items.get(f"{ns}/{name}" if ns else name)

    def get_by_key(self, key: str) -> dict | None:
        return self._cache.items.get(key)

    def list(self, namespace: str | None = None) -> list[dict]:
        if namespace and self.resource.namespaced:
            return self._cache.by_index(NAMESPACE_INDEX, namespace)
        return list(self._cache.items.values())

    def keys(self) -> list[str]:
        return list(self._cache.items)

    def by_index(self, index_name: str, value: str) -> list[dict]:
        return self._cache.by_index(index_name, value)

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        self._start()

    def _start(self) -> None:
        if self._started:
            return
        self._started = True
        self._pending = asyncio.Queue()
        self._synced = asyncio.Event()
        what = self.resource.qualified + (f" in {self.namespace}" if self.namespace else "")
        self._tasks.append(asyncio.create_task(self._reflect(), name=f"reflector {what}"))
        self._tasks.append(asyncio.create_task(self._dispatch(), name=f"informer {what}"))
        if self.resync_period > 0:
            self._tasks.append(asyncio.create_task(self._resync(), name=f"resync {what}"))

    async def wait_synced(self, timeout: float | None = None) -> bool:
        """Wait until the initial list is cached and its adds were handed to every handler."""
        if self.has_synced:
            return True
        if self._synced is None:
            raise RuntimeError("informer not started")
        try:
            await asyncio.wait_for(self._synced.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        self._started = False
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- the reflector ---------------------------------------------------------------------------

    async def _reflect(self) -> None:
        need_list = True
        while True:
            try:
                if need_list:
                    await self._list_and_replace()
                    need_list = False
                if await self._watch_once():
                    self._backoff.reset()
                else:
                    # The server closed an empty watch at once: do not spin (upstream treats
                    # a "very short watch" as an error too).
                    await asyncio.sleep(self._backoff.next())
            except asyncio.CancelledError:
                raise
            except ApiError as e:
                if e.is_gone():
                    # Our resourceVersion is too old: relist at once (upstream does too).
                    log.info("informer %s: %s; relisting", self.resource.qualified, e.message)
                    need_list = True
                    continue
                log.warning("informer %s: %s; retrying", self.resource.qualified, e)
                need_list = True
                await asyncio.sleep(self._backoff.next())
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as e:
                # Connection trouble: the cache is still valid, resume the watch from the last
                # version we saw (or retry the list if we never got one).
                log.info("informer %s: connection error %r; retrying",
                         self.resource.qualified, e)
                await asyncio.sleep(self._backoff.next())
            except Exception:
                log.exception("informer %s: unexpected error; relisting", self.resource.qualified)
                need_list = True
                await asyncio.sleep(self._backoff.next())

    async def _list_all(self) -> tuple[list[dict], str]:
        """Every object in pages; the resourceVersion of the list's snapshot."""
        items: list[dict] = []
        continue_: str | None = None
        limit = PAGE_SIZE
        while True:
            try:
                page = await self.client.list(
                    self.resource, self.namespace, label_selector=self.label_selector,
                    field_selector=self.field_selector, limit=limit, continue_=continue_)
            except ApiError as e:
                if continue_ and e.is_gone():
                    # The continue token expired mid-list: fall back to one unpaginated list,
                    # as upstream's pager does.
                    items, continue_, limit = [], None, 0
                    continue
                raise
            items.extend(page.get("items") or ())
            meta = page.get("metadata") or {}
            continue_ = meta.get("continue")
            if not continue_:
                return items, meta.get("resourceVersion", "")

    async def _list_and_replace(self) -> None:
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            items, rv = await self._list_all()
            self._replace(items)
        finally:
            if was_enabled:
                gc.enable()
        self.last_sync_resource_version = rv
        if not self.has_synced:
            self._notify("synced", None, None)
            if len(items) >= GC_FREEZE_MIN_ITEMS:
                gc.freeze()

    def _replace(self, items: list[dict]) -> None:
        """Make the cache equal to a fresh list; notify the differences."""
        kind, api_version = self.resource.kind, self.resource.api_version
        fresh: dict[str, dict] = {}
        for obj in items:
            # List items carry no kind/apiVersion; fill them in so an object from the cache
            # can be referenced (events, ownerReferences) like one from a GET.
            obj.setdefault("kind", kind)
            obj.setdefault("apiVersion", api_version)
            fresh[object_key(obj)] = obj
        for key in [k for k in self._cache.items if k not in fresh]:
            old = self._cache.remove(key)
            self._notify("delete", old, None)
        for key, obj in fresh.items():
            old = self._cache.put(key, obj)
            if old is None:
                self._notify("add", None, obj)
            elif _rv(old) != _rv(obj):
                self._notify("update", old, obj)

    async def _watch_once(self) -> bool:
        """One watch until the server ends it; False if it ended at once with no events."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        events = 0
        timeout = self.watch_timeout_seconds or int(MIN_WATCH_TIMEOUT * (1 + random.random()))
        stream = self.client.watch(
            self.resource, self.namespace, resource_version=self.last_sync_resource_version,
            label_selector=self.label_selector, field_selector=self.field_selector,
            allow_bookmarks=True, timeout_seconds=timeout)
        async with contextlib.aclosing(stream):
            async for etype, obj in stream:
                self._apply(etype, obj)
                events += 1
        return events > 0 or loop.time() - started >= 1.0

    def _apply(self, etype: str, obj: dict) -> None:
        rv = _rv(obj)
        if etype == "BOOKMARK":
            if rv:
                self.last_sync_resource_version = rv
            return
        obj.setdefault("kind", self.resource.kind)
        obj.setdefault("apiVersion", self.resource.api_version)
        key = object_key(obj)
        if etype in ("ADDED", "MODIFIED"):
            old = self._cache.put(key, obj)
            if old is None:
                self._notify("add", None, obj)
            else:
                self._notify("update", old, obj)
        elif etype == "DELETED":
            old = self._cache.remove(key)
            self._notify("delete", old, obj)
        else:
            log.warning("informer %s: unknown watch event type %r",
                        self.resource.qualified, etype)
            return
        if rv:
            self.last_sync_resource_version = rv

    async def _resync(self) -> None:
        while True:
            await asyncio.sleep(self.resync_period)
            for obj in list(self._cache.items.values()):
                self._notify("update", obj, obj)

    # -- notifications ---------------------------------------------------------------------------

    def _notify(self, kind: str, old: Any, new: Any) -> None:
        self._seq += 1
        self._pending.put_nowait((self._seq, kind, old, new))

    async def _dispatch(self) -> None:
        while True:
            seq, kind, old, new = await self._pending.get()
            if kind == "synced":
                self.has_synced = True
                self._synced.set()
                continue
            if kind == "replay":
                handler, snapshot = old, new
                for obj in snapshot:
                    await self._call(handler.on_add, obj)
                continue
            for h in list(self._handlers):
                if seq <= h.first_seq:
                    continue
                if kind == "add":
                    await self._call(h.on_add, new)
                elif kind == "update":
                    await self._call(h.on_update, old, new)
                else:
                    # A delete seen in a relist has no final state: hand over the last one known.
                    await self._call(h.on_delete, new if new is not None else old)

    async def _call(self, fn, *args) -> None:
        if fn is None:
            return
        try:
            result = fn(*args)
            if inspect.isawaitable(result):
                await result
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("informer %s: handler %r failed", self.resource.qualified, fn)


class SharedInformerFactory:
    """One shared informer per (resource, namespace); informers asked for after start() start
    at once, so controllers can be wired in any order."""

    def __init__(self, client: APIClient):
        self.client = client
        self._informers: dict[tuple[Resource, str | None], Informer] = {}
        self._started = False

    def informer(self, resource, namespace: str | None = None) -> Informer:
        r = resource_of(resource)
        key = (r, namespace if r.namespaced else None)
        inf = self._informers.get(key)
        if inf is None:
            inf = Informer(self.client, r, key[1])
            self._informers[key] = inf
            if self._started:
                inf._start()
        return inf

    def informers(self) -> list[Informer]:
        return list(self._informers.values())

    async def start(self) -> None:
        self._started = True
        for inf in list(self._informers.values()):
            inf._start()

    async def wait_synced(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(
            asyncio.gather(*(inf.wait_synced() for inf in list(self._informers.values()))),
            timeout)

    async def stop(self) -> None:
        self._started = False
        await asyncio.gather(*(inf.stop() for inf in list(self._informers.values())))
