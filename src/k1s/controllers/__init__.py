"""The controllers `k1s up` and `k1s controllers` run: `CONTROLLERS` maps each controller's name
(upstream's kube-controller-manager --controllers names) to a factory taking a
ControllerContext and returning an object with `async def run()`.

Factories import their controller lazily, so importing this registry stays cheap and one
controller's import error cannot stop the others from being listed.
"""

from __future__ import annotations

from typing import Any, Callable


def _namespace(ctx) -> Any:
    from .namespace.controller import NamespaceController
    return NamespaceController(ctx)


def _garbage_collector(ctx) -> Any:
    from .garbage_collector.controller import GarbageCollector
    return GarbageCollector(ctx)


def _pvc_protection(ctx) -> Any:
    from .pvc_protection.controller import PVCProtectionController
    return PVCProtectionController(ctx)


def _pv_protection(ctx) -> Any:
    from .pv_protection.controller import PVProtectionController
    return PVProtectionController(ctx)


def _node(ctx) -> Any:
    # this machine's node agent (kubelet's role, with its local provisioner): `k1s up` runs
    # it in-process unless it simulates nodes instead
    from k1s.node.agent import NodeAgent
    return NodeAgent(ctx)


def _volume_expansion(ctx) -> Any:
    from .volume_expansion.controller import VolumeExpansionController
    return VolumeExpansionController(ctx)


def _statefulset(ctx) -> Any:
    from .statefulset.controller import StatefulSetController
    return StatefulSetController(ctx)


def _node_lifecycle(ctx) -> Any:
    from .node_lifecycle.controller import NodeLifecycleController
    return NodeLifecycleController(ctx)


def _endpoint(ctx) -> Any:
    from .endpoints.controller import EndpointsController
    return EndpointsController(ctx)


def _endpointslice(ctx) -> Any:
    from .endpointslice.controller import EndpointSliceController
    return EndpointSliceController(ctx)


def _endpointslice_mirroring(ctx) -> Any:
    from .endpointslicemirroring.controller import EndpointSliceMirroringController
    return EndpointSliceMirroringController(ctx)


def _dns(ctx) -> Any:
    # cluster DNS (CoreDNS's role), answering from the shared informers; where it listens comes
    # from K1S_DNS_HOST / K1S_DNS_PORT (loopback and a free port unless told otherwise)
    from k1s.dns.server import controller
    return controller(ctx)


def _scheduler(ctx) -> Any:
    # The scheduler is its own component (`k1s scheduler` later); `k1s up` runs it beside the
    # controllers on the same informers.
    from k1s.scheduler.scheduler import Scheduler
    return Scheduler(ctx)


CONTROLLERS: dict[str, Callable[[Any], Any]] = {
    "namespace": _namespace,
    "garbage-collector": _garbage_collector,
    "pvc-protection": _pvc_protection,
    "pv-protection": _pv_protection,
    "node": _node,
    "volume-expansion": _volume_expansion,
    "persistentvolume-binder": lambda ctx: __import__("k1s.controllers.pv_binder.controller", fromlist=["_"]).PersistentVolumeBinder(ctx),
    "statefulset": _statefulset,
    "node-lifecycle": _node_lifecycle,
    "scheduler": _scheduler,
    "endpoint": _endpoint,
    "endpointslice": _endpointslice,
    "endpointslice-mirroring": _endpointslice_mirroring,
    "dns": _dns,
}
