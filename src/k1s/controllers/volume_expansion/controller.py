"""The volume-expansion controller at work: grows k1s.io/local volumes of this node when a
bound claim's request rises above its capacity (see planner.py for the status sequence).

Events, as upstream's components record them on the claim: ExternalExpanding (expand
controller), Resizing and VolumeResizeSuccessful / VolumeResizeFailed (external-resizer),
FileSystemResizeSuccessful (kubelet). The image is grown with truncate + resize2fs, online
where the kernel allows it (images.resize falls back to offline otherwise).
"""

from __future__ import annotations

import asyncio
import logging
import os
from concurrent.futures import ThreadPoolExecutor

from k1s.api import registry
from k1s.client.errors import ApiError
from k1s.client.events import rfc3339
from k1s.client.workqueue import WorkQueue, run_workers
from k1s.controllers.local_provisioner import planner as prov
from k1s.node import identity
from k1s.node.volumes import images, paths
from k1s.client.informer import start_and_sync

from . import planner

log = logging.getLogger(__name__)

PVCS = registry.core("persistentvolumeclaims")
PVS = registry.core("persistentvolumes")
CLASSES = registry.get("storageclasses.storage.k8s.io")
WORKERS = 4
NORMAL, WARNING = "Normal", "Warning"


class VolumeExpansionController:
    def __init__(self, ctx, *, data_dir: str | None = None, node: str | None = None):
        self.client = ctx.client
        self.node = node or identity.node_name()
        self.data_dir = data_dir or identity.data_dir()
        self.expand_events = ctx.recorder_for("volume_expand")
        self.resizer_events = ctx.recorder_for(f"external-resizer {prov.PROVISIONER}")
        self.kubelet_events = ctx.recorder_for("kubelet")
        self.pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="k1s-expand")
        self.queue = WorkQueue("volume-expansion")
        self.claims = ctx.informers.informer(PVCS)
        self.volumes = ctx.informers.informer(PVS)
        self.classes = ctx.informers.informer(CLASSES)
        self.claims.add_handler(on_add=self._on_claim, on_update=lambda _o, n: self._on_claim(n))
        self.volumes.add_handler(on_add=self._on_volume, on_update=lambda _o, n: self._on_volume(n))

    def _on_claim(self, claim: dict) -> None:
        if (claim.get("spec") or {}).get("volumeName"):
            m = claim["metadata"]
            self.queue.add((m["namespace"], m["name"]))

    def _on_volume(self, pv: dict) -> None:
        ref = (pv.get("spec") or {}).get("claimRef") or {}
        if ref.get("name") and prov.volume_is_ours(pv, self.node):
            self.queue.add((ref.get("namespace", ""), ref["name"]))

    async def run(self) -> None:
        await start_and_sync((self.claims, self.volumes, self.classes))
        try:
            await run_workers(self.queue, self.sync, WORKERS)
        finally:
            self.queue.shutdown()
            self.pool.shutdown(wait=False)

    async def _io(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    async def sync(self, key: tuple[str, str]) -> None:
        ns, name = key
        claim = self.claims.get(name, ns)
        if claim is None:
            return
        pv_name = (claim.get("spec") or {}).get("volumeName")
        pv = self.volumes.get(pv_name) if pv_name else None
        cls = prov.claim_class(claim)
        sc = self.classes.get(cls) if cls else None
        step = planner.stage(claim, pv, sc, self.node)
        if step is None:
            return
        try:
            paths.check_pv_name(pv_name)
        except paths.UnsafePath:
            return
        try:
            # the cache may lag behind the binder's and our own writes: act on the current claim
            claim = await self.client.get(PVCS, name, ns)
            step = planner.stage(claim, pv, sc, self.node)
            if step is None:
                return
            new_size = planner.requested(claim)
            if step == "controller":
                claim = await self._controller_step(claim, pv, new_size)
            await self._node_step(claim, pv, new_size)
        except ApiError as e:
            if e.is_not_found():
                return
            if e.is_conflict():           # somebody wrote in between: look again shortly
                self.queue.add_after(key, 0.05)
                return
            raise

    async def _write_status(self, claim: dict, status: dict) -> dict:
        return await self.client.update_status(PVCS, dict(claim, status=status))

    async def _controller_step(self, claim: dict, pv: dict, new_size: str) -> dict:
        pv_name = pv["metadata"]["name"]
        self.expand_events.event(claim, NORMAL, "ExternalExpanding",
                                 "waiting for an external controller to expand this PVC")
        self.resizer_events.event(claim, NORMAL, "Resizing",
                                  f"External resizer is resizing volume {pv_name}")
        claim = await self._write_status(
            claim, planner.start_status(claim.get("status") or {}, new_size, rfc3339()))
        try:
            await self._io(self._grow, pv, new_size)
        except (images.VolumeError, OSError) as e:
            msg = f'resize volume "{pv_name}" by resizer "{prov.PROVISIONER}" failed: {e}'
            self.resizer_events.event(claim, WARNING, "VolumeResizeFailed", msg)
            await self._write_status(claim, planner.failed_status(claim["status"], msg, rfc3339()))
            raise
        fresh = await self.client.get(PVS, pv_name)
        fresh["spec"]["capacity"] = dict(fresh["spec"].get("capacity") or {}, storage=new_size)
        await self.client.update(PVS, fresh)
        self.resizer_events.event(claim, NORMAL, "VolumeResizeSuccessful", "Resize volume succeeded")
        return await self._write_status(
            claim, planner.node_pending_status(claim.get("status") or {}, rfc3339()))

    async def _node_step(self, claim: dict, pv: dict, new_size: str) -> None:
        pv_name = pv["metadata"]["name"]
        await self._io(self._grow, pv, new_size)        # idempotent: grown already -> nothing
        await self._write_status(claim, planner.finished_status(claim.get("status") or {},
                                                                new_size))
        self.kubelet_events.event(
            claim, NORMAL, "FileSystemResizeSuccessful",
            f'MountVolume.NodeExpandVolume succeeded for volume "{pv_name}" {self.node}')

    def _grow(self, pv: dict, new_size: str) -> None:
        name = pv["metadata"]["name"]
        if not os.path.exists(paths.image_path(self.data_dir, name)):
            return      # directory mode: nothing to grow, its size was never enforced
        size = prov.requested_bytes({"spec": {"resources": {"requests": {"storage": new_size}}}})
        images.resize(self.data_dir, name, size or 0,
                      tuple((pv.get("spec") or {}).get("mountOptions") or ()))
