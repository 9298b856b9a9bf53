"""The endpoint controller's acting module and wiring: the only module here that writes.

One sync of a Service key `ns/name` (upstream EndpointController.syncService):

1. the Service is gone: delete its Endpoints (a 404 is fine) and forget it;
2. it has no selector, or is ExternalName: leave its Endpoints alone (the user's);
3. otherwise plan from the informers (the Service's namespace only, through the namespace
   index) and create or update the Endpoints when the planner says they differ.

Events queue only the Services concerned: a pod event queues the Services selecting the pod
(before and after a label change), and only when something endpoints read changed. Pod events
queue after BATCH_PERIOD, so the readiness flips of a 1,000-pod StatefulSet coalesce into a
few writes of the Service's Endpoints (the queue keeps one entry per key; a sync reads the
current informer state). On start every stored Endpoints object is queued once, so one whose
Service was deleted while we were down is removed (upstream's checkLeftoverEndpoints).
"""

from __future__ import annotations

import logging

from k1s.api import registry
from k1s.client.errors import ApiError
from k1s.client.informer import split_key, start_and_sync
from k1s.client.workqueue import WorkQueue, run_workers

from . import planner as P
from .membership import PodEventsQueueServices, ServiceSelectors
from .pods import key_of, meta, wants_endpoints
from .recent import RecentWrites
from .triggertime import TriggerTimeTracker

log = logging.getLogger(__name__)

COMPONENT = "endpoint-controller"
SERVICE = registry.core("services")
POD = registry.core("pods")
ENDPOINTS = registry.core("endpoints")

WORKERS = 5                 # upstream --concurrent-endpoint-syncs
BATCH_PERIOD = 0.25         # seconds a pod change waits before its Services sync (upstream's
                            # --endpoint-updates-batch-period; 0 there, but a burst of pod
                            # updates then rewrites a large Endpoints object once per event)
LEADER_ANNOTATION = "control-plane.alpha.kubernetes.io/leader"


class EndpointsController(PodEventsQueueServices):
    def __init__(self, ctx, *, workers: int = WORKERS, batch_period: float = BATCH_PERIOD):
        self.client = ctx.client
        self.recorder = ctx.recorder_for(COMPONENT)
        self.workers = workers
        self.batch_period = batch_period
        self.queue = WorkQueue("endpoint")
        self.services = ctx.informers.informer(SERVICE)
        self.pods = ctx.informers.informer(POD)
        self.endpoints = ctx.informers.informer(ENDPOINTS)
        self.selectors = ServiceSelectors()
        self.triggers = TriggerTimeTracker()
        self.recent = RecentWrites(self.endpoints)
        self.services.add_handler(on_add=self._service_changed,
                                  on_update=lambda _o, n: self._service_changed(n),
                                  on_delete=self._service_changed)
        self.pods.add_handler(on_add=self._pod_added, on_update=self._pod_updated,
                              on_delete=self._pod_added)
        self.endpoints.add_handler(on_delete=self._endpoints_deleted)

    # -- event handlers: which Service keys to queue ----------------------------------------------

    def _service_changed(self, svc: dict) -> None:
        self.queue.add(key_of(svc))

    def _endpoints_deleted(self, ep: dict) -> None:
        # someone deleted Endpoints we manage: recreate them (a no-op for user-managed ones)
        self.queue.add(key_of(ep))

    # -- running ----------------------------------------------------------------------------------

    async def run(self) -> None:
        await start_and_sync((self.services, self.pods, self.endpoints))
        for ep in self.endpoints.list():
            if LEADER_ANNOTATION not in (meta(ep).get("annotations") or {}):
                self.queue.add(key_of(ep))
        try:
            await run_workers(self.queue, self.sync, self.workers)
        finally:
            self.queue.shutdown()

    def current(self, key: str) -> dict | None:
        """The stored Endpoints as far as we know: the informer's, or our newer write."""
        ns, name = split_key(key)
        seen = self.endpoints.get(name, ns)
        view = self.recent.overlay(key, {name: seen} if seen is not None else {})
        return view.get(name)

    async def sync(self, key: str) -> P.Plan | None:
        """Bring the Endpoints of Service `key` in line; returns the write made, if any."""
        ns, name = split_key(key)
        svc = self.services.get(name, ns)
        if svc is None:
            self.selectors.forget(key)
            self.triggers.forget(key)
            current = self.current(key)
            if current is not None:
                try:
                    await self.client.delete(ENDPOINTS, name, ns)
                except ApiError as e:
                    if not e.is_not_found():
                        raise
                self.recent.deleted(key, current)
            return None
        if not wants_endpoints(svc):
            return None
        selector = self.selectors.selector(svc)
        pods = [p for p in self.pods.list(ns) if selector.matches(meta(p).get("labels"))]
        trigger = self.triggers.compute(key, svc, pods)
        current = self.current(key)
        plan = P.plan(svc, pods, current, trigger)
        if plan is None:
            return None
        try:
            if plan.create:
                written = await self.client.create(ENDPOINTS, plan.obj, ns)
            else:
                written = await self.client.update(ENDPOINTS, plan.obj)
        except ApiError as e:
            if plan.create and e.code == 403 and "being terminated" in (e.message or ""):
                return None     # the namespace is going away: nothing to create
            reason = "FailedToCreateEndpoint" if plan.create else "FailedToUpdateEndpoint"
            verb = "create" if plan.create else "update"
            self.recorder.event(plan.obj, "Warning", reason,
                                f"Failed to {verb} endpoint {ns}/{name}: {e.message}")
            raise
        self.recent.wrote(key, written)
        return plan
