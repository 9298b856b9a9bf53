"""Watch streams: newline-delimited JSON events (or one-row Tables) over chunked HTTP.

Where a watch starts (upstream semantics):
- resourceVersion unset: the current state as synthetic ADDED events, after a consistent sync,
  then changes; "0": the same from whatever the cache holds now;
- resourceVersion N: every change after N. From the cache's ring of recent events when N is
  recent; from the store's history when it is older; an `ERROR` event with a 410 Expired
  Status when N has been compacted ("too old resource version").
- sendInitialEvents=true: the current state, then a BOOKMARK annotated
  `k8s.io/initial-events-end: "true"`, then changes.

Selectors are applied to both sides of a change, so an object moving out of a selector is a
DELETED event for that watcher and one moving in is ADDED, as upstream's watch cache does.
Events are encoded once per change and shared by all watchers (CacheEvent.wire()).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from typing import Any, Callable

import orjson
from aiohttp import web

from ..api.registry import Resource
from ..store.interface import Compacted, WatchOverflow
from .watchcache import CacheEvent, Entry, decode

log = logging.getLogger(__name__)

# A watcher that falls this many events behind is closed (the client re-watches).
WATCHER_QUEUE_LIMIT = 20000
# How often an idle stream checks whether its client is still there, and sends bookmarks.
IDLE_CHECK_SECONDS = 5.0
BOOKMARK_SECONDS = 60.0
# Upstream's --min-request-timeout: watches without timeoutSeconds last 1800-3600 s.
MIN_REQUEST_TIMEOUT = 1800


@dataclass
class WatchSpec:
    resource: Resource
    namespace: str | None
    matches: Callable[[dict], bool]
    resource_version: str | None
    timeout: float | None
    bookmarks: bool
    send_initial_events: bool
    # turns an object into the bytes of one event's "object" (JSON or a Table row)
    render: Callable[[str, Entry], bytes] | None


def _event_bytes(type_: str, entry: Entry, spec: WatchSpec, ce: CacheEvent | None) -> bytes:
    if spec.render is None:
        if ce is not None and ce.type == type_:
            return ce.wire()
        return b'{"type":"' + type_.encode() + b'","object":' + entry.raw + b"}\n"
    return b'{"type":"' + type_.encode() + b'","object":' + spec.render(type_, entry) + b"}\n"


def _bookmark(spec: WatchSpec, revision: int, initial_end: bool = False) -> bytes:
    md: dict[str, Any] = {"resourceVersion": str(revision)}
    if initial_end:
        md["annotations"] = {"k8s.io/initial-events-end": "true"}
    obj = {"kind": spec.resource.kind, "apiVersion": spec.resource.api_version, "metadata": md}
    return orjson.dumps({"type": "BOOKMARK", "object": obj}) + b"\n"


def _error_event(code: int, reason: str, message: str) -> bytes:
    return orjson.dumps({"type": "ERROR", "object": {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code}}) + b"\n"


def _translate(ce: CacheEvent, spec: WatchSpec, prefix: str) -> bytes | None:
    """What one change means for this watcher (None: nothing)."""
    md = ce.entry.obj.get("metadata") or {}
    if spec.namespace and md.get("namespace") != spec.namespace:
        return None
    if ce.type == "ADDED":
        return _event_bytes("ADDED", ce.entry, spec, ce) if spec.matches(ce.entry.obj) else None
    if ce.type == "DELETED":
        last = ce.prev.obj if ce.prev is not None else ce.entry.obj
        return _event_bytes("DELETED", ce.entry, spec, ce) if spec.matches(last) else None
    now_m = spec.matches(ce.entry.obj)
    was_m = ce.prev is not None and spec.matches(ce.prev.obj)
    if now_m and was_m:
        return _event_bytes("MODIFIED", ce.entry, spec, ce)
    if now_m:
        return _event_bytes("ADDED", ce.entry, spec, ce)
    if was_m:
        return _event_bytes("DELETED", ce.entry, spec, ce)
    return None


async def serve(request: web.Request, spec: WatchSpec, objects) -> web.StreamResponse:
    cache = objects.cache
    rc = cache.for_resource(spec.resource)
    prefix = spec.resource.list_prefix(spec.namespace)
    rv = spec.resource_version
    if rv in (None, "") or spec.send_initial_events:
        await cache.sync()
    queue: asyncio.Queue[bytes | None] = asyncio.Queue()
    overflow = False

    def on_event(ce: CacheEvent) -> None:
        nonlocal overflow
        if overflow:
            return
        b = _translate(ce, spec, prefix)
        if b is not None:
            if queue.qsize() >= WATCHER_QUEUE_LIMIT:
                overflow = True
                queue.put_nowait(None)
                return
            queue.put_nowait(b)

    initial: list[bytes] = []
    store_watch = None
    start_error: bytes | None = None
    # Registering the watcher and taking the snapshot happen in one synchronous block, so no
    # change can fall between them.
    if rv in (None, "", "0") or spec.send_initial_events:
        for key in rc.keys_with_prefix(prefix):
            e = rc.entries[key]
            if spec.matches(e.obj):
                initial.append(_event_bytes("ADDED", e, spec, None))
        start_rev = cache.revision
        rc.watchers.add(on_event)
    else:
        try:
            want = int(rv)
        except ValueError:
            want = -1
        if want < 0:
            start_error = _error_event(400, "BadRequest", f'invalid resource version "{rv}"')
            start_rev = 0
        elif want >= rc.floor:
            if want > cache.revision:
                await cache.wait_for(want)
            for ce in rc.ring:
                if ce.revision > want:
                    b = _translate(ce, spec, prefix)
                    if b is not None:
                        initial.append(b)
            start_rev = cache.revision
            rc.watchers.add(on_event)
        elif want < objects.store.compacted_revision():
            start_error = _error_event(410, "Expired",
                                       f"too old resource version: {want} "
                                       f"({objects.store.compacted_revision() + 1})")
            start_rev = want
        else:
            store_watch = objects.store.watch(spec.resource.key_prefix, want)
            start_rev = want

    resp = web.StreamResponse(status=200, headers={
        "Content-Type": "application/json", "Cache-Control": "no-cache, private"})
    resp.enable_chunked_encoding()
    timeout = spec.timeout
    if timeout is None:
        timeout = MIN_REQUEST_TIMEOUT * (1 + random.random())
    deadline = time.monotonic() + timeout
    try:
        await resp.prepare(request)
        if start_error is not None:
            await resp.write(start_error)
            return resp
        if initial:
            await resp.write(b"".join(initial))
        if spec.send_initial_events:
            await resp.write(_bookmark(spec, start_rev, initial_end=True))
        if store_watch is not None:
            await _pump_store(resp, store_watch, spec, prefix, deadline, objects)
            return resp
        last_bookmark = time.monotonic()
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                b = await asyncio.wait_for(queue.get(), min(left, IDLE_CHECK_SECONDS))
            except asyncio.TimeoutError:
                if request.transport is None or request.transport.is_closing():
                    break
                if spec.bookmarks and time.monotonic() - last_bookmark >= BOOKMARK_SECONDS:
                    await resp.write(_bookmark(spec, cache.revision))
                    last_bookmark = time.monotonic()
                continue
            if b is None:
                break
            # drain what else is waiting into one write
            chunks = [b]
            while not queue.empty() and len(chunks) < 512:
                nb = queue.get_nowait()
                if nb is None:
                    overflow = True
                    break
                chunks.append(nb)
            await resp.write(b"".join(chunks) if len(chunks) > 1 else b)
            if overflow:
                break
    except (ConnectionResetError, asyncio.CancelledError, RuntimeError):
        pass
    finally:
        rc.watchers.discard(on_event)
        if store_watch is not None:
            store_watch.close()
    return resp


async def _pump_store(resp: web.StreamResponse, w, spec: WatchSpec, prefix: str,
                      deadline: float, objects) -> None:
    """A watch from a revision older than the cache's ring: follow the store's history."""
    it = w.__aiter__()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        try:
            ev = await asyncio.wait_for(it.__anext__(), min(left, IDLE_CHECK_SECONDS))
        except asyncio.TimeoutError:
            continue
        except (StopAsyncIteration, WatchOverflow):
            return   # the client re-watches from its last resourceVersion
        except Compacted as e:
            await resp.write(_error_event(410, "Expired", f"too old resource version: "
                                          f"{e.requested} ({e.compacted + 1})"))
            return
        if not ev.kv.key.startswith(prefix):
            continue
        if ev.type == "DELETE":
            src = ev.prev or ev.kv
            obj, _ = decode(src.value, ev.revision)
            entry = Entry(obj, orjson.dumps(obj), ev.revision)
            ce = CacheEvent("DELETED", entry, entry, ev.revision)
        else:
            obj, raw = decode(ev.kv.value, ev.kv.mod_revision)
            prev = None
            if ev.prev is not None:
                pobj, praw = decode(ev.prev.value, ev.prev.mod_revision)
                prev = Entry(pobj, praw, ev.prev.mod_revision)
            ce = CacheEvent("ADDED" if prev is None else "MODIFIED", Entry(obj, raw, ev.revision),
                            prev, ev.revision)
        b = _translate(ce, spec, prefix)
        if b is not None:
            await resp.write(b)
