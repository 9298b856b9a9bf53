"""The pvc-protection controller: the one module acting on planner.plan's decisions.

Claims are queued by `namespace/name` when they need the finalizer or are deletion candidates;
pods are indexed by the claims they name, and a pod event that may release claims (the pod is
deleted, terminated, shut down or unscheduled) re-queues its claims. A pod whose UID changed
under the same name also re-queues the old pod's claims, as upstream does, since the update
masks a deletion. Each sync asks the informer's pods first and, only when they show no user,
a live list of the namespace's pods before it removes the finalizer.
"""

from __future__ import annotations

import asyncio

from k1s.api import registry
from k1s.client.informer import object_key, split_key
from k1s.client.workqueue import WorkQueue, run_workers

from .finalizers import set_finalizer
from .planner import (
    FINALIZER, Decision, claims_of_pod, is_deletion_candidate, needs_finalizer, plan,
    pod_claim_index, pod_may_release_claims,
)

PVC = registry.core("persistentvolumeclaims")
POD = registry.core("pods")
POD_CLAIM_INDEX = "pvcprotection-pod-pvc"
WORKERS = 4


class PVCProtectionController:
    def __init__(self, ctx, *, workers: int = WORKERS):
        self.client = ctx.client
        self.workers = workers
        self.queue = WorkQueue("pvcprotection")
        self.claims = ctx.informers.informer(PVC)
        self.pods = ctx.informers.informer(POD)
        self.pods.add_indexer(POD_CLAIM_INDEX, pod_claim_index)
        self.claims.add_handler(on_add=self._claim_changed,
                                on_update=lambda _old, new: self._claim_changed(new))
        self.pods.add_handler(on_add=lambda pod: self._pod_changed(None, pod, False),
                              on_update=lambda old, new: self._pod_changed(old, new, False),
                              on_delete=lambda pod: self._pod_changed(None, pod, True))

    # -- event handlers -------------------------------------------------------------------------
    def _claim_changed(self, claim: dict) -> None:
        if needs_finalizer(claim) or is_deletion_candidate(claim):
            self.queue.add(object_key(claim))

    def _pod_changed(self, old: dict | None, pod: dict, deleted: bool) -> None:
        self._enqueue_claims(pod, deleted)
        old_uid = ((old or {}).get("metadata") or {}).get("uid")
        if old_uid and old_uid != (pod.get("metadata") or {}).get("uid"):
            self._enqueue_claims(old, True)

    def _enqueue_claims(self, pod: dict, deleted: bool) -> None:
        if not pod_may_release_claims(pod, deleted):
            return
        ns = (pod.get("metadata") or {}).get("namespace") or ""
        for name in claims_of_pod(pod):
            self.queue.add(f"{ns}/{name}")

    # -- running --------------------------------------------------------------------------------
    async def run(self) -> None:
        await self.claims.start()
        await self.pods.start()
        await asyncio.gather(self.claims.wait_synced(), self.pods.wait_synced())
        try:
            await run_workers(self.queue, self.sync, self.workers)
        finally:
            self.queue.shutdown()

    async def sync(self, key: str) -> Decision:
        """Decide and act for the claim `namespace/name`; returns the decision carried out."""
        ns, name = split_key(key)
        claim = self.claims.get(name, ns)
        if claim is None:
            return Decision.NOTHING
        cached = self.pods.by_index(POD_CLAIM_INDEX, key)
        decision = plan(claim, cached)
        if decision is Decision.CONFIRM_LIVE:
            live = await self.client.list(POD, ns)
            decision = plan(claim, cached, live.get("items") or [])
        if decision is Decision.ADD_FINALIZER:
            await set_finalizer(self.client, PVC, claim, FINALIZER, True)
        elif decision is Decision.REMOVE_FINALIZER:
            await set_finalizer(self.client, PVC, claim, FINALIZER, False)
        return decision
