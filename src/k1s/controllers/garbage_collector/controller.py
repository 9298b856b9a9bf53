"""The garbage collector: the one module that acts on the planner's decisions.

It keeps the ownership graph (graph.py) from one shared informer per resource, and processes
object UIDs from a work queue: read the object live, classify each owner (a live GET by name,
so an informer running behind never makes an owner look absent; a 404 or another UID under
that name means absent), ask the planner, and carry the actions out:

- deletes carry a UID precondition, so a same-named newcomer is never hit;
- ownerReferences and finalizers change by JSON merge patch carrying the resourceVersion it was
  computed from (optimistic concurrency: a conflict re-reads and retries, so another writer's
  finalizer or reference is never dropped);
- OwnerRefInvalidNamespace warnings go through the EventRecorder (which aggregates repeats).

Events (core and events.k8s.io) are not watched, as upstream's collector ignores them.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Callable

from k1s.api import registry
from k1s.client.errors import ApiError
from k1s.client.workqueue import WorkQueue, run_workers

from .graph import FOREGROUND, Graph, Node, ObjectRef, OwnerRef, node_from_object
from .planner import (
    DeleteObject, DependentView, OwnerStatus, RemoveFinalizer, RemoveOwnerRef, UnblockOwnerRefs,
    Wait, Warn, plan,
)

log = logging.getLogger(__name__)

COMPONENT = "garbage-collector-controller"
IGNORED = {("", "events")}      # upstream's ignoredResources
WORKERS = 8                     # upstream ConcurrentGCSyncs defaults to 20
ABSENT_CACHE_SIZE = 1000        # upstream's absentOwnerCache holds 500 entries
PATCH_ATTEMPTS = 5


def collected_resources() -> list[registry.Resource]:
    """Every resource that stores its own objects and can be listed, watched and deleted."""
    return [r for r in registry.RESOURCES
            if r.stored_as is None and (r.group, r.plural) not in IGNORED
            and {"list", "watch", "delete"} <= set(r.verbs)]


class _UIDCache:
    """A bounded set of owner UIDs verified absent (a UID never comes back)."""

    def __init__(self, size: int):
        self.size = size
        self._d: OrderedDict[str, None] = OrderedDict()

    def add(self, uid: str) -> None:
        self._d[uid] = None
        self._d.move_to_end(uid)
        while len(self._d) > self.size:
            self._d.popitem(last=False)

    def __contains__(self, uid: str) -> bool:
        return uid in self._d


class GarbageCollector:
    def __init__(self, ctx, *, workers: int = WORKERS):
        self.client = ctx.client
        recorder_for = getattr(ctx, "recorder_for", None)
        self.recorder = recorder_for(COMPONENT) if recorder_for else ctx.recorder
        self.workers = workers
        self.graph = Graph()
        self.queue = WorkQueue("garbage-collector")
        self.absent = _UIDCache(ABSENT_CACHE_SIZE)
        self.informers = {}
        for r in collected_resources():
            inf = ctx.informers.informer(r)
            inf.add_handler(on_add=self._observer(r),
                            on_update=lambda _old, new, _f=self._observer(r): _f(new),
                            on_delete=self._forgetter())
            self.informers[(r.api_version, r.kind)] = inf

    # -- graph maintenance (informer handlers) ------------------------------------------------
    def _observer(self, r: registry.Resource) -> Callable[[dict], None]:
        def observe(obj: dict) -> None:
            node = node_from_object(obj, r.api_version, r.kind)
            if node.uid:
                self._enqueue(self.graph.observe(node))
        return observe

    def _forgetter(self) -> Callable[[dict], None]:
        def forget(obj: dict) -> None:
            uid = (obj.get("metadata") or {}).get("uid")
            if uid:
                self._enqueue(self.graph.forget(uid))
        return forget

    def _enqueue(self, uids) -> None:
        for u in uids:
            self.queue.add(u)

    # -- running -------------------------------------------------------------------------------
    async def run(self) -> None:
        for inf in self.informers.values():
            await inf.start()
        await asyncio.gather(*(inf.wait_synced() for inf in self.informers.values()))
        try:
            await run_workers(self.queue, self.sync, self.workers)
        finally:
            self.queue.shutdown()

    async def sync(self, uid: str) -> None:
        node = self.graph.node(uid)
        if node is None:
            return
        r = node.ref.resource
        if r is None:
            return
        try:
            live = await self.client.get(r, node.ref.name, node.ref.namespace or None)
        except ApiError as e:
            if e.is_not_found():
                self._enqueue(self.graph.forget(uid))   # the informer is behind; it is gone
                return
            raise
        if (live.get("metadata") or {}).get("uid") != uid:
            self._enqueue(self.graph.forget(uid))
            return
        item = node_from_object(live, r.api_version, r.kind)
        dependents = [DependentView.of(d, uid) for d in self.graph.dependents(uid)]
        owners = {} if item.deleting else await self._classify_owners(item)
        await self._act(live, plan(item, dependents, owners))

    async def _classify_owners(self, item: Node) -> dict[str, OwnerStatus]:
        return {o.uid: await self._owner_status(item, o) for o in item.owners}

    async def _owner_status(self, item: Node, owner: OwnerRef) -> OwnerStatus:
        r = owner.resource
        if r is None or r.stored_as is not None:
            return OwnerStatus.UNKNOWN_KIND
        if r.namespaced and not item.ref.namespace:
            return OwnerStatus.INVALID_SCOPE
        if self.graph.cross_namespace(item, owner):
            return OwnerStatus.INVALID_NAMESPACE
        if owner.uid in self.absent:
            return OwnerStatus.ABSENT
        seen = self.graph.node(owner.uid)
        if seen is not None and not seen.deleting:
            # Alive in the cache: keeping the dependent is always safe, and when the owner
            # goes, its delete event brings the dependent back here.
            return OwnerStatus.PRESENT
        try:
            live = await self.client.get(r, owner.name, item.ref.namespace if r.namespaced else None)
        except ApiError as e:
            if e.is_not_found():
                self.absent.add(owner.uid)
                return OwnerStatus.ABSENT
            raise
        md = live.get("metadata") or {}
        if md.get("uid") != owner.uid:
            self.absent.add(owner.uid)
            return OwnerStatus.ABSENT
        if md.get("deletionTimestamp") and FOREGROUND in (md.get("finalizers") or ()):
            return OwnerStatus.WAITING
        return OwnerStatus.PRESENT

    # -- acting ----------------------------------------------------------------------------------
    async def _act(self, live: dict, actions: list) -> None:
        i = 0
        while i < len(actions):
            a = actions[i]
            if isinstance(a, RemoveOwnerRef):
                # one patch per dependent, all dependents at once (upstream orphans in parallel)
                batch: dict[str, tuple[ObjectRef, set[str]]] = {}
                while i < len(actions) and isinstance(actions[i], RemoveOwnerRef):
                    d = actions[i]
                    batch.setdefault(d.dependent.uid, (d.dependent, set()))[1].add(d.owner_uid)
                    i += 1
                await asyncio.gather(*(self._remove_owner_refs(ref, uids)
                                       for ref, uids in batch.values()))
                continue
            if isinstance(a, DeleteObject):
                await self._delete(a.ref, a.propagation)
            elif isinstance(a, UnblockOwnerRefs):
                await self._patch_owner_refs(a.ref, lambda refs: [
                    dict(o, blockOwnerDeletion=False) if o.get("blockOwnerDeletion") else o
                    for o in refs])
            elif isinstance(a, RemoveFinalizer):
                await self._remove_finalizer(a.owner, a.finalizer)
            elif isinstance(a, Wait):
                self._enqueue(r.uid for r in a.recheck)
            elif isinstance(a, Warn):
                self.recorder.event(live, "Warning", a.reason, a.message)
            i += 1

    async def _delete(self, ref: ObjectRef, propagation: str) -> None:
        try:
            await self.client.delete(ref.resource, ref.name, ref.namespace or None,
                                     propagation_policy=propagation,
                                     preconditions={"uid": ref.uid})
        except ApiError as e:
            # gone already, or the name now belongs to another object: nothing left to do
            if not (e.is_not_found() or e.is_conflict()):
                raise

    async def _remove_owner_refs(self, ref: ObjectRef, owner_uids: set[str]) -> None:
        await self._patch_owner_refs(
            ref, lambda refs: [o for o in refs if o.get("uid") not in owner_uids])

    async def _patch_owner_refs(self, ref: ObjectRef, change: Callable[[list], list]) -> None:
        await self._patch_metadata(ref, lambda md: _field_change(
            "ownerReferences", md.get("ownerReferences") or [], change))

    async def _remove_finalizer(self, ref: ObjectRef, finalizer: str) -> None:
        await self._patch_metadata(ref, lambda md: _field_change(
            "finalizers", md.get("finalizers") or [],
            lambda fs: [f for f in fs if f != finalizer]))

    async def _patch_metadata(self, ref: ObjectRef, change: Callable[[dict], dict | None]) -> None:
        """Read-modify-write of metadata by merge patch with a resourceVersion precondition.

        The first attempt starts from the informer's copy (saving a GET in the common case);
        a conflict means it was stale, and each retry reads the object live."""
        r = ref.resource
        ns = ref.namespace or None
        inf = self.informers.get((ref.api_version, ref.kind))
        obj = inf.get(ref.name, ns) if inf is not None else None
        for _ in range(PATCH_ATTEMPTS):
            if obj is None:
                try:
                    obj = await self.client.get(r, ref.name, ns)
                except ApiError as e:
                    if e.is_not_found():
                        return
                    raise
            md = obj.get("metadata") or {}
            if md.get("uid") != ref.uid:
                return
            patch = change(md)
            if patch is None:
                return
            patch["resourceVersion"] = md.get("resourceVersion")
            try:
                await self.client.patch(r, ref.name, {"metadata": patch}, ns, patch_type="merge")
                return
            except ApiError as e:
                if e.is_not_found():
                    return
                if not e.is_conflict():
                    raise
            obj = None
        raise RuntimeError(f"{ref}: metadata patch kept conflicting")


def _field_change(field: str, current: list, change: Callable[[list], list]) -> dict | None:
    """The merge-patch body for metadata.<field> (None when nothing changes; null removes)."""
    new = change(list(current))
    if new == current:
        return None
    return {field: new or None}


def new_controller(ctx) -> GarbageCollector:
    return GarbageCollector(ctx)
