"""The EndpointSlice controller's acting module and wiring: the only module here that writes.

One sync of a Service key `ns/name` (upstream endpointslice Controller.syncService):

1. the Service is gone, has no selector, or is ExternalName: nothing to write (the slices of a
   deleted Service go with it through their ownerReference and the garbage collector);
2. otherwise plan from the informers — the Service's pods through the namespace index, its
   slices through an index on the `kubernetes.io/service-name` label — and write the plan:
   creates (generateName `<svc>-`), updates (with the resourceVersion read), deletes.

Pod events queue only the Services selecting the pod, after BATCH_PERIOD so bursts coalesce;
slice events queue the owning Service (someone edited or deleted a slice we manage); a node's
zone label change queues the Services of the pods on that node. Our own writes are remembered
(RecentWrites) until the slice informer shows them, so a sync right after a create does not
create the same endpoints again.
"""

from __future__ import annotations

import logging

from k1s.api import registry
from k1s.client.errors import ApiError
from k1s.client.informer import split_key, start_and_sync
from k1s.client.workqueue import WorkQueue, run_workers
from k1s.controllers.endpoints.membership import PodEventsQueueServices, ServiceSelectors
from k1s.controllers.endpoints.pods import key_of, meta, spec, wants_endpoints
from k1s.controllers.endpoints.triggertime import TriggerTimeTracker

from . import planner as P
from .writer import SliceWriter, namespace_terminating

log = logging.getLogger(__name__)

COMPONENT = "endpoint-slice-controller"
SERVICE = registry.core("services")
POD = registry.core("pods")
NODE = registry.core("nodes")
SLICE = registry.get("endpointslices.discovery.k8s.io")

WORKERS = 5                 # upstream --concurrent-service-endpoint-syncs
BATCH_PERIOD = 0.25         # upstream's --endpointslice-updates-batch-period (0 there; see
                            # the endpoint controller for why we wait a little)
WRITE_CONCURRENCY = 16      # slice writes in flight at once

SLICE_BY_SERVICE = "endpointslice/service"
POD_BY_NODE = "endpointslice/node"


def _slice_service(sl: dict) -> list[str]:
    m = meta(sl)
    labels = m.get("labels") or {}
    svc = labels.get(P.SERVICE_NAME_LABEL)
    if not svc or labels.get(P.MANAGED_BY_LABEL) != P.CONTROLLER_NAME:
        return []
    return [f"{m.get('namespace', '')}/{svc}"]


def _pod_node(pod: dict) -> list[str]:
    node = spec(pod).get("nodeName")
    return [node] if node else []


class EndpointSliceController(PodEventsQueueServices):
    def __init__(self, ctx, *, workers: int = WORKERS, batch_period: float = BATCH_PERIOD,
                 max_endpoints_per_slice: int = P.MAX_ENDPOINTS_PER_SLICE):
        self.client = ctx.client
        self.recorder = ctx.recorder_for(COMPONENT)
        self.workers = workers
        self.batch_period = batch_period
        self.max_per_slice = max_endpoints_per_slice
        self.queue = WorkQueue("endpointslice")
        self.services = ctx.informers.informer(SERVICE)
        self.pods = ctx.informers.informer(POD)
        self.slices = ctx.informers.informer(SLICE)
        self.nodes = ctx.informers.informer(NODE)
        self.writer = SliceWriter(self.client, self.slices, SLICE_BY_SERVICE, _slice_service,
                                  concurrency=WRITE_CONCURRENCY)
        self.pods.add_indexer(POD_BY_NODE, _pod_node)
        self.selectors = ServiceSelectors()
        self.triggers = TriggerTimeTracker()
        self.services.add_handler(on_add=self._service_changed,
                                  on_update=lambda _o, n: self._service_changed(n),
                                  on_delete=self._service_changed)
        self.pods.add_handler(on_add=self._pod_added, on_update=self._pod_updated,
                              on_delete=self._pod_added)
        self.writer.requeue_on_changes(self.queue, self.batch_period)
        self.nodes.add_handler(on_update=self._node_updated)

    # -- event handlers: which Service keys to queue ----------------------------------------------

    def _service_changed(self, svc: dict) -> None:
        self.queue.add(key_of(svc))

    def _node_updated(self, old: dict, new: dict) -> None:
        zone = lambda n: (meta(n).get("labels") or {}).get(P.ZONE_LABEL)  # noqa: E731
        if zone(old) == zone(new):
            return
        keys: set[str] = set()
        for pod in self.pods.by_index(POD_BY_NODE, meta(new).get("name", "")):
            keys |= self._services_of(pod)
        for key in keys:
            self.queue.add_after(key, self.batch_period)

    # -- running ----------------------------------------------------------------------------------

    async def run(self) -> None:
        infs = (self.services, self.pods, self.slices, self.nodes)
        await start_and_sync(infs)
        try:
            await run_workers(self.queue, self.sync, self.workers)
        finally:
            self.queue.shutdown()

    def _zone_of(self, node_name: str) -> str | None:
        node = self.nodes.get(node_name)
        return (meta(node).get("labels") or {}).get(P.ZONE_LABEL) if node else None

    def existing(self, key: str) -> list[dict]:
        """The Service's slices as far as we know (the informer's, overlaid by our writes)."""
        return self.writer.existing(key)

    async def sync(self, key: str) -> P.Plan | None:
        """Bring the slices of Service `key` in line; returns the plan carried out."""
        ns, name = split_key(key)
        svc = self.services.get(name, ns)
        if svc is None:
            self.selectors.forget(key)
            self.triggers.forget(key)
            self.writer.forget(key)
            return None
        if not wants_endpoints(svc):
            return None
        selector = self.selectors.selector(svc)
        pods = [p for p in self.pods.list(ns) if selector.matches(meta(p).get("labels"))]
        trigger = self.triggers.compute(key, svc, pods)
        plan = P.plan(svc, pods, self.existing(key), zone_of=self._zone_of,
                      trigger_time=trigger, max_per_slice=self.max_per_slice)
        if plan.empty():
            return plan
        errors = await self.writer.apply(key, plan)
        if errors and all(namespace_terminating(e) for e in errors):
            return plan     # the namespace is going away: nothing to create
        if errors:
            msg = "; ".join(e.message if isinstance(e, ApiError) else str(e) for e in errors)
            self.recorder.event(svc, "Warning", "FailedToUpdateEndpointSlices",
                                f"Error updating Endpoint Slices for Service {key}: {msg}")
            raise errors[0]
        return plan
