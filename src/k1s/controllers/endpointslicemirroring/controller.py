"""The EndpointSlice mirroring controller's acting module and wiring (the only module here that
writes): keeps the mirrored slices of each Endpoints object in line with it (see planner.py).

One sync of a key `ns/name` (the Endpoints', which is also its Service's): plan from the
informers — the Endpoints object, its Service, and the slices labelled with the Service's
name and managed by this controller — and write creates (generateName `<name>-`), updates and
deletes. Endpoints and Service changes queue their key; a change to a mirrored slice made by
someone else queues its Service's, so the slice is set right again. Our own writes are
remembered until the slice informer shows them (`endpointslice.writer.SliceWriter`, shared
with the EndpointSlice controller).
"""

from __future__ import annotations

import logging

from k1s.api import registry
from k1s.client.errors import ApiError
from k1s.client.informer import split_key, start_and_sync
from k1s.client.workqueue import WorkQueue, run_workers
from k1s.controllers.endpoints.pods import key_of, meta
from k1s.controllers.endpointslice.planner import MANAGED_BY_LABEL, SERVICE_NAME_LABEL, Plan
from k1s.controllers.endpointslice.writer import SliceWriter, namespace_terminating

from . import planner as P

log = logging.getLogger(__name__)

COMPONENT = "endpointslicemirroring-controller"
SERVICE = registry.core("services")
ENDPOINTS = registry.core("endpoints")
SLICE = registry.get("endpointslices.discovery.k8s.io")
WORKERS = 5                     # upstream --mirroring-concurrent-service-endpoint-syncs
BATCH_PERIOD = 0.25             # coalesce bursts of changes to one object
MIRRORED_BY_SERVICE = "endpointslicemirroring/service"


def _mirrored_service(sl: dict) -> list[str]:
    m = meta(sl)
    labels = m.get("labels") or {}
    svc = labels.get(SERVICE_NAME_LABEL)
    if not svc or labels.get(MANAGED_BY_LABEL) != P.CONTROLLER_NAME:
        return []
    return [f"{m.get('namespace', '')}/{svc}"]


class EndpointSliceMirroringController:
    def __init__(self, ctx, *, workers: int = WORKERS, batch_period: float = BATCH_PERIOD):
        self.client = ctx.client
        self.recorder = ctx.recorder_for(COMPONENT)
        self.workers = workers
        self.batch_period = batch_period
        self.queue = WorkQueue("endpointslicemirroring")
        self.services = ctx.informers.informer(SERVICE)
        self.endpoints = ctx.informers.informer(ENDPOINTS)
        self.slices = ctx.informers.informer(SLICE)
        self.writer = SliceWriter(self.client, self.slices, MIRRORED_BY_SERVICE,
                                  _mirrored_service)
        for inf in (self.services, self.endpoints):
            inf.add_handler(on_add=self._changed, on_update=lambda _o, n: self._changed(n),
                            on_delete=self._changed)
        self.writer.requeue_on_changes(self.queue, self.batch_period)

    def _changed(self, obj: dict) -> None:
        self.queue.add_after(key_of(obj), self.batch_period)

    async def run(self) -> None:
        infs = (self.services, self.endpoints, self.slices)
        await start_and_sync(infs)
        try:
            await run_workers(self.queue, self.sync, self.workers)
        finally:
            self.queue.shutdown()

    async def sync(self, key: str) -> Plan:
        ns, name = split_key(key)
        eps = self.endpoints.get(name, ns)
        svc = self.services.get(name, ns)
        plan = P.plan(eps, svc, self.writer.existing(key))
        if eps is None and svc is None and plan.empty():
            self.writer.forget(key)
        if plan.empty():
            return plan
        errors = await self.writer.apply(key, plan)
        if errors:
            if all(namespace_terminating(e) for e in errors):
                return plan             # the namespace is going away
            msg = "; ".join(e.message if isinstance(e, ApiError) else str(e) for e in errors)
            if eps is not None:
                self.recorder.event(eps, "Warning", "FailedToUpdateEndpointSlices",
                                    f"Error updating Endpoint Slices for Endpoints {key}: {msg}")
            raise errors[0]
        return plan
