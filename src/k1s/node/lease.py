"""Node heartbeats: a Node object kept registered and Ready, and its Lease kept renewed.

One implementation for every kind of node k1s runs: the real local node (`registration.py`)
and simulated ones (`simulated.py`). A `Heartbeat` knows how to build its Node and its status
(callables given by the caller); `run_heartbeats` beats many of them from one loop.

What upstream's kubelet does and we copy:
- the Lease `kube-node-lease/<node>` (holderIdentity = node, leaseDurationSeconds 40) is renewed
  every 10 s (renewIntervalFraction 0.25 of the duration): it is the liveness signal the
  node-lifecycle controller watches;
- the Node's status is posted at least every STATUS_EVERY beats (kubelet's
  nodeStatusReportFrequency), and at once whenever the stored Ready condition is not True,
  e.g. after the node-lifecycle controller marked the node Unknown: a returning node reports
  itself Ready again, which is what lets the controller remove its taints.
- each condition keeps its lastTransitionTime while its status does not change.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone
from typing import Callable

from k1s.api import registry
from k1s.client.errors import ApiError
from k1s.client.events import rfc3339

log = logging.getLogger(__name__)

NODES = registry.core("nodes")
LEASES = registry.get("leases.coordination.k8s.io")
LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION = 40             # kubelet nodeLeaseDurationSeconds
RENEW_INTERVAL = 10.0           # 0.25 x LEASE_DURATION
STATUS_EVERY = 6                # beats between unconditional status posts (a minute)

# (type, status, reason, message) of a healthy kubelet's conditions, in kubelet's order
HEALTHY_CONDITIONS = (
    ("MemoryPressure", "False", "KubeletHasSufficientMemory",
     "kubelet has sufficient memory available"),
    ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
)


def micro_time() -> str:
    """metav1.MicroTime (what Lease renewTime holds)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def healthy_conditions(previous: dict | None, now: str) -> list[dict]:
    """Ready=True and the pressure conditions False, keeping each condition's
    lastTransitionTime from `previous` (a NodeStatus) while its status does not change."""
    old = {c.get("type"): c for c in (previous or {}).get("conditions") or ()}
    conds = []
    for type_, status, reason, message in HEALTHY_CONDITIONS:
        prev = old.get(type_) or {}
        since = prev.get("lastTransitionTime") if prev.get("status") == status else None
        conds.append({"type": type_, "status": status, "lastHeartbeatTime": now,
                      "lastTransitionTime": since or now, "reason": reason, "message": message})
    return conds


def is_ready(node: dict | None) -> bool:
    for c in ((node or {}).get("status") or {}).get("conditions") or ():
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def lease_object(name: str, now: str) -> dict:
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": name, "namespace": LEASE_NAMESPACE},
            "spec": {"holderIdentity": name, "leaseDurationSeconds": LEASE_DURATION,
                     "renewTime": now}}


class Heartbeat:
    """One node's registration, status posts and lease renewals.

    `node_object()` gives the Node to create; `status(previous_status, now)` gives the status
    to post (previous_status is what the server holds, for lastTransitionTime)."""

    def __init__(self, client, name: str, node_object: Callable[[], dict],
                 status: Callable[[dict | None, str], dict]):
        self.client = client
        self.name = name
        self.node_object = node_object
        self.status = status
        self.node: dict | None = None       # the Node as last written or read
        self._lease: dict | None = None     # the Lease as last written (saves a GET a beat)
        self.beats = 0

    async def register(self) -> dict:
        """Create the Node with its status (as the kubelet registers, so no reader ever sees
        a Node without one), or post the status of one that exists. Returns the Node."""
        obj = dict(self.node_object())
        obj["status"] = self.status(None, rfc3339())
        try:
            self.node = await self.client.create(NODES, obj)
            return self.node
        except ApiError as e:
            if not e.is_already_exists():
                raise
            node = await self.client.get(NODES, self.name)
        self.node = await self.update_status(node)
        return self.node

    async def update_status(self, node: dict) -> dict:
        for _ in range(5):
            body = dict(node, status=self.status(node.get("status"), rfc3339()))
            try:
                self.node = await self.client.update_status(NODES, body)
                return self.node
            except ApiError as e:
                if not e.is_conflict():
                    raise
            node = await self.client.get(NODES, self.name)
        raise RuntimeError(f"node {self.name}: status kept conflicting")

    async def renew_lease(self) -> dict:
        now = micro_time()
        lease = self._lease
        for _ in range(3):
            if lease is None:
                try:
                    lease = await self.client.get(LEASES, self.name, LEASE_NAMESPACE)
                except ApiError as e:
                    if not e.is_not_found():
                        raise
                    self._lease = await self.client.create(
                        LEASES, lease_object(self.name, now), LEASE_NAMESPACE)
                    return self._lease
            lease = dict(lease, spec=dict(lease.get("spec") or {}, holderIdentity=self.name,
                                          leaseDurationSeconds=LEASE_DURATION, renewTime=now))
            try:
                self._lease = await self.client.update(LEASES, lease)
                return self._lease
            except ApiError as e:
                if not (e.is_conflict() or e.is_not_found()):
                    raise
                lease = None            # someone else wrote it (or deleted it): read again
        raise RuntimeError(f"node {self.name}: lease kept conflicting")

    async def beat(self) -> None:
        """One heartbeat: register if needed, post status when due, renew the lease."""
        try:
            if self.node is None:
                await self.register()
            else:
                node = await self.client.get(NODES, self.name)
                if self.beats % STATUS_EVERY == 0 or not is_ready(node):
                    await self.update_status(node)
            await self.renew_lease()
        except ApiError as e:
            if e.is_not_found():
                self.node = None        # the Node was deleted: register it again
            log.warning("node %s: %s", self.name, e.message)
        except asyncio.CancelledError:
            raise
        except Exception as e:          # the API is away (disconnects, timeouts): beat again
            log.warning("node %s: %s", self.name, e or type(e).__name__)
        finally:
            self.beats += 1


async def run_heartbeats(beats: list[Heartbeat], interval: float = RENEW_INTERVAL,
                         concurrency: int = 16) -> None:
    """Beat every heartbeat each `interval` seconds from one loop (bounded concurrency), so
    a thousand simulated nodes cost one task, not a thousand."""
    sem = asyncio.Semaphore(concurrency)

    async def one(hb: Heartbeat) -> None:
        async with sem:
            await hb.beat()

    loop = asyncio.get_running_loop()
    while True:
        started = loop.time()
        await asyncio.gather(*(one(hb) for hb in beats))
        await asyncio.sleep(max(0.0, interval - (loop.time() - started)))
