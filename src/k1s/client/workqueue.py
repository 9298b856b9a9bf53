"""The controllers' work queue: de-duplicated, delayed and rate-limited keys, as upstream's.

Semantics follow k8s.io/client-go/util/workqueue:

* **De-duplication** (`dirty` set): a key added many times before a worker picks it up is
  processed once.
* **No concurrent processing of one key** (`processing` set): a key re-added while a worker
  holds it is not handed to a second worker; it is queued again when the first calls `done()`.
* **FIFO fairness**: keys come out in the order they were first added.
* **Delays** (`add_after`): a heap of (ready time, key) served by one loop timer; a key already
  waiting keeps the earlier of its two ready times.
* **Per-item exponential back-off** (`add_rate_limited`): `base_delay * 2**failures`, capped at
  `max_delay`; `forget()` resets the count after a success.
* **Shutdown**: new adds are ignored, keys already queued are still handed out, and once the
  queue is empty `get()` raises `ShutDown` (upstream's Get returns shutdown=true then).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections import deque
from typing import Any, Awaitable, Callable, Hashable

log = logging.getLogger(__name__)


class ShutDown(Exception):
    """Raised by WorkQueue.get() once the queue is shut down and drained."""


class WorkQueue:
    def __init__(self, name: str = "", *, base_delay: float = 0.005, max_delay: float = 30.0):
        self.name = name
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._queue: deque[Hashable] = deque()
        self._dirty: set[Hashable] = set()
        self._processing: set[Hashable] = set()
        self._getters: deque[asyncio.Future] = deque()
        self._shutting_down = False
        # delaying queue: heap of (ready_at, seq, key); _waiting maps key -> its live ready_at
        self._heap: list[tuple[float, int, Hashable]] = []
        self._waiting: dict[Hashable, float] = {}
        self._seq = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        # rate limiter: consecutive failures per key
        self._failures: dict[Hashable, int] = {}

    # -- the basic queue -------------------------------------------------------------------------

    def add(self, key) -> None:
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        if key in self._processing:
            return  # done() queues it again
        self._queue.append(key)
        self._wake_one()

    async def get(self) -> Any:
        """The next key; the caller must call done(key) when finished with it."""
        while not self._queue:
            if self._shutting_down:
                raise ShutDown(self.name)
            fut = asyncio.get_running_loop().create_future()
            self._getters.append(fut)
            try:
                await fut
            except asyncio.CancelledError:
                # If we were woken but cancelled before running, pass the wake-up on, or a
                # queued key could sit there with idle workers.
                if fut.done() and not fut.cancelled():
                    self._wake_one()
                else:
                    try:
                        self._getters.remove(fut)
                    except ValueError:
                        pass
                raise
        key = self._queue.popleft()
        self._processing.add(key)
        self._dirty.discard(key)
        return key

    def done(self, key) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.append(key)
            self._wake_one()

    def shutdown(self) -> None:
        self._shutting_down = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._heap.clear()
        self._waiting.clear()
        for fut in self._getters:
            if not fut.done():
                fut.set_result(None)
        self._getters.clear()

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def __len__(self) -> int:
        return len(self._queue)

    def _wake_one(self) -> None:
        while self._getters:
            fut = self._getters.popleft()
            if not fut.done():
                fut.set_result(None)
                return

    # -- delays ------------------------------------------------------------------------------------

    def add_after(self, key, delay: float) -> None:
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        ready_at = loop.time() + delay
        current = self._waiting.get(key)
        if current is not None and current <= ready_at:
            return  # already due sooner
        self._waiting[key] = ready_at
        heapq.heappush(self._heap, (ready_at, next(self._seq), key))
        self._arm(loop)

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        """Keep one timer, set for the earliest entry of the heap."""
        if not self._heap:
            return
        first = self._heap[0][0]
        if self._timer is not None:
            if self._timer_at is not None and self._timer_at <= first:
                return
            self._timer.cancel()
        self._timer_at = first
        self._timer = loop.call_at(first, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._timer_at = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        while self._heap and self._heap[0][0] <= now:
            ready_at, _, key = heapq.heappop(self._heap)
            # Skip stale entries superseded by an earlier ready time for the same key.
            if self._waiting.get(key) == ready_at:
                del self._waiting[key]
                self.add(key)
        self._arm(loop)

    # -- rate limiting ------------------------------------------------------------------------------

    def when(self, key) -> float:
        """The next back-off delay for key (and count the failure), as upstream's When()."""
        n = self._failures.get(key, 0)
        self._failures[key] = n + 1
        # 2**n overflows floats past ~1024 failures; the cap is reached long before.
        if n >= 64:
            return self.max_delay
        return min(self.base_delay * (2 ** n), self.max_delay)

    def add_rate_limited(self, key) -> None:
        self.add_after(key, self.when(key))

    def forget(self, key) -> None:
        self._failures.pop(key, None)

    def num_requeues(self, key) -> int:
        return self._failures.get(key, 0)


async def run_workers(queue: WorkQueue, sync: Callable[[Any], Awaitable[Any]],
                      workers: int = 1) -> None:
    """Run `workers` coroutines taking keys from queue and calling `await sync(key)`.

    A failure (exception) requeues the key with back-off; a success forgets its failures.
    Returns once the queue is shut down and drained; cancelling it cancels every worker.
    """

    async def worker() -> None:
        while True:
            try:
                key = await queue.get()
            except ShutDown:
                return
            try:
                await sync(key)
            except asyncio.CancelledError:
                queue.done(key)
                raise
            except Exception:
                log.exception("workqueue %s: error syncing %r; requeuing (attempt %d)",
                              queue.name, key, queue.num_requeues(key) + 1)
                queue.add_rate_limited(key)
            else:
                queue.forget(key)
            queue.done(key)

    tasks = [asyncio.create_task(worker(), name=f"workqueue-{queue.name}-{i}")
             for i in range(max(1, workers))]
    try:
        await asyncio.gather(*tasks)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
