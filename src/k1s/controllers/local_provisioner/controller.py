"""The local provisioner at work: makes volumes for claims, deletes released ones, keeps the
rest mounted, and reports their usage.

- Claims (informer) the planner says to provision: record `Provisioning`, create the image or
  directory in a thread pool bounded by the cores (mkfs and mount are subprocesses; several run
  at once), create PV `pvc-<uid>` pre-bound to the claim, record `ProvisioningSucceeded`
  (plus a Warning `CapacityNotEnforced` in directory mode). Failures record
  `ProvisioningFailed` "failed to provision volume with StorageClass ...: ..." and retry with
  back-off. The data is made before the PV and both steps are idempotent, so a crash between
  them converges: the retry finds the image and creates the PV.
- Volumes of ours: Released with reclaim Delete -> remove the data, then delete the PV object
  (pv-protection lets it go once unbound); every other one is re-mounted if its image is not
  mounted (restart re-adoption; mounted -> nothing).
- On a clean shutdown every image is unmounted (its loop device detached with it).
- Every USAGE_PERIOD seconds: statvfs each mounted volume, patch `k1s.io/usage-bytes` and
  `k1s.io/available-bytes` on the PV when they changed; `metrics_text()` gives the same as
  kubelet's volume stats metrics.
"""

from __future__ import annotations

import asyncio
import logging
import os
from concurrent.futures import ThreadPoolExecutor

from k1s.api import registry
from k1s.client.errors import ApiError
from k1s.client.workqueue import WorkQueue, run_workers
from k1s.node import identity
from k1s.node.volumes import dirs, images, paths
from k1s.client.informer import start_and_sync

from . import planner
from .planner import Fail, Provision

log = logging.getLogger(__name__)

PVCS = registry.core("persistentvolumeclaims")
PVS = registry.core("persistentvolumes")
CLASSES = registry.get("storageclasses.storage.k8s.io")
USAGE_PERIOD = 30.0
NORMAL, WARNING = "Normal", "Warning"


def default_workers() -> int:
    # mkfs/mount spend their time in the kernel and in process start-up: 4 per core keeps
    # the cores busy without a thundering herd of subprocesses
    return max(4, 4 * (os.cpu_count() or 1))


class LocalProvisioner:
    def __init__(self, ctx, *, data_dir: str | None = None, node: str | None = None,
                 workers: int | None = None, usage_period: float = USAGE_PERIOD,
                 loop_ok: bool | None = None, loop_why: str | None = None):
        self.client = ctx.client
        self.node = node or identity.node_name()
        self.data_dir = data_dir or identity.data_dir()
        self.workers = workers or default_workers()
        self.usage_period = usage_period
        ok, why = images.loop_supported()
        self.loop_ok = ok if loop_ok is None else loop_ok
        # why volumes are directories here, for the CapacityNotEnforced event
        self.loop_why = loop_why or why or "loop devices disabled"
        self.recorder = ctx.recorder_for(f"{planner.PROVISIONER}_{self.node}")
        self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="k1s-volumes")
        self.queue = WorkQueue("local-provisioner")
        self.usage: dict[str, tuple[str, str, images.Usage]] = {}   # pv -> (ns, claim, usage)
        # PVs this process created that the informer may not show yet: a claim update in
        # that window must not provision (and record events) a second time
        self.created: set[str] = set()
        self.claims = ctx.informers.informer(PVCS)
        self.volumes = ctx.informers.informer(PVS)
        self.classes = ctx.informers.informer(CLASSES)
        self.claims.add_handler(on_add=self._on_claim, on_update=lambda _o, n: self._on_claim(n))
        self.volumes.add_handler(on_add=self._on_volume, on_update=lambda _o, n: self._on_volume(n))
        self.classes.add_handler(on_add=self._on_class, on_update=lambda _o, n: self._on_class(n))

    # -- events -> keys ---------------------------------------------------------------------
    def _on_claim(self, claim: dict) -> None:
        if planner.is_ours(claim) and not (claim.get("spec") or {}).get("volumeName"):
            m = claim["metadata"]
            self.queue.add(("claim", m["namespace"], m["name"]))

    def _on_volume(self, pv: dict) -> None:
        self.created.discard(pv["metadata"]["name"])     # the informer has it now
        if planner.volume_is_ours(pv, self.node):
            self.queue.add(("pv", "", pv["metadata"]["name"]))

    def _on_class(self, sc: dict) -> None:
        # a class created after its claims: look at the claims again
        if sc.get("provisioner") == planner.PROVISIONER:
            for c in self.claims.list():
                if planner.claim_class(c) == sc["metadata"]["name"]:
                    self._on_claim(c)

    async def run(self) -> None:
        await start_and_sync((self.claims, self.volumes, self.classes))
        usage_task = asyncio.create_task(self._usage_loop())
        try:
            await run_workers(self.queue, self.sync, self.workers * 2)
        finally:
            usage_task.cancel()
            self.queue.shutdown()
            try:
                await self._io(self.unmount_all)
            finally:
                self.pool.shutdown(wait=False)

    async def _io(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    async def sync(self, key: tuple[str, str, str]) -> None:
        kind, ns, name = key
        if kind == "claim":
            await self.sync_claim(ns, name)
        else:
            await self.sync_volume(name)

    # -- provisioning -----------------------------------------------------------------------
    async def sync_claim(self, ns: str, name: str) -> None:
        claim = self.claims.get(name, ns)
        if claim is None:
            return
        cls = planner.claim_class(claim)
        sc = self.classes.get(cls) if cls else None
        uid = claim["metadata"].get("uid", "")
        pv_exists = f"pvc-{uid}" in self.created or self.volumes.get(f"pvc-{uid}") is not None
        action = planner.plan_claim(claim, sc, self.node, pv_exists)
        if isinstance(action, Fail):
            self._failed(claim, cls, action.message)
            return
        if not isinstance(action, Provision):
            return
        try:
            paths.pv_name_for(uid)
        except paths.UnsafePath as e:
            self._failed(claim, cls, str(e))
            return
        self.recorder.event(claim, NORMAL, "Provisioning",
                            f'External provisioner is provisioning volume for claim "{ns}/{name}"')
        use_image = action.params.mode == "image" or (action.params.mode == "auto" and self.loop_ok)
        if action.params.mode == "image" and not self.loop_ok:
            self._failed(claim, cls, f"mode image needs loop devices: {self.loop_why}")
            return
        try:
            if use_image:
                await self._io(self._make_image, action)
            else:
                await self._io(dirs.create, self.data_dir, action.pv_name)
        except (images.VolumeError, OSError) as e:
            self._failed(claim, cls, str(e))
            raise
        pv = planner.build_pv(claim, sc, self.node, paths.mount_path(self.data_dir, action.pv_name),
                              action.params.fs_type if use_image else None)
        try:
            await self.client.create(PVS, pv)
        except ApiError as e:
            if not e.is_already_exists():
                self._failed(claim, cls, f"error creating PersistentVolume: {e.message}")
                raise
        self.created.add(action.pv_name)
        self.recorder.event(claim, NORMAL, "ProvisioningSucceeded",
                            f"Successfully provisioned volume {action.pv_name}")
        if not use_image:
            self.recorder.event(claim, WARNING, "CapacityNotEnforced",
                                f"volume {action.pv_name} is a plain directory: its size "
                                f"is not enforced ({self.loop_why if action.params.mode == 'auto' else 'class asks for mode directory'})")

    def unmount_all(self) -> int:
        """Unmount every volume image of this data dir (clean shutdown): mounts are kernel
        state and would outlive the process; the next start mounts them again. A volume still
        in use (EBUSY) stays mounted. Returns how many were unmounted."""
        root = paths.volumes_root(self.data_dir)
        done = 0
        for name in os.listdir(root) if os.path.isdir(root) else ():
            if not paths.PV_NAME_RE.match(name) or not images.is_mounted(self.data_dir, name):
                continue
            try:
                images.unmount(self.data_dir, name)
                done += 1
            except (images.VolumeError, OSError) as e:
                log.warning("volume %s stays mounted: %s", name, e)
        return done

    def _make_image(self, action: Provision) -> None:
        images.create(self.data_dir, action.pv_name, action.size_bytes, action.params.fs_type)
        images.mount(self.data_dir, action.pv_name, action.mount_options)

    def _failed(self, claim: dict, cls: str | None, message: str) -> None:
        self.recorder.event(claim, WARNING, "ProvisioningFailed",
                            f'failed to provision volume with StorageClass "{cls}": {message}')

    # -- volumes: delete released, keep the rest mounted --------------------------------------
    async def sync_volume(self, name: str) -> None:
        pv = self.volumes.get(name)
        if pv is None:
            self.usage.pop(name, None)
            return
        action = planner.plan_volume(pv, self.node)
        if action is None:
            return
        try:
            paths.check_pv_name(name)
        except paths.UnsafePath:
            return       # not a pvc-<uid> volume: not one we made, never touch its path
        if action == "delete":
            try:
                await self._io(self._delete_data, name)
            except (images.VolumeError, OSError) as e:
                self.recorder.event(pv, WARNING, "VolumeFailedDelete", str(e))
                raise
            self.usage.pop(name, None)
            try:
                await self.client.delete(PVS, name)
            except ApiError as e:
                if not e.is_not_found():
                    raise
            return
        if self.loop_ok and os.path.exists(paths.image_path(self.data_dir, name)):
            await self._io(images.mount, self.data_dir, name,
                           tuple((pv.get("spec") or {}).get("mountOptions") or ()))

    def _delete_data(self, name: str) -> None:
        if os.path.exists(paths.image_path(self.data_dir, name)) or self.loop_ok:
            images.delete(self.data_dir, name)
        else:
            dirs.delete(self.data_dir, name)

    # -- usage --------------------------------------------------------------------------------
    def _measure(self, pv: dict) -> images.Usage | None:
        name = pv["metadata"]["name"]
        mnt = paths.mount_path(self.data_dir, name)
        if os.path.exists(paths.image_path(self.data_dir, name)):
            return images.usage(mnt) if os.path.ismount(mnt) else None
        if os.path.isdir(mnt):
            cap = planner.requested_bytes({"spec": {"resources": {"requests": {
                "storage": ((pv.get("spec") or {}).get("capacity") or {}).get("storage", "0")}}}})
            return dirs.usage(mnt, cap or 0)
        return None

    async def refresh_usage(self) -> int:
        """Measure every volume of ours and patch the PVs whose figures changed; returns the
        number of patches."""
        patched = 0
        for pv in self.volumes.list():
            if planner.plan_volume(pv, self.node) != "keep":
                continue
            name = pv["metadata"]["name"]
            try:
                paths.check_pv_name(name)
                u = await self._io(self._measure, pv)
            except (OSError, paths.UnsafePath):
                continue
            if u is None:
                continue
            ref = (pv.get("spec") or {}).get("claimRef") or {}
            self.usage[name] = (ref.get("namespace", ""), ref.get("name", ""), u)
            patch = planner.usage_patch(pv, u.used_bytes, u.available_bytes)
            if patch is None:
                continue
            try:
                await self.client.patch(PVS, name, patch)
                patched += 1
            except ApiError as e:
                if not e.is_not_found():
                    log.warning("usage of %s: %s", name, e.message)
        return patched

    async def _usage_loop(self) -> None:
        while True:
            await asyncio.sleep(self.usage_period)
            try:
                await self.refresh_usage()
            except Exception:
                log.exception("volume usage refresh failed")

    def metrics_text(self) -> str:
        """Volume usage in Prometheus text format, with kubelet's metric and label names."""
        out = []
        for metric, attr in (("kubelet_volume_stats_capacity_bytes", "capacity_bytes"),
                             ("kubelet_volume_stats_used_bytes", "used_bytes"),
                             ("kubelet_volume_stats_available_bytes", "available_bytes")):
            out.append(f"# TYPE {metric} gauge")
            for _pv, (ns, claim, u) in sorted(self.usage.items()):
                out.append(f'{metric}{{namespace="{ns}",persistentvolumeclaim="{claim}"}} '
                           f"{getattr(u, attr)}")
        return "\n".join(out) + "\n"
