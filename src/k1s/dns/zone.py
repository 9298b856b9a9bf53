"""Keeps a records.ZoneData current from the shared informers (Services, EndpointSlices,
Namespaces).

Each watch event is applied to the index inside the informer's handler, synchronously: the
next query after the event is answered from the new state (no resync period, no batching). That
is the point: a pod turning Ready is resolvable as soon as its EndpointSlice update arrives,
where upstream users can wait tens of seconds (kubernetes/kubernetes#92559).
"""

from __future__ import annotations

import time

from k1s.api import registry

from .records import ZoneData

SERVICES = registry.core("services")
NAMESPACES = registry.core("namespaces")
ENDPOINT_SLICES = registry.get("endpointslices.discovery.k8s.io")


def _name(obj: dict) -> str:
    return (obj.get("metadata") or {}).get("name") or ""


class ZoneWatcher:
    """Wires `data` to the informers of `ctx`; `start()` waits for their initial lists."""

    def __init__(self, ctx, data: ZoneData | None = None, *, zone: str = "cluster.local",
                 dns_ip: str | None = None):
        self.data = data or ZoneData(zone, dns_ip=dns_ip, serial=int(time.time()))
        d = self.data
        self.services = ctx.informers.informer(SERVICES)
        self.slices = ctx.informers.informer(ENDPOINT_SLICES)
        self.namespaces = ctx.informers.informer(NAMESPACES)
        self.services.add_handler(d.set_service, lambda _o, n: d.set_service(n), d.delete_service)
        self.slices.add_handler(d.set_slice, lambda _o, n: d.set_slice(n), d.delete_slice)
        self.namespaces.add_handler(lambda o: d.set_namespace(_name(o)),
                                    lambda _o, n: d.set_namespace(_name(n)),
                                    lambda o: d.delete_namespace(_name(o)))

    async def start(self, timeout: float | None = None) -> None:
        for inf in (self.namespaces, self.services, self.slices):
            await inf.start()
        for inf in (self.namespaces, self.services, self.slices):
            await inf.wait_synced(timeout)
