"""The StatefulSet controller's acting module and wiring: the only module here that writes.

One sync of `namespace/name` (upstream StatefulSetController.sync + UpdateStatefulSet):

1. read the set from the informer (gone: nothing to do; a bad selector: not retried);
2. adopt orphan ControllerRevisions and pods that match the selector (and, for pods, the
   `<set>-<n>` name), release owned pods that stopped matching — adoption only after an
   uncached read confirms the set's UID and that it is not being deleted;
3. choose the current and update revisions (create, reuse or roll back a revision);
4. ask planner.plan, then run its batches: the works of one batch concurrently (bounded by
   WRITE_CONCURRENCY for the whole controller), the first failing batch ending the sync;
5. write status if a tracked field changed (PUT /status with the resourceVersion read,
   re-read on conflict), then trim revision history.

Errors requeue the key with back-off; everything is re-derived from the API on the next sync,
so a process killed at any line converges (claims are created before their pod, so a pod
never exists without its claims; the API's unique names mean one object per identity).

Reads come from shared informers, indexed so a sync never scans all pods: pods by controller
UID and by parent name (`<ns>/<set>` parsed from `<set>-<n>`). Right after our own writes the
informer may lag; `_Recent` remembers the objects we wrote until the informer has caught up
with their resourceVersion, so a sync right after a burst of creations does not create again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from k1s.api import registry
from k1s.api.selectors import SelectorError, selector_from_label_selector
from k1s.client.errors import ApiError
from k1s.client.informer import split_key, start_and_sync
from k1s.client.workqueue import WorkQueue, run_workers

from . import planner as P
from . import revisions as RV
from . import status as ST
from .identity import controller_of, meta, parent_and_ordinal, set_ref, spec
from .podstate import is_ready

log = logging.getLogger(__name__)

COMPONENT = "statefulset-controller"
STS = registry.get("statefulsets.apps")
CR = registry.get("controllerrevisions.apps")
POD = registry.core("pods")
PVC = registry.core("persistentvolumeclaims")

WORKERS = 5                     # upstream --concurrent-statefulset-syncs
WRITE_CONCURRENCY = 128         # API writes in flight for the whole controller
STATUS_ATTEMPTS = 5             # upstream retries a conflicting status write this often
DELETE_MEMORY = 10.0            # seconds a pod we deleted at once is hidden from a lagging view
PACE_FACTOR = 4                 # a child's event queues its set after PACE_FACTOR times the
PACE_MAX = 0.2                  # set's last sync time (at most PACE_MAX; below PACE_MIN: at
PACE_MIN = 0.002                # once), so a busy 1,000-pod set spends at most ~1/5 of the
                                # loop re-planning instead of re-planning on every pod event

POD_BY_OWNER = "statefulset/controller-uid"
POD_BY_PARENT = "statefulset/parent"
CR_BY_OWNER = "statefulset/controller-uid"


def _rv(obj: dict | None) -> int:
    try:
        return int(meta(obj).get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


def _controller_uid(obj: dict) -> list[str]:
    ref = controller_of(obj)
    return [ref["uid"]] if ref and ref.get("kind") == "StatefulSet" and ref.get("uid") else []


def _parent_key(pod: dict) -> list[str]:
    m = meta(pod)
    parent, ordinal = parent_and_ordinal(m.get("name", ""))
    return [f"{m.get('namespace', '')}/{parent}"] if ordinal >= 0 else []


def _err_text(e: BaseException) -> str:
    return e.message if isinstance(e, ApiError) else str(e)


def _set_ref_obj(sts: dict) -> dict:
    """The set as an event's involvedObject (informer list items carry no kind)."""
    return {"kind": "StatefulSet", "apiVersion": "apps/v1", "metadata": meta(sts)}


ALREADY_EXISTS_RETRY = 1.0     # seconds before a set whose pod name was taken looks again


class _Recent:
    """Objects this controller wrote, per set, until the informer has seen their version.

    `view(informer_obj, name)` returns what the sync should believe: our newer copy while the
    informer lags (`None` for a pod we deleted outright, for DELETE_MEMORY seconds at most)."""

    def __init__(self, informer):
        self.informer = informer
        self.by_set: dict[str, dict[str, tuple[int, dict | None, str, float]]] = {}

    def _informer_rv(self) -> int:
        try:
            return int(self.informer.last_sync_resource_version or 0)
        except ValueError:
            return 0

    def wrote(self, key: str, name: str, obj: dict) -> None:
        self.by_set.setdefault(key, {})[name] = (_rv(obj), obj, meta(obj).get("uid", ""),
                                                 time.monotonic())

    def gone(self, key: str, name: str, uid: str) -> None:
        self.by_set.setdefault(key, {})[name] = (0, None, uid, time.monotonic())

    def forget(self, key: str) -> None:
        self.by_set.pop(key, None)

    def overlay(self, key: str, observed: dict[str, dict]) -> dict[str, dict]:
        entries = self.by_set.get(key)
        if not entries:
            return observed
        now_rv, now = self._informer_rv(), time.monotonic()
        out = dict(observed)
        for name, (rv, obj, uid, at) in list(entries.items()):
            seen = observed.get(name)
            if obj is None:
                # deleted outright: hidden while the informer still shows that incarnation
                if seen is None or meta(seen).get("uid") != uid or now - at > DELETE_MEMORY:
                    del entries[name]
                else:
                    del out[name]
                continue
            if now_rv >= rv or (seen is not None and _rv(seen) >= rv):
                del entries[name]
                continue
            out[name] = obj
        if not entries:
            self.by_set.pop(key, None)
        return out


class StatefulSetController:
    def __init__(self, ctx, *, workers: int = WORKERS,
                 write_concurrency: int = WRITE_CONCURRENCY):
        self.client = ctx.client
        self.recorder = ctx.recorder_for(COMPONENT)
        self.workers = workers
        self.queue = WorkQueue("statefulset")
        self._writes = asyncio.Semaphore(write_concurrency)
        self.sets = ctx.informers.informer(STS)
        self.pods = ctx.informers.informer(POD)
        self.claims = ctx.informers.informer(PVC)
        self.revisions = ctx.informers.informer(CR)
        self.pods.add_indexer(POD_BY_OWNER, _controller_uid)
        self.pods.add_indexer(POD_BY_PARENT, _parent_key)
        self.revisions.add_indexer(CR_BY_OWNER, _controller_uid)
        self.recent_pods = _Recent(self.pods)
        self.recent_revisions = _Recent(self.revisions)
        self._written_status: dict[str, tuple[int, dict]] = {}
        self._selectors: dict[str, Any] = {}
        self._cost: dict[str, float] = {}      # key -> seconds its last sync took
        self.sets.add_handler(on_add=self._set_changed,
                              on_update=lambda _o, n: self._set_changed(n),
                              on_delete=self._set_deleted)
        self.pods.add_handler(on_add=self._pod_added, on_update=self._pod_updated,
                              on_delete=self._pod_deleted)
        self.claims.add_handler(on_update=lambda _o, n: self._claim_changed(n),
                                on_delete=self._claim_changed)
        self.revisions.add_handler(on_add=self._revision_changed,
                                   on_update=lambda _o, n: self._revision_changed(n),
                                   on_delete=self._revision_changed)

    # -- event handlers: which set keys to queue -------------------------------------------------

    @staticmethod
    def _key(obj: dict) -> str:
        m = meta(obj)
        return f"{m.get('namespace', '')}/{m.get('name', '')}"

    def _set_changed(self, sts: dict) -> None:
        self.queue.add(self._key(sts))

    def _set_deleted(self, sts: dict) -> None:
        key = self._key(sts)
        self.recent_pods.forget(key)
        self.recent_revisions.forget(key)
        self._written_status.pop(key, None)
        self._selectors.pop(meta(sts).get("uid", ""), None)
        self._cost.pop(key, None)
        self.queue.add(key)

    def _selector(self, sts: dict):
        uid = meta(sts).get("uid", "")
        sel = self._selectors.get(uid)
        if sel is None:
            sel = selector_from_label_selector(spec(sts).get("selector"))
            self._selectors[uid] = sel
        return sel

    def _owner_key(self, obj: dict) -> str | None:
        """The key of the set controlling obj (by UID, as upstream resolveControllerRef)."""
        ref = controller_of(obj)
        if ref is None or ref.get("kind") != "StatefulSet":
            return None
        ns = meta(obj).get("namespace", "")
        sts = self.sets.get(ref.get("name", ""), ns)
        if sts is None or meta(sts).get("uid") != ref.get("uid"):
            return None
        return f"{ns}/{ref.get('name')}"

    def _matching_sets(self, obj: dict) -> list[str]:
        """Sets in obj's namespace whose selector matches it (for orphans)."""
        ns = meta(obj).get("namespace", "")
        labels = meta(obj).get("labels") or {}
        out = []
        for sts in self.sets.list(ns):
            try:
                if self._selector(sts).matches(labels):
                    out.append(self._key(sts))
            except SelectorError:
                continue
        return out

    def _paced(self, key: str) -> None:
        """Queue a set for a change in one of its children, coalescing bursts of events."""
        delay = min(self._cost.get(key, 0.0) * PACE_FACTOR, PACE_MAX)
        if delay < PACE_MIN:
            self.queue.add(key)
        else:
            self.queue.add_after(key, delay)

    def _enqueue_for(self, obj: dict) -> None:
        if controller_of(obj) is not None:
            key = self._owner_key(obj)
            if key:
                self._paced(key)
            return
        for key in self._matching_sets(obj):
            self._paced(key)

    def _pod_added(self, pod: dict) -> None:
        self._enqueue_for(pod)

    def _pod_updated(self, old: dict, new: dict) -> None:
        if _rv(old) == _rv(new) and _rv(new):
            return
        self._enqueue_for(new)
        old_ref, new_ref = controller_of(old), controller_of(new)
        if (old_ref or {}).get("uid") != (new_ref or {}).get("uid") or \
                meta(old).get("labels") != meta(new).get("labels"):
            self._enqueue_for(old)
        # a pod that just turned ready becomes available minReadySeconds later
        if is_ready(new) and not is_ready(old):
            key = self._owner_key(new)
            sts = self.sets.get_by_key(key) if key else None
            mrs = int(spec(sts).get("minReadySeconds") or 0) if sts else 0
            if key and mrs > 0:
                self.queue.add_after(key, mrs + 1)

    def _pod_deleted(self, pod: dict) -> None:
        key = self._owner_key(pod)
        if key:
            self._paced(key)
            return
        # a pod of a deleted set of the same name (delete + create again): its name is free
        # now, and the new set may be waiting to create its pod under that name
        ref = controller_of(pod)
        if ref is not None and ref.get("kind") == "StatefulSet":
            key = f"{meta(pod).get('namespace', '')}/{ref.get('name', '')}"
            if self.sets.get_by_key(key) is not None:
                self._paced(key)

    def _claim_changed(self, claim: dict) -> None:
        ns = meta(claim).get("namespace", "")
        for ref in meta(claim).get("ownerReferences") or []:
            if ref.get("kind") == "StatefulSet":
                self._paced(f"{ns}/{ref.get('name')}")
            elif ref.get("kind") == "Pod":
                parent, ordinal = parent_and_ordinal(ref.get("name", ""))
                if ordinal >= 0 and self.sets.get(parent, ns) is not None:
                    self._paced(f"{ns}/{parent}")

    def _revision_changed(self, cr: dict) -> None:
        self._enqueue_for(cr)

    # -- running -----------------------------------------------------------------------------------

    async def run(self) -> None:
        informers = (self.sets, self.pods, self.claims, self.revisions)
        await start_and_sync(informers)
        try:
            await run_workers(self.queue, self.sync, self.workers)
        finally:
            self.queue.shutdown()

    async def sync(self, key: str) -> P.Plan | None:
        """Reconcile the set `key` once; returns the plan carried out (None: nothing to do)."""
        started = time.monotonic()
        try:
            return await self._sync(key)
        finally:
            self._cost[key] = time.monotonic() - started

    async def _sync(self, key: str) -> P.Plan | None:
        ns, name = split_key(key)
        sts = self.sets.get(name, ns)
        if sts is None:
            return None
        try:
            selector = self._selector(sts)
        except SelectorError:
            return None     # a permanent error: retrying cannot help (upstream)
        if selector.empty:
            return None
        revisions = await self._claim_revisions(key, sts, selector)
        pods = await self._claim_pods(key, sts, selector)
        choice = RV.choose(sts, revisions)
        update_cr, collision = await self._settle_update_revision(key, sts, choice)
        current_cr = choice.current or update_cr
        if choice.action == "rollback" and choice.current is not None and \
                meta(choice.current).get("name") == meta(update_cr).get("name"):
            current_cr = update_cr
        obs = P.Observed(
            sts=sts, pods=pods, claims=_ClaimView(self.claims, ns or ""),
            current_revision=meta(current_cr)["name"],
            update_revision=meta(update_cr)["name"],
            current_template=RV.template_of(current_cr),
            update_template=RV.template_of(update_cr),
            collision_count=collision, now=time.time())
        plan = P.plan(obs)
        errors = await self._execute(key, sts, plan)
        st = ST.complete_rolling_update(sts, plan.status)
        await self._write_status(key, sts, st)
        if not errors:
            all_revs = {meta(r)["name"]: r for r in revisions}
            all_revs[meta(update_cr)["name"]] = update_cr
            await self._truncate_history(key, sts, list(all_revs.values()), pods, st)
        if plan.requeue_after:
            self.queue.add_after(key, plan.requeue_after)
        if errors:
            raise errors[0]
        return plan

    # -- ownership ---------------------------------------------------------------------------------

    async def _can_adopt(self, sts: dict) -> bool:
        """Upstream RecheckDeletionTimestamp: an uncached read of the set."""
        try:
            fresh = await self.client.get(STS, meta(sts)["name"], meta(sts)["namespace"])
        except ApiError as e:
            if e.is_not_found():
                return False
            raise
        return (meta(fresh).get("uid") == meta(sts).get("uid")
                and not meta(fresh).get("deletionTimestamp"))

    async def _patch_owner(self, r, obj: dict, refs_patch: list[dict]) -> dict | None:
        m = meta(obj)
        try:
            return await self.client.patch(
                r, m["name"], {"metadata": {"ownerReferences": refs_patch, "uid": m["uid"]}},
                m["namespace"], patch_type="strategic")
        except ApiError as e:
            if e.is_not_found() or e.is_conflict():
                return None     # gone or replaced: the next sync sees what is there now
            raise

    async def _claim_revisions(self, key: str, sts: dict, selector) -> list[dict]:
        uid = meta(sts).get("uid")
        ns = meta(sts).get("namespace", "")
        by_name = {meta(r)["name"]: r for r in self.revisions.list(ns)
                   if selector.matches(meta(r).get("labels") or {})}
        by_name = self.recent_revisions.overlay(key, by_name)
        owned, orphans = [], []
        for r in by_name.values():
            ref = controller_of(r)
            if ref is None:
                orphans.append(r)
            elif ref.get("uid") == uid:
                owned.append(r)
        if orphans and not meta(sts).get("deletionTimestamp") and await self._can_adopt(sts):
            for r in orphans:
                got = await self._patch_owner(CR, r, [set_ref(sts)])
                if got is not None:
                    owned.append(got)
        return owned

    async def _claim_pods(self, key: str, sts: dict, selector) -> list[dict]:
        ns, name = meta(sts).get("namespace", ""), meta(sts).get("name", "")
        seen: dict[str, dict] = {}
        for p in self.pods.by_index(POD_BY_OWNER, meta(sts).get("uid", "")):
            seen[meta(p)["name"]] = p
        for p in self.pods.by_index(POD_BY_PARENT, f"{ns}/{name}"):
            seen.setdefault(meta(p)["name"], p)
        seen = self.recent_pods.overlay(key, seen)
        claimed = P.claim_pods(sts, list(seen.values()), selector)
        owned = list(claimed.owned)
        if claimed.adopt and await self._can_adopt(sts):
            got = await self._gather([self._patch_owner(POD, p, [set_ref(sts)])
                                      for p in claimed.adopt])
            for g in got:
                if isinstance(g, BaseException):
                    raise g
                if g is not None:
                    owned.append(g)
        if claimed.release:
            uid = meta(sts).get("uid")
            got = await self._gather([self._patch_owner(
                POD, p, [{"$patch": "delete", "uid": uid}]) for p in claimed.release])
            for g in got:
                if isinstance(g, BaseException):
                    raise g
        return owned

    # -- revisions ---------------------------------------------------------------------------------

    async def _settle_update_revision(self, key: str, sts: dict,
                                      choice: RV.RevisionChoice) -> tuple[dict, int]:
        collision = choice.collision_count
        if choice.action == "reuse":
            return choice.update, collision
        if choice.action == "rollback":
            got = await self.client.update(CR, choice.update)
            self.recent_revisions.wrote(key, meta(got)["name"], got)
            return got, collision
        cr = choice.update
        while True:
            try:
                got = await self.client.create(CR, cr, meta(sts)["namespace"])
                self.recent_revisions.wrote(key, meta(got)["name"], got)
                return got, collision
            except ApiError as e:
                if not e.is_already_exists():
                    raise
            existing = await self.client.get(CR, meta(cr)["name"], meta(sts)["namespace"])
            if RV.data_bytes(existing.get("data") or {}) == RV.data_bytes(cr["data"]):
                return existing, collision
            collision += 1
            cr = RV.new_revision(sts, int(cr["revision"]), collision)

    async def _truncate_history(self, key: str, sts: dict, revisions: list[dict],
                                pods: list[dict], st: ST.Status) -> None:
        limit = spec(sts).get("revisionHistoryLimit")
        doomed = RV.history_to_delete(revisions, pods, st.currentRevision, st.updateRevision,
                                      None if limit is None else int(limit))
        for r in doomed:
            try:
                await self.client.delete(CR, meta(r)["name"], meta(r)["namespace"])
            except ApiError as e:
                if not e.is_not_found():
                    raise

    # -- acting on the plan ------------------------------------------------------------------------

    async def _gather(self, coros: list) -> list:
        async def bounded(c):
            async with self._writes:
                return await c
        return await asyncio.gather(*(bounded(c) for c in coros), return_exceptions=True)

    async def _execute(self, key: str, sts: dict, plan: P.Plan) -> list[BaseException]:
        for batch in plan.batches:
            results = await self._gather([self._run_work(key, sts, w) for w in batch])
            errors = [r for r in results if isinstance(r, BaseException)]
            errors += [r for r in results if r is not None and not isinstance(r, BaseException)]
            if errors:
                return errors
        return []

    def _event(self, sts: dict, type_: str, reason: str, message: str) -> None:
        self.recorder.event(_set_ref_obj(sts), type_, reason, message)

    async def _run_work(self, key: str, sts: dict, work: P.Work) -> BaseException | None:
        """Do one slot's writes in order; returns the error that ended it, if any."""
        set_name = meta(sts)["name"]
        creating = any(op.kind == "create-pod" for op in work.ops)
        for op in work.ops:
            try:
                await self._do(key, op)
            except _Quiet:
                return None
            except Exception as e:  # noqa: BLE001 -- every failure becomes an event + requeue
                text = _err_text(e)
                if op.kind == "create-claim":
                    cname = meta(op.obj)["name"]
                    self._event(sts, "Warning", "FailedCreate",
                                f"create Claim {cname} for Pod {op.pod} in StatefulSet "
                                f"{set_name} failed error: {text}")
                    if creating:
                        self._event(sts, "Warning", "FailedCreate",
                                    f"create Pod {op.pod} in StatefulSet {set_name} failed "
                                    f"error: failed to create PVC {cname}: {text}")
                elif op.kind == "claim-terminating":
                    if creating:
                        self._event(sts, "Warning", "FailedCreate",
                                    f"create Pod {op.pod} in StatefulSet {set_name} failed "
                                    f"error: {text}")
                elif op.kind == "create-pod":
                    self._event(sts, "Warning", "FailedCreate",
                                f"create Pod {op.pod} in StatefulSet {set_name} failed "
                                f"error: {text}")
                elif op.kind == "update-pod":
                    self._event(sts, "Warning", "FailedUpdate",
                                f"update Pod {op.pod} in StatefulSet {set_name} failed "
                                f"error: {text}")
                elif op.kind == "delete-pod":
                    self._event(sts, "Warning", "FailedDelete",
                                f"delete Pod {op.pod} in StatefulSet {set_name} failed "
                                f"error: {text}")
                return e
            if op.kind == "create-claim" and op.__dict__.get("_created"):
                self._event(sts, "Normal", "SuccessfulCreate",
                            f"create Claim {meta(op.obj)['name']} Pod {op.pod} in StatefulSet "
                            f"{set_name} success")
            elif op.kind == "create-pod":
                self._event(sts, "Normal", "SuccessfulCreate",
                            f"create Pod {op.pod} in StatefulSet {set_name} successful")
            elif op.kind == "update-pod":
                self._event(sts, "Normal", "SuccessfulUpdate",
                            f"update Pod {op.pod} in StatefulSet {set_name} successful")
            elif op.kind == "delete-pod" and op.__dict__.get("_deleted"):
                self._event(sts, "Normal", "SuccessfulDelete",
                            f"delete Pod {op.pod} in StatefulSet {set_name} successful")
        return None

    async def _do(self, key: str, op: P.Op) -> None:
        m = meta(op.obj)
        if op.kind == "create-claim":
            try:
                await self.client.create(PVC, op.obj, m["namespace"])
                op.__dict__["_created"] = True
            except ApiError as e:
                if not e.is_already_exists():       # an existing claim is reused as it is
                    raise
        elif op.kind == "claim-terminating":
            raise _ClaimTerminating(f"pvc {m['name']} is being deleted")
        elif op.kind == "create-pod":
            try:
                got = await self.client.create(POD, op.obj, m["namespace"])
            except ApiError as e:
                if e.is_already_exists():
                    # our view lagged, or a namesake of another owner (a deleted set's pod,
                    # being collected) holds the name: look again soon, as upstream's
                    # rate-limited requeue does
                    self.queue.add_after(key, ALREADY_EXISTS_RETRY)
                    raise _Quiet() from e
                raise
            self.recent_pods.wrote(key, m["name"], got)
        elif op.kind == "update-pod":
            got = await self.client.update(POD, op.obj)
            self.recent_pods.wrote(key, m["name"], got)
        elif op.kind == "update-claim":
            await self.client.update(PVC, op.obj)
        elif op.kind == "delete-pod":
            try:
                got = await self.client.delete(POD, m["name"], m["namespace"],
                                               preconditions={"uid": m["uid"]})
            except ApiError as e:
                if e.is_not_found() or e.is_conflict():
                    return      # already gone, or another incarnation: nothing of ours
                raise
            op.__dict__["_deleted"] = True
            if got.get("kind") == "Pod" and meta(got).get("deletionTimestamp"):
                self.recent_pods.wrote(key, m["name"], got)
            else:
                self.recent_pods.gone(key, m["name"], m.get("uid", ""))
        else:
            raise ValueError(f"unknown op {op.kind}")

    # -- status ------------------------------------------------------------------------------------

    async def _write_status(self, key: str, sts: dict, st: ST.Status) -> None:
        stored = sts.get("status") or {}
        mine = self._written_status.get(key)
        if mine is not None and mine[0] > _rv(sts):
            stored = mine[1]    # the informer has not seen our last write yet
        if not ST.needs_write(stored, st):
            return
        obj = sts
        for _ in range(STATUS_ATTEMPTS):
            body = {**obj, "status": {**{k: v for k, v in (obj.get("status") or {}).items()
                                         if k == "conditions"}, **st.to_json()}}
            try:
                got = await self.client.update_status(STS, body)
                self._written_status[key] = (_rv(got), got.get("status") or {})
                return
            except ApiError as e:
                if e.is_not_found():
                    return
                if not e.is_conflict():
                    raise
            obj = await self.client.get(STS, meta(sts)["name"], meta(sts)["namespace"])
            if meta(obj).get("uid") != meta(sts).get("uid"):
                return
            if not ST.needs_write(obj.get("status"), st):
                return
        raise RuntimeError(f"status of statefulset {key}: too many conflicts")


class _Quiet(Exception):
    """Ends a work without an error (our view lagged behind the API)."""


class _ClaimTerminating(Exception):
    pass


class _ClaimView:
    """`claims.get(name)` over the PVC informer, in one namespace."""

    def __init__(self, informer, namespace: str):
        self.informer = informer
        self.namespace = namespace

    def get(self, name: str, default=None):
        got = self.informer.get(name, self.namespace)
        return default if got is None else got
