"""EventRecorder: controllers' core/v1 Events, aggregated so repeats never pile up.

Shaped like upstream's legacy recorder (k8s.io/client-go/tools/record):

* an Event names its object in `involvedObject` {kind, namespace, name, uid, apiVersion,
  resourceVersion}; it lives in the object's namespace (`default` for cluster-scoped objects);
  its name is `<object name>.<hex nanoseconds>`, unique per recorder;
* a repeat of the same (source, object, type, reason, message) does not create a new Event: the
  existing one gets `count` and `lastTimestamp` bumped (upstream's EventCorrelator keeps an LRU
  of 4096 recent keys; so do we);
* `event()` never blocks or raises: events go to an in-memory queue (bounded like upstream's
  1000-event broadcaster buffer; overflow is dropped, and the drops are logged once per burst)
  drained by a background task that keeps up to WRITERS writes in flight, oldest first, never
  two for the same key at once. Repeats still waiting in the queue are folded together before
  they are written, so a hot loop emitting the same event 100 times costs a few writes, not
  100, and the stored count is still exact.

Writes are best-effort: an API error is logged and the event dropped (as upstream does after
its retries); a 404 on the count patch (the Event expired or was deleted) creates a new one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone

from k1s.api import registry

from .errors import ApiError
from .rest import APIClient

log = logging.getLogger(__name__)

EVENTS = registry.core("events")
MAX_QUEUED = 1000        # upstream maxQueuedEvents
LRU_SIZE = 4096          # upstream maxLruCacheEntries
WRITERS = 8              # event writes in flight at once: one at a time cannot keep up with a
                         # controller creating a thousand pods, and the queue would overflow
DROP_LOG_PERIOD = 10.0   # seconds between two "dropped" log lines
NORMAL, WARNING = "Normal", "Warning"


def rfc3339(ts: float | None = None) -> str:
    """metav1.Time: RFC 3339 at second precision, UTC."""
    dt = datetime.fromtimestamp(time.time() if ts is None else ts, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def involved_object(obj: dict) -> dict:
    """The ObjectReference an Event points at (fields upstream's GetReference fills)."""
    meta = obj.get("metadata") or {}
    ref = {"kind": obj.get("kind", ""), "apiVersion": obj.get("apiVersion", ""),
           "name": meta.get("name", ""), "namespace": meta.get("namespace", ""),
           "uid": meta.get("uid", ""), "resourceVersion": meta.get("resourceVersion", "")}
    return {k: v for k, v in ref.items() if v}


def event_key(component: str, host: str, ref: dict, type_: str, reason: str,
              message: str) -> tuple:
    """What makes two events "the same" (upstream getEventKey; resourceVersion excluded)."""
    return (component, host, ref.get("kind", ""), ref.get("namespace", ""), ref.get("name", ""),
            ref.get("uid", ""), ref.get("apiVersion", ""), type_, reason, message)


@dataclass
class _Pending:
    ref: dict
    type: str
    reason: str
    message: str
    count: int
    first: str
    last: str


@dataclass
class _Seen:
    namespace: str
    name: str
    count: int
    first: str


class EventRecorder:
    def __init__(self, client: APIClient, component: str, *, host: str = ""):
        self.client = client
        self.component = component
        self.host = host
        self._pending: OrderedDict[tuple, _Pending] = OrderedDict()
        self._seen: OrderedDict[tuple, _Seen] = OrderedDict()
        self._wakeup: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._last_ns = 0
        self._inflight: set[tuple] = set()
        self._dropped = 0
        self._drop_logged = 0.0

    # -- the caller's side: never blocks -----------------------------------------------------------

    def event(self, obj: dict, type: str, reason: str, message: str) -> None:
        """Record an event about obj (type "Normal" or "Warning"). Returns at once."""
        try:
            self._enqueue(obj, type, reason, message)
        except Exception:  # a recorder must never break its caller
            log.exception("event %s/%s could not be queued", reason, message)

    def eventf(self, obj: dict, type: str, reason: str, fmt: str, *args) -> None:
        self.event(obj, type, reason, fmt % args if args else fmt)

    def _enqueue(self, obj: dict, type_: str, reason: str, message: str) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            log.warning("event %s dropped: no running event loop", reason)
            return
        ref = involved_object(obj)
        key = event_key(self.component, self.host, ref, type_, reason, message)
        now = rfc3339()
        pending = self._pending.get(key)
        if pending is not None:
            pending.count += 1
            pending.last = now
            return
        if len(self._pending) >= MAX_QUEUED:
            self._dropped += 1
            mono = time.monotonic()
            if mono - self._drop_logged >= DROP_LOG_PERIOD:
                log.warning("event queue of %s full (%d queued): dropped %d event(s), the latest "
                            "%s %s on %s", self.component, MAX_QUEUED, self._dropped, type_,
                            reason, ref.get("name"))
                self._drop_logged = mono
                self._dropped = 0
            return
        self._pending[key] = _Pending(ref, type_, reason, message, 1, now, now)
        if self._task is None or self._task.done():
            self._wakeup = asyncio.Event()
            self._idle = asyncio.Event()
            self._task = loop.create_task(self._drain(), name=f"events {self.component}")
        self._idle.clear()
        self._wakeup.set()

    # -- the writer task ------------------------------------------------------------------------

    async def _drain(self) -> None:
        writers: set[asyncio.Task] = set()
        done_one = asyncio.Event()
        try:
            while True:
                key = self._next_key() if len(writers) < WRITERS else None
                if key is not None:
                    item = self._pending.pop(key)
                    self._inflight.add(key)
                    t = asyncio.get_running_loop().create_task(self._write_one(key, item))
                    writers.add(t)
                    t.add_done_callback(lambda t: (writers.discard(t), done_one.set()))
                    continue
                if not writers and not self._pending:
                    self._idle.set()
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                # wait for a writer to finish, or for new work when a slot is free
                done_one.clear()
                waits = [asyncio.ensure_future(done_one.wait())]
                if len(writers) < WRITERS:
                    self._wakeup.clear()
                    waits.append(asyncio.ensure_future(self._wakeup.wait()))
                try:
                    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for w in waits:
                        w.cancel()
        finally:
            for t in writers:
                t.cancel()

    def _next_key(self) -> tuple | None:
        """The oldest queued key with no write in flight (same-key writes stay in order)."""
        for key in self._pending:
            if key not in self._inflight:
                return key
        return None

    async def _write_one(self, key: tuple, item: _Pending) -> None:
        try:
            await self._write(key, item)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.warning("could not write event %s on %s/%s: %s", item.reason,
                        item.ref.get("namespace"), item.ref.get("name"), e)
        finally:
            self._inflight.discard(key)
            if self._wakeup is not None:
                self._wakeup.set()

    async def _write(self, key: tuple, item: _Pending) -> None:
        seen = self._seen.get(key)
        if seen is not None:
            count = seen.count + item.count
            try:
                await self.client.patch(EVENTS, seen.name,
                                        {"count": count, "lastTimestamp": item.last},
                                        seen.namespace, patch_type="merge")
            except ApiError as e:
                if not e.is_not_found():
                    raise
                # The Event expired (TTL) or was deleted: start a new one.
                del self._seen[key]
            else:
                seen.count = count
                self._seen.move_to_end(key)
                return
        body = self._make_event(item)
        created = await self.client.create(EVENTS, body, body["metadata"]["namespace"])
        meta = created.get("metadata") or body["metadata"]
        self._seen[key] = _Seen(meta.get("namespace", body["metadata"]["namespace"]),
                                meta.get("name", body["metadata"]["name"]),
                                int(created.get("count") or item.count), item.first)
        if len(self._seen) > LRU_SIZE:
            self._seen.popitem(last=False)

    def _unique_suffix(self) -> str:
        # Upstream uses the creation time in hex nanoseconds; keep it strictly increasing so
        # two events in the same clock tick cannot collide.
        ns = max(time.time_ns(), self._last_ns + 1)
        self._last_ns = ns
        return f"{ns:x}"

    def _make_event(self, item: _Pending) -> dict:
        ref = item.ref
        namespace = ref.get("namespace") or "default"
        source = {"component": self.component}
        if self.host:
            source["host"] = self.host
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{ref.get('name', '')}.{self._unique_suffix()}",
                         "namespace": namespace},
            "involvedObject": ref,
            "reason": item.reason,
            "message": item.message,
            "type": item.type,
            "source": source,
            "firstTimestamp": item.first,
            "lastTimestamp": item.last,
            "count": item.count,
            "reportingComponent": self.component,
            "reportingInstance": self.host,
        }

    # -- lifecycle ---------------------------------------------------------------------------------

    async def flush(self, timeout: float | None = None) -> None:
        """Wait until every queued event has been written (or dropped)."""
        if self._task is None or self._task.done() or self._idle is None:
            return
        await asyncio.wait_for(self._idle.wait(), timeout)

    async def close(self) -> None:
        """Write what is queued, then stop the writer task."""
        try:
            await self.flush(timeout=5)
        except asyncio.TimeoutError:
            log.warning("event recorder %s: %d events not written", self.component,
                        len(self._pending))
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
