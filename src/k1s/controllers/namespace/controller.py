"""The namespace controller: empties a Terminating namespace, then finalizes it.

It watches namespaces; for each one with deletionTimestamp and the `kubernetes` finalizer it
lists every namespaced resource in it, deletes what is not yet being deleted (Background, as
upstream), lists again, records the deletion conditions on the namespace status, and either
looks again later (content remains) or removes `kubernetes` from spec.finalizers through
`PUT /api/v1/namespaces/{name}/finalize`, after which the API server deletes the namespace.
Every pass starts from what the API says now, so a restart anywhere converges.
"""

from __future__ import annotations

import asyncio
import logging

from k1s.api import registry
from k1s.client.errors import ApiError
from k1s.client.events import rfc3339
from k1s.client.workqueue import WorkQueue, run_workers

from . import planner
from .planner import DeleteContent, Finalize, Item, Requeue, UpdateStatus

log = logging.getLogger(__name__)

COMPONENT = "namespace-controller"
NAMESPACES = registry.core("namespaces")
WORKERS = 4              # namespaces emptied concurrently (upstream's default is 10)
MAX_RECHECK = 5.0        # back-off cap while content remains (upstream waits 15 s per finalizer)


def namespaced_resources() -> list[registry.Resource]:
    """Every namespaced resource that holds its own objects (not an alternate view) and can be
    listed and deleted."""
    return [r for r in registry.RESOURCES
            if r.namespaced and r.stored_as is None
            and "list" in r.verbs and "delete" in r.verbs]


class NamespaceController:
    def __init__(self, ctx, *, workers: int = WORKERS):
        self.client = ctx.client
        self.workers = workers
        self.queue = WorkQueue("namespace")
        self.resources = namespaced_resources()
        self._by_name = {(r.group, r.plural): r for r in self.resources}
        self._rechecks: dict[str, int] = {}     # name -> consecutive passes with content left
        self.informer = ctx.informers.informer(NAMESPACES)
        self.informer.add_handler(on_add=self._on_change, on_update=lambda _o, n: self._on_change(n))

    def _on_change(self, ns: dict) -> None:
        if planner.needs_cleanup(ns):
            self.queue.add(ns["metadata"]["name"])

    async def run(self) -> None:
        await self.informer.start()
        await self.informer.wait_synced()
        try:
            await run_workers(self.queue, self.sync, self.workers)
        finally:
            self.queue.shutdown()

    # -- one pass --------------------------------------------------------------------------------
    async def sync(self, name: str) -> None:
        try:
            ns = await self.client.get(NAMESPACES, name)
        except ApiError as e:
            if e.is_not_found():
                self._rechecks.pop(name, None)
                return
            raise
        if not planner.needs_cleanup(ns):
            self._rechecks.pop(name, None)
            return

        content = await self._inventory(name)
        errors = await self._delete(name, planner.plan_deletions(content))
        remaining = await self._inventory(name) if content else content

        for action in planner.plan(ns, remaining, errors, rfc3339()):
            if isinstance(action, UpdateStatus):
                ns = await self._update_status(ns, action.status)
                if ns is None:
                    return
            elif isinstance(action, Finalize):
                await self._finalize(ns, action.finalizers)
                self._rechecks.pop(name, None)
            elif isinstance(action, Requeue):
                n = self._rechecks.get(name, 0)
                self._rechecks[name] = n + 1
                self.queue.add_after(name, min(action.after * (2 ** min(n, 5)), MAX_RECHECK))

    async def _inventory(self, namespace: str) -> list[Item]:
        async def one(r: registry.Resource) -> list[Item]:
            lst = await self.client.list(r, namespace)
            return [Item.from_object(r.group, r.plural, o) for o in lst.get("items") or ()]
        found = await asyncio.gather(*(one(r) for r in self.resources))
        return [i for items in found for i in items]

    async def _delete(self, namespace: str, deletes: list[DeleteContent]) -> list[str]:
        """Delete each object; return one message per resource that failed (upstream shape)."""
        async def one(d: DeleteContent) -> str | None:
            r = self._by_name[(d.group, d.plural)]
            try:
                await self.client.delete(r, d.name, namespace, propagation_policy="Background")
            except ApiError as e:
                if e.is_not_found() or e.is_conflict():
                    return None
                return f"{r.plural}.{r.group}: {e.message}"
            return None
        results = await asyncio.gather(*(one(d) for d in deletes))
        return sorted({m for m in results if m})

    async def _update_status(self, ns: dict, status: dict) -> dict | None:
        body = dict(ns, status=status)
        try:
            return await self.client.update_status(NAMESPACES, body)
        except ApiError as e:
            if e.is_not_found():
                return None
            if e.is_conflict():
                # somebody else wrote it: the next pass recomputes from the fresh object
                self.queue.add(ns["metadata"]["name"])
                return None
            raise

    async def _finalize(self, ns: dict, keep: tuple[str, ...]) -> None:
        name = ns["metadata"]["name"]
        for _ in range(5):
            body = dict(ns, spec=dict(ns.get("spec") or {}, finalizers=list(keep)))
            try:
                await self.client.update(NAMESPACES, body, subresource="finalize")
                return
            except ApiError as e:
                if e.is_not_found():
                    return
                if not e.is_conflict():
                    raise
            try:
                ns = await self.client.get(NAMESPACES, name)
            except ApiError as e:
                if e.is_not_found():
                    return
                raise
            if not planner.needs_cleanup(ns):
                return
            keep = tuple(f for f in ns["spec"]["finalizers"] if f != planner.FINALIZER_KUBERNETES)
        raise RuntimeError(f"namespace {name}: finalize kept conflicting")


def new_controller(ctx) -> NamespaceController:
    return NamespaceController(ctx)
