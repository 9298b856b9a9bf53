"""The binder's acting module and wiring.

`BinderLogic` runs one claim sync or one volume sync: it gathers the planner's inputs (the
volume index for matching, caches for classes, pods and nodes), asks planner.py, and carries the
actions out through a `BinderAPI` — every write a PUT carrying the resourceVersion it was
computed from, so a stale view ends in a conflict and a retry, never in a lost update.

`PersistentVolumeBinder` is the controller `k1s up` starts: shared informers for PVs, PVCs,
StorageClasses, pods and nodes feed the index and two work queues (claims, volumes) served by
several workers. `_ClusterAPI` is the BinderAPI over the client library; the property tests
drive `BinderLogic` over an in-memory world instead, crashing it between writes.

Keeping workers from racing for one volume: a worker that picks a volume reserves it in the
index until its claimRef write lands or fails. Waking claims without an O(n^2) storm: a claim
that found nothing waits in its (class, mode) bucket; a volume becoming free wakes at most
WAKE_PER_VOLUME waiting claims that it could fit. A periodic resync (upstream's 15 s) covers
everything else.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from typing import Protocol

from k1s.api import registry
from k1s.client.errors import ApiError
from k1s.client.workqueue import WorkQueue, run_workers

from . import planner as P
from .index import VolumeIndex
from .selected_node import claims_of_pod, unscheduled_users

log = logging.getLogger(__name__)

COMPONENT = "persistentvolume-controller"
PV = registry.core("persistentvolumes")
PVC = registry.core("persistentvolumeclaims")
POD = registry.core("pods")
NODE = registry.core("nodes")
SC = registry.lookup("storage.k8s.io", "v1", "storageclasses")

CLAIM_WORKERS = 16              # upstream runs one worker per queue; writes here are awaited
VOLUME_WORKERS = 8              # concurrently, so several workers hide the round trips
RESYNC_PERIOD = 15.0            # upstream --pvclaimbinder-sync-period
WAKE_PER_VOLUME = 2             # waiting claims one newly free volume wakes
WAKE_SCAN_LIMIT = 256           # waiting claims examined per free volume, at most
VOLUME_REPLANS = 3              # plan/act rounds per volume sync (unbind, then phase)
EXPLAIN_GRACE = 1.0             # seconds a claim may go unmatched before its Pending is
                                # explained (condition + event): a claim created together with
                                # its volume binds within this time, and saves two writes


POD_CLAIMS_INDEX = "pv-binder:claims"


def _claim_keys_of_pod(pod: dict) -> list[str]:
    ns = P.meta(pod).get("namespace") or "default"
    return [f"{ns}/{c}" for c in claims_of_pod(pod)]


class Conflict(Exception):
    """A write lost an optimistic-concurrency race (or its object is gone)."""


class BinderAPI(Protocol):
    def claim(self, key: str) -> dict | None: ...
    def storage_class(self, name: str) -> dict | None: ...
    def classes(self) -> list[dict]: ...
    def pods_using(self, namespace: str, claim: str) -> list[dict]: ...
    def nodes(self) -> list[dict]: ...
    async def live_claim(self, key: str) -> dict | None: ...
    async def write(self, kind: str, part: str, obj: dict) -> dict: ...
    def event(self, obj: dict, type_: str, reason: str, message: str) -> None: ...
    def enqueue_claim(self, key: str) -> None: ...
    def recheck_claim(self, key: str, after: float) -> None: ...


def _rv(obj: dict | None) -> int:
    try:
        return int(P.meta(obj or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


class BinderLogic:
    """One claim sync / one volume sync, against any BinderAPI and a VolumeIndex."""

    def __init__(self, api: BinderAPI, index: VolumeIndex, *, explain_grace: float = 0.0,
                 clock=time.monotonic):
        self.api = api
        self.index = index
        self.explain_grace = explain_grace
        self.clock = clock
        self.first_miss: dict[str, float] = {}     # claim key -> when it first found nothing
        # claims that found no volume, by (class, volumeMode): key -> (request, access modes)
        self.waiting: dict[tuple, OrderedDict] = {}

    # -- claims ----------------------------------------------------------------------------------
    async def sync_claim(self, key: str) -> None:
        claim = self.api.claim(key)
        if claim is None:
            self._unwait(key)
            self.first_miss.pop(key, None)
            return
        inp = P.ClaimInputs(claim)
        name = P.spec(claim).get("volumeName")
        bucket = (P.effective_class(claim), P.volume_mode(claim))
        if name:
            inp.volume = self.index.get(name)
        elif not P.annotations(claim).get(P.ANN_BIND_COMPLETED):
            cls = bucket[0]
            sc = self.api.storage_class(cls) if cls else None
            inp.storage_class = sc
            delay = sc is not None and sc.get("volumeBindingMode") == P.WAIT_FOR_FIRST_CONSUMER
            node = None
            selected = P.annotations(claim).get(P.ANN_SELECTED_NODE)
            if delay and selected:
                n = next((x for x in self.api.nodes() if P.meta(x).get("name") == selected), None)
                node = P.Node(selected, dict(P.meta(n or {}).get("labels") or {}))
            inp.match = self.index.find(claim, node, delay)
            if inp.match is None:
                if P.class_unset(claim):
                    inp.default_class = P.newest_default_class(self.api.classes())
                inp.counts = self.index.counts(claim, node)
                if delay and not selected:
                    pods = self.api.pods_using(P.meta(claim).get("namespace") or "default",
                                               P.meta(claim).get("name"))
                    # the scheduler picks the node and writes selected-node (its PreBind)
                    inp.waiting_pods = tuple(unscheduled_users(P.meta(claim).get("name"), pods))
                else:
                    self._wait(bucket, key, claim)
        actions = P.plan_claim(inp)
        if any(isinstance(a, P.Bind) for a in actions):
            self._unwait(key)
            self.first_miss.pop(key, None)
        elif self.explain_grace and self._in_grace(key, claim, actions):
            actions = [a for a in actions if not isinstance(a, (P.ClaimPending, P.Event))]
            self.api.recheck_claim(key, self.explain_grace)
        await self._act_claim(claim, inp, actions)

    def _in_grace(self, key: str, claim: dict, actions: list) -> bool:
        """A claim not yet explained, unmatched for less than explain_grace seconds."""
        if not any(isinstance(a, P.ClaimPending) for a in actions):
            return False
        if any(c.get("type") == P.CONDITION_BINDABLE for c in P.status(claim).get(
                "conditions") or ()):
            return False
        now = self.clock()
        first = self.first_miss.setdefault(key, now)
        return now - first < self.explain_grace

    def _wait(self, bucket: tuple, key: str, claim: dict) -> None:
        w = self.waiting.setdefault(bucket, OrderedDict())
        w[key] = (P.claim_request(claim), P.access_modes(claim))

    def _unwait(self, key: str) -> None:
        for w in self.waiting.values():
            w.pop(key, None)

    def wake_for(self, pv: dict) -> list[str]:
        """Waiting claims (at most WAKE_PER_VOLUME) that this free volume could fit."""
        w = self.waiting.get((P.effective_class(pv), P.volume_mode(pv)))
        if not w:
            return []
        cap, modes = P.volume_capacity(pv), P.access_modes(pv)
        out = []
        for i, (key, (req, cmodes)) in enumerate(w.items()):
            if i >= WAKE_SCAN_LIMIT or len(out) >= WAKE_PER_VOLUME:
                break
            if req <= cap and cmodes <= modes:
                out.append(key)
        for k in out:
            w.pop(k, None)
        return out

    async def _act_claim(self, claim: dict, inp: P.ClaimInputs, actions: list) -> None:
        cur = claim
        for a in actions:
            if isinstance(a, P.Bind):
                pv = inp.match if inp.match is not None else inp.volume
                self.index.reserve(a.volume)
                try:
                    cur = await self.bind(pv, cur, a.by_controller)
                finally:
                    self.index.release(a.volume)
            elif isinstance(a, P.SetClaimClass):
                new = P.with_spec(cur, storageClassName=a.storage_class)
                cur = await self.api.write("claim", "spec", new)
                self.api.enqueue_claim(P.claim_key(cur))
            elif isinstance(a, P.SetProvisioner):
                cur = await self.api.write("claim", "spec", P.with_annotations(
                    cur, {P.ANN_STORAGE_PROVISIONER: a.provisioner,
                          P.ANN_BETA_STORAGE_PROVISIONER: a.provisioner}))
            elif isinstance(a, P.ClaimPending):
                new = P.claim_with_pending(cur, a.reason, a.message)
                if new is not None:
                    cur = await self.api.write("claim", "status", new)
            elif isinstance(a, P.ClaimLost):
                new = P.claim_with_lost(cur)
                if new is not None:
                    cur = await self.api.write("claim", "status", new)
            elif isinstance(a, P.Event):
                self.api.event(cur, a.type, a.reason, a.message)

    async def bind(self, pv: dict, claim: dict, by_controller: bool) -> dict:
        """Carry the bind out step by step (planner.next_bind_write); returns the claim."""
        while True:
            step = P.next_bind_write(pv, claim, by_controller)
            if step is None:
                return claim
            which, part, obj = step
            res = await self.api.write(which, part, obj)
            if which == "volume":
                pv = res
                self.index.observe(res)
            else:
                claim = res

    # -- volumes ---------------------------------------------------------------------------------
    async def sync_volume(self, name: str) -> None:
        for _ in range(VOLUME_REPLANS):
            pv = self.index.get(name)
            if pv is None:
                return
            ref = P.spec(pv).get("claimRef") or {}
            claim = None
            if ref.get("uid"):
                key = P.ref_key(ref)
                claim = self.api.claim(key)
                if claim is None or P.meta(claim).get("uid") != ref["uid"]:
                    # the cache may be behind: confirm absence live before releasing
                    claim = await self.api.live_claim(key)
                if claim is not None and P.meta(claim).get("uid") != ref["uid"]:
                    claim = None
            if not await self._act_volume(pv, claim, P.plan_volume(pv, claim)):
                return

    async def _act_volume(self, pv: dict, claim: dict | None, actions: list) -> bool:
        """Returns whether anything was written (then the volume is planned again)."""
        wrote = False
        for a in actions:
            if isinstance(a, P.SetVolumePhase):
                new = P.volume_with_phase(pv, a.phase, a.message, a.reason)
                if new is not None:
                    pv = await self.api.write("volume", "status", new)
                    self.index.observe(pv)
                    wrote = True
            elif isinstance(a, P.UnbindVolume):
                pv = await self.api.write("volume", "spec", P.volume_unbound(pv, a.full))
                self.index.observe(pv)
                wrote = True
            elif isinstance(a, P.EnqueueClaim):
                self.api.enqueue_claim(a.key)
            elif isinstance(a, P.Event):
                self.api.event(pv if a.on == "volume" else (claim or pv), a.type, a.reason,
                               a.message)
        return wrote


# -- the cluster side --------------------------------------------------------------------------------

class _ClusterAPI:
    """BinderAPI over informers and the REST client. Reads prefer the binder's own last write
    when the informer has not caught up with it yet (upstream keeps the same cache)."""

    def __init__(self, ctx, binder: "PersistentVolumeBinder"):
        self.client = ctx.client
        self.recorder = ctx.recorder_for(COMPONENT) if hasattr(ctx, "recorder_for") else ctx.recorder
        self.binder = binder
        self.written: dict[str, dict] = {}      # claim key -> our newest write

    def claim(self, key: str) -> dict | None:
        ns, _, name = key.partition("/")
        seen = self.binder.claims.get(name, ns)
        mine = self.written.get(key)
        if mine is not None and seen is not None and P.meta(mine).get("uid") == P.meta(
                seen).get("uid") and _rv(mine) > _rv(seen):
            return mine
        return seen

    def storage_class(self, name: str) -> dict | None:
        return self.binder.classes.get(name)

    def classes(self) -> list[dict]:
        return self.binder.classes.list()

    def pods_using(self, namespace: str, claim: str) -> list[dict]:
        # an index, not a scan: a StatefulSet of 1,000 claims would otherwise cost 1,000 pods
        # per claim sync
        return self.binder.pods.by_index(POD_CLAIMS_INDEX, f"{namespace}/{claim}")

    def nodes(self) -> list[dict]:
        return self.binder.nodes.list()

    async def live_claim(self, key: str) -> dict | None:
        ns, _, name = key.partition("/")
        try:
            return await self.client.get(PVC, name, ns)
        except ApiError as e:
            if e.is_not_found():
                return None
            raise

    async def write(self, kind: str, part: str, obj: dict) -> dict:
        r = PV if kind == "volume" else PVC
        try:
            res = await self.client.update(r, obj, subresource="status" if part == "status"
                                           else None)
        except ApiError as e:
            if e.is_conflict() or e.is_not_found():
                raise Conflict(str(e)) from None
            raise
        if kind == "claim":
            self.written[P.claim_key(res)] = res
        return res

    def event(self, obj: dict, type_: str, reason: str, message: str) -> None:
        # claims are namespaced, volumes are not
        kind = "PersistentVolumeClaim" if P.meta(obj).get("namespace") else "PersistentVolume"
        o = dict(obj)
        o.setdefault("kind", kind)
        o.setdefault("apiVersion", "v1")
        self.recorder.event(o, type_, reason, message)

    def enqueue_claim(self, key: str) -> None:
        self.binder.claim_queue.add(key)

    def recheck_claim(self, key: str, after: float) -> None:
        self.binder.claim_queue.add_after(key, after)


class PersistentVolumeBinder:
    def __init__(self, ctx, *, claim_workers: int = CLAIM_WORKERS,
                 volume_workers: int = VOLUME_WORKERS, resync_period: float = RESYNC_PERIOD,
                 explain_grace: float = EXPLAIN_GRACE):
        self.claim_workers = claim_workers
        self.volume_workers = volume_workers
        self.resync_period = resync_period
        self.claim_queue = WorkQueue("pv-binder-claims")
        self.volume_queue = WorkQueue("pv-binder-volumes")
        self.index = VolumeIndex()
        self.volumes = ctx.informers.informer(PV)
        self.claims = ctx.informers.informer(PVC)
        self.classes = ctx.informers.informer(SC)
        self.pods = ctx.informers.informer(POD)
        self.pods.add_indexer(POD_CLAIMS_INDEX, _claim_keys_of_pod)
        self.nodes = ctx.informers.informer(NODE)
        self.api = _ClusterAPI(ctx, self)
        self.logic = BinderLogic(self.api, self.index, explain_grace=explain_grace)
        self.volumes.add_handler(on_add=self._on_volume,
                                 on_update=lambda _o, n: self._on_volume(n),
                                 on_delete=self._on_volume_deleted)
        self.claims.add_handler(on_add=self._on_claim, on_update=lambda _o, n: self._on_claim(n),
                                on_delete=self._on_claim_deleted)
        self.classes.add_handler(on_add=self._on_class, on_update=lambda _o, n: self._on_class(n))
        self.pods.add_handler(on_add=self._on_pod, on_update=lambda _o, n: self._on_pod(n))
        self.nodes.add_handler(on_add=lambda _n: self._requeue_pending(),
                               on_delete=lambda _n: self._requeue_pending())

    # -- informer handlers -----------------------------------------------------------------------
    def _on_volume(self, pv: dict) -> None:
        name = P.meta(pv).get("name")
        known = self.index.get(name)
        if known is None or _rv(pv) >= _rv(known):
            self.index.observe(pv)
        self.volume_queue.add(name)
        ref = P.spec(pv).get("claimRef")
        if ref and ref.get("name"):
            self.claim_queue.add(P.ref_key(ref))
        elif P.status(pv).get("phase") == "Available" and not P.is_deleting(pv):
            for key in self.logic.wake_for(pv):
                self.claim_queue.add(key)

    def _on_volume_deleted(self, pv: dict) -> None:
        self.index.forget(P.meta(pv).get("name"))
        ref = P.spec(pv).get("claimRef")
        if ref and ref.get("name"):
            self.claim_queue.add(P.ref_key(ref))

    def _on_claim(self, claim: dict) -> None:
        key = P.claim_key(claim)
        mine = self.api.written.get(key)
        if mine is not None and _rv(claim) >= _rv(mine):
            self.api.written.pop(key, None)     # the informer caught up with our write
        self.claim_queue.add(key)

    def _on_claim_deleted(self, claim: dict) -> None:
        key = P.claim_key(claim)
        self.api.written.pop(key, None)
        self.claim_queue.add(key)
        md = P.meta(claim)
        for pv in self.index.referring(md.get("namespace") or "default", md.get("name")):
            self.volume_queue.add(P.meta(pv).get("name"))

    def _on_class(self, _sc: dict) -> None:
        self._requeue_pending()

    def _on_pod(self, pod: dict) -> None:
        ns = P.meta(pod).get("namespace") or "default"
        for name in claims_of_pod(pod):
            claim = self.claims.get(name, ns)
            if claim is not None and P.status(claim).get("phase") != "Bound":
                self.claim_queue.add(f"{ns}/{name}")

    def _requeue_pending(self) -> None:
        for c in self.claims.list():
            if P.status(c).get("phase") != "Bound":
                self.claim_queue.add(P.claim_key(c))

    # -- running ---------------------------------------------------------------------------------
    async def _sync_claim(self, key: str) -> None:
        try:
            await self.logic.sync_claim(key)
        except Conflict:
            self.claim_queue.add_rate_limited(key)

    async def _sync_volume(self, name: str) -> None:
        try:
            await self.logic.sync_volume(name)
        except Conflict:
            self.volume_queue.add_rate_limited(name)

    async def _resync(self) -> None:
        while True:
            await asyncio.sleep(self.resync_period)
            self._requeue_pending()
            for pv in self.index.volumes():
                if P.status(pv).get("phase") != "Bound" or not P.spec(pv).get("claimRef"):
                    self.volume_queue.add(P.meta(pv).get("name"))

    async def run(self) -> None:
        infs = (self.volumes, self.claims, self.classes, self.pods, self.nodes)
        for inf in infs:
            await inf.start()
        await asyncio.gather(*(inf.wait_synced() for inf in infs))
        tasks = [asyncio.create_task(run_workers(self.claim_queue, self._sync_claim,
                                                 self.claim_workers)),
                 asyncio.create_task(run_workers(self.volume_queue, self._sync_volume,
                                                 self.volume_workers)),
                 asyncio.create_task(self._resync())]
        try:
            await asyncio.gather(*tasks)
        finally:
            self.claim_queue.shutdown()
            self.volume_queue.shutdown()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
