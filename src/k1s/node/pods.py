"""The node side of pods: watch the pods bound to this process's node(s), decide each one's
next step (`podplan.plan_pod`, pure), write status through the `status` subresource, run the
containers through a `Runtime`, and finish deletions.

One `PodWorkers` serves any number of nodes: it uses the shared pod informer (one list+watch
for the process) indexed by spec.nodeName, and one work queue whose workers (a bounded number)
sync pods of every node it serves. Timed steps (a start delay, a deletion grace period) go
through the queue's single delay heap, never a timer per pod.

The contract a runtime fulfils (simulated nodes: `simulated.SimulatedRuntime`; the real agent:
processes in namespaces):
- `state(uid) -> (started_at, ready_at) | None`: whether the pod's containers were started,
  and when they are (or will be) running and ready;
- `start(pod)`: start them (may return before they are ready: `state` tells when);
- `stop(pod, grace)`: stop them within grace seconds; `stopped(uid)` says when all exited;
- `forget(uid)`: drop what it holds for a pod that is gone;
- `adopt(uid)`: the pod's status says Running from before this process started: take over
  its containers (a simulated runtime just believes it).
A runtime of real containers (`k1s.node.podruntime.PodRuntime`) also offers
- `problem(uid) -> (message, retry_at) | None`: its last attempt to set the pod up failed
  (FailedMount), and when to try again;
- `async sync_containers(pod, pod_ip, host_ip) -> (status, recheck)`: drive the started pod's
  containers one step (starts, restarts, kills) and return the status they make, and when to
  look again.

Status writes are JSON merge patches of the whole node-owned status (conditions and container
statuses are replaced as lists), so they never conflict with other writers of the pod. The pod
addresses come from each node's pod CIDR (`AddressPool`).
"""

from __future__ import annotations

import ipaddress
import logging
import time
from dataclasses import dataclass, field
from typing import Protocol

from k1s.api import registry
from k1s.client.errors import ApiError
from k1s.client.events import EventRecorder
from k1s.client.workqueue import WorkQueue, run_workers
from k1s.client.informer import start_and_sync

from . import podplan
from .podplan import Event, FinishDelete, PodView, Requeue, Start, Stop, WriteStatus

log = logging.getLogger(__name__)

PODS = registry.core("pods")
PVCS = registry.core("persistentvolumeclaims")
NODE_INDEX = "spec.nodeName"
CLAIM_INDEX = "k1s.node/claims"      # namespace/claim -> pods using it
DEFAULT_WORKERS = 32                   # concurrent pod syncs (status writes) per process
NO_ADDRESS = "no address"


def node_name_index(pod: dict) -> list[str]:
    n = (pod.get("spec") or {}).get("nodeName")
    return [n] if n else []


def claims_index(pod: dict) -> list[str]:
    ns = (pod.get("metadata") or {}).get("namespace", "")
    return [f"{ns}/{c}" for _v, c in podplan.claim_names(pod)]


class Runtime(Protocol):
    def state(self, uid: str) -> tuple[float, float] | None: ...
    async def start(self, pod: dict) -> None: ...
    async def stop(self, pod: dict, grace: int) -> None: ...
    def stopped(self, uid: str) -> bool: ...
    def forget(self, uid: str) -> None: ...
    def adopt(self, uid: str) -> None: ...


class AddressPool:
    """Pod addresses from one node's pod CIDR (the network and the first host, the bridge's
    address, are never handed out), one per pod uid."""

    def __init__(self, cidr: str):
        net = ipaddress.ip_network(cidr, strict=False)
        self.free = [str(ip) for ip in list(net.hosts())[1:]]
        self.free.reverse()                       # pop() hands out the lowest first
        self.net = net
        self.by_uid: dict[str, str] = {}

    def get(self, uid: str) -> str | None:
        return self.by_uid.get(uid)

    def adopt(self, uid: str, ip: str | None) -> None:
        """Keep the address a pod already has (a restart of the node process)."""
        if not ip or uid in self.by_uid or ip not in self.free:
            return
        self.free.remove(ip)
        self.by_uid[uid] = ip

    def allocate(self, uid: str) -> str | None:
        if uid not in self.by_uid:
            if not self.free:
                return None
            self.by_uid[uid] = self.free.pop()
        return self.by_uid[uid]

    def release(self, uid: str) -> None:
        ip = self.by_uid.pop(uid, None)
        if ip:
            self.free.append(ip)


@dataclass
class NodeInfo:
    """What the worker needs about one node it serves."""
    name: str
    host_ip: str
    pool: AddressPool
    runtime: Runtime
    recorder: EventRecorder | None = None
    uids: set[str] = field(default_factory=set)
    adopted: bool = False       # addresses of the pods found at start are reserved
    finished: set[str] = field(default_factory=set)   # terminal pods already taken down


class PodWorkers:
    def __init__(self, ctx, *, delete_cap: float = float("inf"),
                 workers: int = DEFAULT_WORKERS, clock=time.time):
        self.client = ctx.client
        self.delete_cap = delete_cap
        self.workers = workers
        self.clock = clock
        self.nodes: dict[str, NodeInfo] = {}
        self.queue = WorkQueue("node-pods")
        self.reported: dict[str, str] = {}           # pod uid -> problem already reported
        self.uid_of: dict[tuple[str, str], tuple[str, str]] = {}  # key -> (uid, node)
        self.pods = ctx.informers.informer(PODS)
        self.pods.add_indexer(NODE_INDEX, node_name_index)
        self.pods.add_indexer(CLAIM_INDEX, claims_index)
        self.claims = ctx.informers.informer(PVCS)
        self.pods.add_handler(on_add=self._on_pod, on_update=lambda _o, n: self._on_pod(n),
                              on_delete=self._on_pod)
        self.claims.add_handler(on_add=self._on_claim,
                                on_update=lambda _o, n: self._on_claim(n),
                                on_delete=self._on_claim)

    def serve(self, node: NodeInfo) -> None:
        """Start syncing the pods bound to `node` (also the ones already cached)."""
        self.nodes[node.name] = node
        for pod in self.pods.by_index(NODE_INDEX, node.name):
            self._on_pod(pod)

    # -- events -> keys ---------------------------------------------------------------------------
    def _on_pod(self, pod: dict) -> None:
        if (pod.get("spec") or {}).get("nodeName") in self.nodes:
            m = pod["metadata"]
            self.queue.add((m.get("namespace", ""), m["name"]))

    def _on_claim(self, claim: dict) -> None:
        m = claim.get("metadata") or {}
        for pod in self.pods.by_index(CLAIM_INDEX, f"{m.get('namespace', '')}/{m.get('name')}"):
            self._on_pod(pod)

    async def run(self) -> None:
        await start_and_sync((self.pods, self.claims))
        try:
            await run_workers(self.queue, self.sync, self.workers)
        finally:
            self.queue.shutdown()

    # -- one pod -----------------------------------------------------------------------------------
    async def sync(self, key: tuple[str, str]) -> None:
        ns, name = key
        pod = self.pods.get(name, ns)
        node = self.nodes.get(((pod or {}).get("spec") or {}).get("nodeName", ""))
        uid = ((pod or {}).get("metadata") or {}).get("uid", "")
        known = self.uid_of.get(key)
        if known and (pod is None or known[0] != uid):
            self._forget(*known)                    # gone, or replaced by a namesake
            self.uid_of.pop(key, None)
        if pod is None or node is None:
            return
        self.uid_of[key] = (uid, node.name)
        if not node.adopted:
            # before handing out any address, reserve every address the node's pods already
            # have (this process restarted): two pods must never share one
            node.adopted = True
            for other in self.pods.by_index(NODE_INDEX, node.name):
                ost = other.get("status") or {}
                if ost.get("phase") not in podplan.TERMINAL:   # a finished pod's is free
                    node.pool.adopt(other["metadata"].get("uid", ""), ost.get("podIP"))
        if uid not in node.uids:
            node.uids.add(uid)
            st = pod.get("status") or {}
            if st.get("phase") not in podplan.TERMINAL:
                node.pool.adopt(uid, st.get("podIP"))
            if st.get("phase") == "Running":
                node.runtime.adopt(uid)            # started before this process did
        for _ in range(3):                          # re-plan after a Start (delay 0 -> Running)
            view = await self._view(pod, node)
            restart = False
            for act in podplan.plan_pod(pod, view):
                if isinstance(act, Start):
                    await node.runtime.start(pod)
                    restart = True
                elif isinstance(act, Stop):
                    await node.runtime.stop(pod, act.grace)
                elif isinstance(act, WriteStatus):
                    pod = await self._write_status(pod, act.status)
                    if pod is None:
                        return
                elif isinstance(act, Event):
                    self._event(node, pod, act)
                elif isinstance(act, FinishDelete):
                    await self._finish_delete(pod, act.uid)
                elif isinstance(act, Requeue):
                    self.queue.add_after(key, max(0.0, act.after))
            if not restart:
                break
        if (pod.get("status") or {}).get("phase") in podplan.TERMINAL and \
                uid not in node.finished and not pod["metadata"].get("deletionTimestamp"):
            # a finished pod keeps its object and logs, not its sandbox: the runtime takes
            # its network and volumes down and its address goes back to the pool (kubelet
            # stops the sandbox of a terminal pod; the address stays in its status)
            node.finished.add(uid)
            finish = getattr(node.runtime, "finish", None)
            if finish is not None:
                await finish(uid)
            node.pool.release(uid)

    async def _view(self, pod: dict, node: NodeInfo) -> PodView:
        uid = pod["metadata"].get("uid", "")
        claims = {}
        ns = pod["metadata"].get("namespace", "")
        for _vol, claim in podplan.claim_names(pod):
            claims[claim] = self.claims.get(claim, ns)
        state = node.runtime.state(uid)
        pod_ip = node.pool.get(uid)
        deleting = bool(pod["metadata"].get("deletionTimestamp"))
        finished = (pod.get("status") or {}).get("phase") in podplan.TERMINAL
        if state is not None and pod_ip is None and not deleting and not finished:
            pod_ip = node.pool.allocate(uid)
        problem = podplan.volume_problem(pod, claims)
        retry_at = None
        runtime_problem = getattr(node.runtime, "problem", None)
        if problem is None and runtime_problem is not None:
            problem, retry_at = runtime_problem(uid) or (None, None)
        status = recheck = None
        sync_containers = getattr(node.runtime, "sync_containers", None)
        stopped = node.runtime.stopped(uid)
        if sync_containers is not None and state is not None and \
                (not deleting or stopped) and \
                (pod.get("status") or {}).get("phase") not in podplan.TERMINAL:
            # a pod being deleted only once its containers exited: then the status is their
            # real terminations (nothing is started for a pod being deleted)
            status, recheck = await sync_containers(pod, pod_ip, node.host_ip)
            if status is None and problem is None and runtime_problem is not None:
                # preparing it failed just now (e.g. an adopted pod's volume would not mount):
                # report that, and try again when the runtime says
                problem, retry_at = runtime_problem(uid) or (None, None)
        return PodView(now=self.clock(), host_ip=node.host_ip, pod_ip=pod_ip,
                       volume_problem=problem, retry_at=retry_at,
                       reported_problem=self.reported.get(uid),
                       started_at=state[0] if state else None,
                       ready_at=state[1] if state else None,
                       stopped=stopped, delete_cap=self.delete_cap,
                       status=status, recheck=recheck,
                       waits_for_stop=sync_containers is not None)

    async def _write_status(self, pod: dict, status: dict) -> dict | None:
        m = pod["metadata"]
        try:
            return await self.client.patch(PODS, m["name"], {"status": status},
                                           m.get("namespace"), subresource="status")
        except ApiError as e:
            if e.is_not_found():
                return None
            raise

    def _event(self, node: NodeInfo, pod: dict, ev: Event) -> None:
        uid = pod["metadata"].get("uid", "")
        self.reported[uid] = NO_ADDRESS if ev.reason == "FailedCreatePodSandBox" else ev.message
        if node.recorder is not None:
            node.recorder.event(pod, ev.type, ev.reason, ev.message)

    async def _finish_delete(self, pod: dict, uid: str) -> None:
        m = pod["metadata"]
        try:
            await self.client.delete(PODS, m["name"], m.get("namespace"), grace_period_seconds=0,
                                     preconditions={"uid": uid} if uid else None)
        except ApiError as e:
            if not (e.is_not_found() or e.is_conflict()):
                raise

    def _forget(self, uid: str, node_name: str) -> None:
        self.reported.pop(uid, None)
        node = self.nodes.get(node_name)
        if node is not None:
            node.uids.discard(uid)
            node.finished.discard(uid)
            node.pool.release(uid)
            node.runtime.forget(uid)
