"""Lease-based leader election (coordination.k8s.io/v1), with upstream's semantics.

Follows k8s.io/client-go/tools/leaderelection:

* **Acquire**: create the Lease if missing; otherwise take it only if it has no holder, or the
  holder's record has not changed for its leaseDurationSeconds *as observed by this process's
  clock*
  (upstream compares against the local time it last saw the record change, not the remote
  renewTime, so clock skew between machines does not matter).
* **Optimistic concurrency**: every write is an update carrying the read resourceVersion; a
  409 means someone else wrote first and this attempt fails.
* **Renew**: the leader rewrites renewTime every `retry_period`; if no renewal succeeds within
  `renew_deadline`, leadership is lost and the leading coroutine is cancelled.
* **leaseTransitions** is incremented whenever the holder changes (including taking a released
  lease); acquireTime is set on each change of holder and kept on renewals.
* **Release on stop** (upstream ReleaseOnCancel, which k1s turns on by default): when `run()`
  is cancelled while leading, the lease is rewritten with an empty holderIdentity and
  leaseDurationSeconds 1, so a standby takes over at once instead of waiting out the lease.
  Pass `release_on_cancel=False` to leave the lease to expire instead.

`run()` returns (like upstream's Run) once leadership is lost; callers that want to contend
again call it again.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from datetime import datetime, timezone
from typing import Awaitable, Callable

from k1s.api import registry

from .errors import ApiError
from .rest import APIClient

log = logging.getLogger(__name__)

LEASES = registry.get("leases.coordination.k8s.io")
JITTER_FACTOR = 1.2     # upstream: retries wait retry_period * (1 + rand * 1.2)


def micro_time(ts: float | None = None) -> str:
    """metav1.MicroTime in RFC 3339 with microseconds, as the API stores Lease times."""
    dt = datetime.fromtimestamp(time.time() if ts is None else ts, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def lease_duration_seconds(duration: float) -> int:
    """leaseDurationSeconds is an int32; round up so the lease never looks shorter."""
    return max(1, math.ceil(duration))


def next_spec(old: dict | None, identity: str, duration: float, now: str,
              was_leader: bool) -> dict:
    """The Lease spec a successful acquire-or-renew writes (pure, for tests)."""
    old = old or {}
    spec = {
        "holderIdentity": identity,
        "leaseDurationSeconds": lease_duration_seconds(duration),
        "acquireTime": now,
        "renewTime": now,
        "leaseTransitions": int(old.get("leaseTransitions") or 0),
    }
    if was_leader and old.get("holderIdentity") == identity:
        spec["acquireTime"] = old.get("acquireTime") or now
    elif old:
        spec["leaseTransitions"] += 1
    return spec


class LeaderElector:
    def __init__(self, client: APIClient, namespace: str, name: str, identity: str, *,
                 lease_duration: float = 15, renew_deadline: float = 10,
                 retry_period: float = 2, release_on_cancel: bool = True):
        if lease_duration <= renew_deadline:
            raise ValueError("lease_duration must be greater than renew_deadline")
        if renew_deadline <= JITTER_FACTOR * retry_period:
            raise ValueError("renew_deadline must be greater than retry_period*1.2")
        self.client = client
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.release_on_cancel = release_on_cancel
        self.is_leader = False
        # the last Lease spec seen, and when (loop clock) it last changed
        self._observed: dict | None = None
        self._observed_at = 0.0
        self._observed_rv = ""

    @property
    def leader(self) -> str:
        """The holder identity last observed ("" if none)."""
        return (self._observed or {}).get("holderIdentity") or ""

    async def run(self, on_started_leading: Callable[[], Awaitable[None]],
                  on_stopped_leading: Callable[[], object] | None = None) -> None:
        """Contend until leading, lead until the lease is lost (or run() is cancelled)."""
        leading: asyncio.Task | None = None
        try:
            await self._acquire()
            leading = asyncio.create_task(on_started_leading(),
                                          name=f"leader {self.namespace}/{self.name}")
            leading.add_done_callback(self._leading_done)
            await self._renew_loop()
            log.info("leader election %s/%s: %s lost the lease", self.namespace, self.name,
                     self.identity)
        finally:
            was_leader = self.is_leader
            self.is_leader = False
            if leading is not None and not leading.done():
                leading.cancel()
                await asyncio.gather(leading, return_exceptions=True)
            if was_leader and self.release_on_cancel:
                await self._release()
            if leading is not None and on_stopped_leading is not None:
                try:
                    result = on_stopped_leading()
                    if asyncio.iscoroutine(result):
                        await result
                except Exception:
                    log.exception("on_stopped_leading failed")

    def _leading_done(self, task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("leader election %s/%s: leading coroutine failed", self.namespace,
                      self.name, exc_info=task.exception())

    async def _acquire(self) -> None:
        while True:
            if await self._try_acquire_or_renew():
                log.info("leader election %s/%s: %s acquired the lease", self.namespace,
                         self.name, self.identity)
                return
            await asyncio.sleep(self.retry_period * (1 + random.random() * JITTER_FACTOR))

    async def _renew_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.retry_period)
            deadline = loop.time() + self.renew_deadline
            renewed = False
            while not renewed:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return
                try:
                    renewed = await asyncio.wait_for(self._try_acquire_or_renew(), remaining)
                except asyncio.TimeoutError:
                    return
                if not renewed:
                    await asyncio.sleep(min(self.retry_period, max(0.0, deadline - loop.time())))

    async def _try_acquire_or_renew(self) -> bool:
        """One attempt; True when we hold the lease afterwards."""
        loop = asyncio.get_running_loop()
        now = micro_time()
        try:
            lease = await self.client.get(LEASES, self.name, self.namespace)
        except ApiError as e:
            if not e.is_not_found():
                log.warning("leader election: error reading lease %s/%s: %s",
                            self.namespace, self.name, e)
                return False
            spec = next_spec(None, self.identity, self.lease_duration, now, False)
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": self.namespace}, "spec": spec}
            try:
                created = await self.client.create(LEASES, body, self.namespace)
            except ApiError as e2:
                log.info("leader election: creating lease %s/%s failed: %s",
                         self.namespace, self.name, e2)
                return False
            except OSError:
                return False
            self._observe(created, loop.time())
            self.is_leader = True
            return True
        except Exception as e:  # connection errors: this attempt failed, keep trying
            log.warning("leader election: error reading lease %s/%s: %r",
                        self.namespace, self.name, e)
            return False

        old = lease.get("spec") or {}
        self._observe(lease, loop.time())
        holder = old.get("holderIdentity") or ""
        # Valid for the holder's advertised duration from when *we* saw the record change.
        duration = old.get("leaseDurationSeconds") or self.lease_duration
        valid = loop.time() < self._observed_at + duration
        if holder and holder != self.identity and valid:
            self.is_leader = False
            return False  # someone else holds a live lease

        lease["spec"] = next_spec(old, self.identity, self.lease_duration, now,
                                  was_leader=holder == self.identity)
        try:
            updated = await self.client.update(LEASES, lease)
        except ApiError as e:
            if not e.is_conflict():
                log.warning("leader election: updating lease %s/%s failed: %s",
                            self.namespace, self.name, e)
            return False
        except Exception as e:
            log.warning("leader election: updating lease %s/%s failed: %r",
                        self.namespace, self.name, e)
            return False
        self._observe(updated, loop.time())
        self.is_leader = True
        return True

    def _observe(self, lease: dict, at: float) -> None:
        spec = lease.get("spec") or {}
        if spec != self._observed:
            self._observed = dict(spec)
            self._observed_at = at
        self._observed_rv = (lease.get("metadata") or {}).get("resourceVersion", "")

    async def _release(self) -> None:
        """Give the lease up (holderIdentity "") if we still hold it."""
        try:
            lease = await self.client.get(LEASES, self.name, self.namespace)
            spec = lease.get("spec") or {}
            if spec.get("holderIdentity") != self.identity:
                return
            now = micro_time()
            lease["spec"] = {"leaseDurationSeconds": 1, "acquireTime": now, "renewTime": now,
                             "leaseTransitions": int(spec.get("leaseTransitions") or 0)}
            await self.client.update(LEASES, lease)
            log.info("leader election %s/%s: %s released the lease", self.namespace, self.name,
                     self.identity)
        except Exception as e:
            log.warning("leader election: releasing lease %s/%s failed: %r",
                        self.namespace, self.name, e)
