"""The pv-protection controller: the one module acting on planner.plan's decisions.

Volumes are queued by name on every add/update that needs the finalizer or is a deletion
candidate (a status change from Bound to Released is such an update); each sync plans from the
informer's copy and writes the finalizer change with that copy's resourceVersion, so a volume
that turned Bound again since is re-planned rather than released.
"""

from __future__ import annotations

from k1s.api import registry
from k1s.client.workqueue import WorkQueue, run_workers
from k1s.controllers.pvc_protection.finalizers import set_finalizer

from .planner import FINALIZER, Decision, plan, wants_sync

PV = registry.core("persistentvolumes")
WORKERS = 2


class PVProtectionController:
    def __init__(self, ctx, *, workers: int = WORKERS):
        self.client = ctx.client
        self.workers = workers
        self.queue = WorkQueue("pvprotection")
        self.volumes = ctx.informers.informer(PV)
        self.volumes.add_handler(on_add=self._changed,
                                 on_update=lambda _old, new: self._changed(new))

    def _changed(self, pv: dict) -> None:
        if wants_sync(pv):
            self.queue.add((pv.get("metadata") or {}).get("name", ""))

    async def run(self) -> None:
        await self.volumes.start()
        await self.volumes.wait_synced()
        try:
            await run_workers(self.queue, self.sync, self.workers)
        finally:
            self.queue.shutdown()

    async def sync(self, name: str) -> Decision:
        """Decide and act for the volume `name`; returns the decision carried out."""
        pv = self.volumes.get(name)
        if pv is None:
            return Decision.NOTHING
        decision = plan(pv)
        if decision is Decision.ADD_FINALIZER:
            await set_finalizer(self.client, PV, pv, FINALIZER, True)
        elif decision is Decision.REMOVE_FINALIZER:
            await set_finalizer(self.client, PV, pv, FINALIZER, False)
        return decision
