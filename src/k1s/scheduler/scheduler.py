"""The scheduler's acting module: informers in, decisions through the pure modules, writes out.

Flow (upstream kube-scheduler's, simplified to one profile):

1. Informers for pods, nodes, PVs, PVCs and StorageClasses keep `Cache` (per-node accounting,
   incremental) and an index of Available volumes by class. Pods for this scheduler without a
   node enter a de-duplicating queue.
2. One scheduling loop takes a pod at a time: PreFilter (volumes.classify, ReadWriteOncePod),
   Filter on every node (filters.run_filters, then volumes.filter_node), Score (score.pick).
   No node: PodScheduled=False/Unschedulable with upstream's message and a FailedScheduling
   event; the pod waits among the unschedulable until the cluster changes.
3. A node found: the pod is *assumed* on it at once (its requests count there, its chosen
   volumes are promised), and a bind task runs concurrently with the next decisions: PreBind
   writes each statically matched PV's claimRef and each provisioned claim's
   `volume.kubernetes.io/selected-node`, waits (woken by informer events, bounded by
   `bind_timeout`) until every claim is fully bound to a volume admitting the node, then POSTs
   pods/<name>/binding and records the Scheduled event. A failure forgets the assumption and
   retries the pod with back-off.

Retrying unschedulable pods: any node, pod, PV, PVC or class event moves them back to the
queue (coalesced over FLUSH_DELAY, each pod after its own back-off: 1 s doubling to 10 s, as
upstream); a pod that failed while such an event arrived is retried after its back-off at once
(upstream's move-request cycle); pods unschedulable for UNSCHEDULABLE_MAX_WAIT are retried
anyway. No periodic scan of all pods.
"""

from __future__ import annotations

import asyncio
import logging
import time

from k1s.api import registry
from k1s.client.errors import ApiError
from k1s.client.workqueue import ShutDown, WorkQueue
from k1s.controllers.pv_binder import planner as P

from . import messages as M
from . import volumes as V
from .cache import Cache
from .filters import Reject, run_filters
from .model import DEFAULT_SCHEDULER, PodInfo, is_terminal, meta, pod_key, spec, status, \
    wants_scheduling
from .score import pick

log = logging.getLogger(__name__)

POD = registry.core("pods")
NODE = registry.core("nodes")
PV = registry.core("persistentvolumes")
PVC = registry.core("persistentvolumeclaims")
SC = registry.lookup("storage.k8s.io", "v1", "storageclasses")

BIND_TIMEOUT = 600.0            # upstream's VolumeBinding bindTimeoutSeconds
MAX_IN_FLIGHT = 1024            # pods decided and being bound at once
INITIAL_BACKOFF = 1.0           # upstream podInitialBackoffSeconds
MAX_BACKOFF = 10.0              # upstream podMaxBackoffSeconds
FLUSH_DELAY = 0.05              # cluster events within this window wake unschedulable pods once
UNSCHEDULABLE_MAX_WAIT = 300.0  # upstream podMaxInUnschedulablePodsDuration
PREBIND_RETRIES = 3             # conflicts tolerated while writing a PV's claimRef


class BindError(Exception):
    """PreBind or bind failed; the pod is scheduled again."""


def _rv(obj: dict | None) -> int:
    try:
        return int(meta(obj or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


def _newest(a: dict | None, b: dict | None) -> dict | None:
    """The informer's copy or our own last write, whichever is newer (same object only)."""
    if a is None or b is None:
        return a            # not in the informer (yet, or any more): as the informer says
    if meta(a).get("uid") != meta(b).get("uid"):
        return a
    return b if _rv(b) > _rv(a) else a


class Scheduler:
    def __init__(self, ctx, *, scheduler_name: str = DEFAULT_SCHEDULER,
                 bind_timeout: float = BIND_TIMEOUT, max_in_flight: int = MAX_IN_FLIGHT,
                 initial_backoff: float = INITIAL_BACKOFF, max_backoff: float = MAX_BACKOFF):
        self.name = scheduler_name
        self.client = ctx.client
        self.recorder = ctx.recorder_for(M.COMPONENT)
        self.bind_timeout = bind_timeout
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.cache = Cache()
        self.queue = WorkQueue("scheduler")
        self.slots = asyncio.Semaphore(max_in_flight)
        self.unschedulable: dict[str, float] = {}   # pod key -> when it last failed
        self.attempts: dict[str, int] = {}
        self.in_flight: set[str] = set()
        self.tasks: set[asyncio.Task] = set()
        self.waiters: dict[str, set[asyncio.Event]] = {}   # claim key -> bind tasks waiting
        self.written_pvs: dict[str, dict] = {}
        self.written_claims: dict[str, dict] = {}
        self.fetched_claims: dict[str, dict] = {}   # claims read live (informer behind)
        self.free: dict[str, dict[str, dict]] = {}  # class -> Available unclaimed PVs
        self.free_class: dict[str, str] = {}        # pv name -> its class in `free`
        self.event_seq = 0
        self._flush_handle: asyncio.TimerHandle | None = None

        inf = ctx.informers
        self.pods = inf.informer(POD)
        self.nodes = inf.informer(NODE)
        self.pvs = inf.informer(PV)
        self.pvcs = inf.informer(PVC)
        self.classes = inf.informer(SC)
        self.pods.add_handler(on_add=lambda p: self._on_pod(None, p), on_update=self._on_pod,
                              on_delete=self._on_pod_deleted)
        self.nodes.add_handler(on_add=self._on_node, on_update=self._on_node_update,
                               on_delete=self._on_node_deleted)
        self.pvs.add_handler(on_add=self._on_pv, on_update=lambda _o, n: self._on_pv(n),
                             on_delete=self._on_pv_deleted)
        self.pvcs.add_handler(on_add=self._on_claim, on_update=lambda _o, n: self._on_claim(n),
                              on_delete=self._on_claim)
        self.classes.add_handler(on_add=lambda _c: self._cluster_changed(),
                                 on_update=lambda _o, _n: self._cluster_changed())

    # -- informer handlers -------------------------------------------------------------------------
    def _on_pod(self, old: dict | None, pod: dict) -> None:
        key = pod_key(pod)
        node = spec(pod).get("nodeName")
        if node:
            self.unschedulable.pop(key, None)
            if is_terminal(pod):
                if self.cache.node_of(key) is not None:
                    self.cache.pod_gone(key)
                    self._cluster_changed()
            else:
                self.cache.pod_bound(PodInfo.of(pod), node)
            return
        if wants_scheduling(pod, self.name):
            if key in self.in_flight or self.cache.is_assumed(key):
                return
            # a status-only change (our own condition write, say) cannot help the pod, and
            # must not cut its back-off short; a changed spec or labels may
            if old is not None and spec(old) == spec(pod) and meta(old).get(
                    "labels") == meta(pod).get("labels"):
                return
            self.unschedulable.pop(key, None)
            self.queue.add(key)
        else:
            self.unschedulable.pop(key, None)

    def _on_pod_deleted(self, pod: dict) -> None:
        key = pod_key(pod)
        self.unschedulable.pop(key, None)
        self.attempts.pop(key, None)
        if self.cache.node_of(key) is not None:
            # an assumed pod too: a bind still in flight then fails with NotFound
            self.cache.pod_gone(key)
            self._cluster_changed()

    def _on_node(self, node: dict) -> None:
        self.cache.set_node(node)
        self._cluster_changed()

    def _on_node_update(self, old: dict, node: dict) -> None:
        ni = self.cache.nodes.get(meta(node).get("name"))
        before = (ni.labels, ni.allocatable, ni.taints, ni.unschedulable) if ni else None
        self.cache.set_node(node)
        ni = self.cache.nodes[meta(node).get("name")]
        # heartbeats change nothing the filters read: only real changes wake waiting pods
        if before != (ni.labels, ni.allocatable, ni.taints, ni.unschedulable):
            self._cluster_changed()

    def _on_node_deleted(self, node: dict) -> None:
        self.cache.remove_node(meta(node).get("name"))

    def _on_pv(self, pv: dict) -> None:
        name = meta(pv).get("name")
        mine = self.written_pvs.get(name)
        if mine is not None and _rv(pv) >= _rv(mine):
            self.written_pvs.pop(name, None)
        self._unfree(name)
        if status(pv).get("phase") == "Available" and not spec(pv).get("claimRef") \
                and not meta(pv).get("deletionTimestamp"):
            cls = P.effective_class(pv)
            self.free.setdefault(cls, {})[name] = pv
            self.free_class[name] = cls
        ref = spec(pv).get("claimRef") or {}
        if ref.get("name"):
            self._wake(P.ref_key(ref))
        self._cluster_changed()

    def _on_pv_deleted(self, pv: dict) -> None:
        self._unfree(meta(pv).get("name"))
        self.written_pvs.pop(meta(pv).get("name"), None)

    def _unfree(self, name: str) -> None:
        cls = self.free_class.pop(name, None)
        if cls is not None:
            bucket = self.free.get(cls)
            if bucket is not None:
                bucket.pop(name, None)
                if not bucket:
                    del self.free[cls]

    def _on_claim(self, claim: dict) -> None:
        key = P.claim_key(claim)
        mine = self.written_claims.get(key)
        if mine is not None and _rv(claim) >= _rv(mine):
            self.written_claims.pop(key, None)
        self.fetched_claims.pop(key, None)
        self._wake(key)
        self._cluster_changed()

    def _wake(self, claim_key: str) -> None:
        for ev in self.waiters.get(claim_key, ()):
            ev.set()

    # -- unschedulable pods ------------------------------------------------------------------------
    def _backoff(self, key: str) -> float:
        n = self.attempts.get(key, 1)
        return min(self.initial_backoff * (2 ** min(n - 1, 16)), self.max_backoff)

    def _cluster_changed(self) -> None:
        self.event_seq += 1
        if self.unschedulable and self._flush_handle is None:
            loop = asyncio.get_running_loop()
            self._flush_handle = loop.call_later(FLUSH_DELAY, self._flush)

    def _flush(self, older_than: float | None = None) -> None:
        if older_than is None:
            self._flush_handle = None
        now = time.monotonic()
        for key, failed in list(self.unschedulable.items()):
            if older_than is not None and now - failed < older_than:
                continue
            del self.unschedulable[key]
            self.queue.add_after(key, max(0.0, failed + self._backoff(key) - now))

    async def _leftovers(self) -> None:
        while True:
            await asyncio.sleep(UNSCHEDULABLE_MAX_WAIT / 10)
            self._flush(UNSCHEDULABLE_MAX_WAIT)

    def _retry_later(self, key: str, seq: int) -> None:
        """After a failed attempt: wait for a cluster change, or retry after the back-off if
        one happened while we were deciding."""
        self.attempts[key] = self.attempts.get(key, 0) + 1
        if seq != self.event_seq:
            self.queue.add_after(key, self._backoff(key))
        else:
            self.unschedulable[key] = time.monotonic()

    # -- reading the world -------------------------------------------------------------------------
    def _claim(self, ns: str, name: str) -> dict | None:
        key = f"{ns}/{name}"
        got = _newest(self.pvcs.get(name, ns), self.written_claims.get(key))
        return got if got is not None else self.fetched_claims.get(key)

    def _class(self, name: str) -> dict | None:
        return self.classes.get(name)

    def _pv(self, name: str) -> dict | None:
        return _newest(self.pvs.get(name), self.written_pvs.get(name))

    def _selected(self, claim: dict) -> str | None:
        return self.cache.selected.get(P.claim_key(claim)) or P.annotations(claim).get(
            V.ANN_SELECTED_NODE)

    async def _fetch_claim(self, ns: str, name: str) -> bool:
        """The informer may not have seen a claim created just before its pod."""
        try:
            c = await self.client.get(PVC, name, ns)
        except ApiError as e:
            if e.is_not_found():
                return False
            raise
        self.fetched_claims[f"{ns}/{name}"] = c
        return True

    # -- one scheduling cycle ----------------------------------------------------------------------
    async def _loop(self) -> None:
        while True:
            try:
                key = await self.queue.get()
            except ShutDown:
                return
            try:
                await self.slots.acquire()
                started = False
                try:
                    started = await self._schedule_one(key)
                finally:
                    if not started:
                        self.slots.release()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scheduler: scheduling %s failed", key)
                self.attempts[key] = self.attempts.get(key, 0) + 1
                self.queue.add_after(key, self._backoff(key))
            finally:
                self.queue.done(key)

    async def _schedule_one(self, key: str) -> bool:
        """Decide for one pod; True when a bind task was started."""
        pod = self.pods.get_by_key(key)
        if pod is None or not wants_scheduling(pod, self.name) or key in self.in_flight \
                or self.cache.is_assumed(key):
            return False
        seq = self.event_seq
        pi = PodInfo.of(pod)
        nodes = self.cache.schedulable_nodes()
        if not nodes:
            self._fail(pod, seq, M.fit_error(0))
            return False
        pv_state = V.classify(pi, self._claim, self._class)
        if isinstance(pv_state, str) and pv_state.endswith(" not found") \
                and pv_state.startswith("persistentvolumeclaim"):
            missing = pv_state.split('"')[1]
            if await self._fetch_claim(pi.namespace, missing):
                pv_state = V.classify(pi, self._claim, self._class)
        if isinstance(pv_state, str):
            self._fail(pod, seq, M.fit_error(len(nodes), prefilter=pv_state))
            return False
        rwop = not pv_state.empty and V.rwop_conflict(pi, pv_state, self.cache.users)
        cands = {}
        for claim in pv_state.delayed:
            if not self._selected(claim):
                cands[P.claim_key(claim)] = V.candidates(
                    claim, self.free.get(P.effective_class(claim), {}).values())
        rejects: dict[str, Reject] = {}
        feasible, decisions = [], {}
        for ni in nodes:
            r = run_filters(pi, ni)
            if r is None and rwop:
                r = Reject((V.ERR_RWOP_CONFLICT,), unresolvable=False)
            dec = None
            if r is None and not pv_state.empty:
                r, dec = V.filter_node(pv_state, ni.name, ni.labels, get_pv=self._pv,
                                       cands=cands, get_class=self._class,
                                       taken=self.cache.volume_taken, selected=self._selected)
            if r is None:
                feasible.append(ni)
                decisions[ni.name] = dec
            else:
                rejects[ni.name] = r
        if not feasible:
            self._fail(pod, seq, M.fit_error(len(nodes), rejects=rejects))
            return False
        node = pick(pi, feasible)
        dec = decisions[node]
        self.cache.assume(pi, node)
        if dec is not None:
            for claim, pv in dec.static:
                self.cache.take_volume(meta(pv).get("name"), P.claim_key(claim))
            for claim in dec.provision:
                self.cache.selected[P.claim_key(claim)] = node
        self.in_flight.add(key)
        t = asyncio.create_task(self._bind(pod, pi, node, dec))
        self.tasks.add(t)
        t.add_done_callback(self.tasks.discard)
        return True

    # -- binding -----------------------------------------------------------------------------------
    async def _bind(self, pod: dict, pi: PodInfo, node: str, dec: V.Decision | None) -> None:
        key = pi.key
        try:
            if dec is not None:
                try:
                    await self._prebind(node, dec)
                    await self._wait_bound(node, dec)
                except BindError as e:
                    raise BindError(f'running PreBind plugin "VolumeBinding": {e}') from None
            body = {"apiVersion": "v1", "kind": "Binding",
                    "metadata": {"name": pi.name, "namespace": pi.namespace},
                    "target": {"apiVersion": "v1", "kind": "Node", "name": node}}
            try:
                await self.client.create(POD, body, pi.namespace, subresource="binding",
                                         name=pi.name)
            except ApiError as e:
                if e.is_not_found():
                    self.cache.forget(key)
                    return
                raise BindError('binding rejected: running Bind plugin "DefaultBinder": '
                                f"{e}") from None
            self.attempts.pop(key, None)
            self.recorder.event(pod, "Normal", M.EVENT_SCHEDULED,
                                M.scheduled(pi.namespace, pi.name, node))
        except asyncio.CancelledError:
            self.cache.forget(key)
            raise
        except Exception as e:
            self.cache.forget(key)
            msg = str(e) if isinstance(e, BindError) else f"binding failed: {e}"
            if not isinstance(e, BindError):
                log.warning("scheduler: binding %s to %s failed: %s", key, node, e)
            cur = self.pods.get_by_key(key)
            if cur is not None and wants_scheduling(cur, self.name):
                self.attempts[key] = self.attempts.get(key, 0) + 1
                self.queue.add_after(key, self._backoff(key))
                self._record(cur, M.REASON_SCHEDULER_ERROR, msg)
        finally:
            if dec is not None:
                for claim, pv in dec.static:
                    self.cache.release_volume(meta(pv).get("name"))
                for claim in dec.provision:
                    self.cache.selected.pop(P.claim_key(claim), None)
            self.in_flight.discard(key)
            self.slots.release()

    async def _prebind(self, node: str, dec: V.Decision) -> None:
        for claim, pv in dec.static:
            name = meta(pv).get("name")
            cur = self._pv(name) or pv
            for _ in range(PREBIND_RETRIES):
                if P.bound_to(cur, claim):
                    break
                if spec(cur).get("claimRef"):
                    raise BindError(f"binding volumes: volume {name!r} was taken meanwhile")
                try:
                    self.written_pvs[name] = await self.client.update(
                        PV, V.volume_prebound(cur, claim))
                    break
                except ApiError as e:
                    if not e.is_conflict():
                        raise BindError(f"binding volumes: {e}") from None
                    cur = await self.client.get(PV, name)
            else:
                raise BindError(f"binding volumes: volume {name!r} kept changing")
        for claim in dec.provision:
            md = meta(claim)
            cur = self._claim(md.get("namespace") or "default", md.get("name")) or claim
            if P.annotations(cur).get(V.ANN_SELECTED_NODE) == node:
                continue
            # a merge patch of one annotation: the binder writes the claim's status meanwhile,
            # and a whole-object PUT would lose that race for nothing
            try:
                res = await self.client.patch(
                    PVC, md.get("name"),
                    {"metadata": {"annotations": {V.ANN_SELECTED_NODE: node}}},
                    md.get("namespace") or "default")
            except ApiError as e:
                raise BindError(f"binding volumes: {e}") from None
            self.written_claims[P.claim_key(res)] = res

    async def _wait_bound(self, node: str, dec: V.Decision) -> None:
        ni = self.cache.nodes.get(node)
        labels = ni.labels if ni is not None else {}
        todo = [(P.claim_key(c), pv, False) for c, pv in dec.static] + [
            (P.claim_key(c), None, True) for c in dec.provision]
        if not todo:
            return
        ev = asyncio.Event()
        for k, _, _ in todo:
            self.waiters.setdefault(k, set()).add(ev)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.bind_timeout
        try:
            while True:
                ev.clear()
                waiting = False
                for k, chosen, provisioned in todo:
                    ns, _, name = k.partition("/")
                    claim = self._claim(ns, name)
                    vname = spec(claim or {}).get("volumeName")
                    pv = self._pv(vname) if vname else (
                        self._pv(meta(chosen).get("name")) if chosen is not None else None)
                    st = V.wait_state(claim, pv, node, labels, provisioned)
                    if st == "wait":
                        waiting = True
                    elif st != "bound":
                        raise BindError(f"binding volumes: {st}")
                if not waiting:
                    return
                left = deadline - loop.time()
                if left <= 0:
                    raise BindError("binding volumes: context deadline exceeded")
                try:
                    await asyncio.wait_for(ev.wait(), min(left, 5.0))
                except asyncio.TimeoutError:
                    pass
        finally:
            for k, _, _ in todo:
                s = self.waiters.get(k)
                if s is not None:
                    s.discard(ev)
                    if not s:
                        del self.waiters[k]

    # -- failures ----------------------------------------------------------------------------------
    def _fail(self, pod: dict, seq: int, message: str) -> None:
        self._retry_later(pod_key(pod), seq)
        self._record(pod, M.REASON_UNSCHEDULABLE, message)

    def _record(self, pod: dict, reason: str, message: str) -> None:
        self.recorder.event(pod, "Warning", M.EVENT_FAILED, message)
        t = asyncio.create_task(self._write_condition(pod_key(pod), reason, message))
        self.tasks.add(t)
        t.add_done_callback(self.tasks.discard)

    async def _write_condition(self, key: str, reason: str, message: str) -> None:
        ns, _, name = key.partition("/")
        pod = self.pods.get_by_key(key)
        for attempt in range(3):
            if pod is None or spec(pod).get("nodeName"):
                return
            new = with_scheduled_false(pod, reason, message)
            if new is None:
                return
            try:
                await self.client.update_status(POD, new)
                return
            except ApiError as e:
                if e.is_not_found():
                    return
                if not e.is_conflict() or attempt == 2:
                    log.warning("scheduler: PodScheduled of %s not written: %s", key, e)
                    return
                pod = await self.client.get(POD, name, ns)
            except asyncio.CancelledError:
                raise
            except Exception as e:          # the next attempt writes it again
                log.warning("scheduler: PodScheduled of %s not written: %s", key, e)
                return

    # -- running -----------------------------------------------------------------------------------
    async def run(self) -> None:
        infs = (self.nodes, self.pvs, self.pvcs, self.classes, self.pods)
        for inf in infs:
            await inf.start()
        await asyncio.gather(*(inf.wait_synced() for inf in infs))
        loops = [asyncio.create_task(self._loop()), asyncio.create_task(self._leftovers())]
        try:
            await asyncio.gather(*loops)
        finally:
            self.queue.shutdown()
            if self._flush_handle is not None:
                self._flush_handle.cancel()
            pending = loops + list(self.tasks)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)


def with_scheduled_false(pod: dict, reason: str, message: str) -> dict | None:
    """The pod with PodScheduled=False (reason, message); None when it already says so."""
    conds = list(status(pod).get("conditions") or ())
    old = next((c for c in conds if c.get("type") == "PodScheduled"), None)
    if old is not None and old.get("status") == "False" and old.get("reason") == reason \
            and old.get("message") == message:
        return None
    from k1s.client.events import rfc3339
    cond = {"type": "PodScheduled", "status": "False", "reason": reason, "message": message,
            "lastProbeTime": None,
            "lastTransitionTime": old.get("lastTransitionTime") if old is not None
            and old.get("status") == "False" else rfc3339()}
    conds = [c for c in conds if c.get("type") != "PodScheduled"] + [cond]
    new = dict(pod)
    new["status"] = dict(status(pod), conditions=conds)
    return new
