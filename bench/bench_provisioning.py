"""Benchmark 2 of issue 3: 1,000 claims on a k1s.io/local class, time until all provisioned
(and Bound, when the binder is registered in CONTROLLERS), in image mode (sparse ext4 image +
loop mount per volume: real capacity) beside directory mode, measured in the same run.

Runs an in-process API server and the controllers in one event loop (as `k1s up` does: the
controllers reach the server in-process, the claims are created over HTTP; `--http`: the
controllers over HTTP too), with an Immediate class so no pods are needed. Without the binder the claims carry the binder's
handshake annotations from the start and the figure is "provisioned" (PV created, pre-bound).

    python bench/bench_provisioning.py [--claims 1000] [--modes image,directory] [--http]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import controllers_in_process  # noqa: E402

from k1s.api import registry  # noqa: E402
from k1s.client.rest import APIClient  # noqa: E402
from k1s.controllers import CONTROLLERS  # noqa: E402
from k1s.controllers.context import ControllerContext  # noqa: E402
from k1s.controllers.local_provisioner import planner as p  # noqa: E402
from k1s.controllers.local_provisioner.controller import LocalProvisioner  # noqa: E402
from k1s.node.volumes import images  # noqa: E402

PVC = registry.core("persistentvolumeclaims")
PV = registry.core("persistentvolumes")
SC = registry.get("storageclasses.storage.k8s.io")
NODE = "bench-node"
BINDER_NAMES = ("persistentvolume-binder", "pv-binder", "persistentvolume-controller",
                "persistentvolume-binder-controller")


async def run_once(n: int, mode: str, http: bool = False) -> dict:
    from k1s.apiserver.server import APIServer
    from k1s.client import local
    work = tempfile.mkdtemp(prefix="k1s-bench-prov-")
    data = os.path.join(work, "node")
    srv = APIServer(os.path.join(work, "api"), port=0)
    await srv.start()
    client = APIClient(controllers_in_process(srv, http))
    ctx_client = APIClient(srv.url)
    ctx = ControllerContext.create(ctx_client, "bench")
    prov = LocalProvisioner(ctx, data_dir=data, node=NODE)
    tasks = [asyncio.create_task(prov.run())]
    binder = next((CONTROLLERS[b] for b in BINDER_NAMES if b in CONTROLLERS), None)
    if binder is not None:
        tasks.append(asyncio.create_task(binder(ctx).run()))
    try:
        await client.create(SC, {
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": "bench"}, "provisioner": p.PROVISIONER,
            "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate",
            "parameters": {"mode": mode}})
        ann = {} if binder else {p.ANN_STORAGE_PROVISIONER: p.PROVISIONER,
                                 p.ANN_BETA_STORAGE_PROVISIONER: p.PROVISIONER}
        sem = asyncio.Semaphore(64)

        async def one(i: int) -> None:
            async with sem:
                await client.create(PVC, {
                    "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                    "metadata": {"name": f"c{i}", "namespace": "default", "annotations": ann},
                    "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "bench",
                             "resources": {"requests": {"storage": "64Mi"}}}}, "default")

        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        t_created = time.perf_counter() - t0
        t_prov = None
        while True:
            if t_prov is None and len(prov.volumes.list()) >= n:
                t_prov = time.perf_counter() - t0
            if binder:       # counted from the shared informer's cache: no API load
                done = sum(1 for c in prov.claims.list()
                           if (c.get("status") or {}).get("phase") == "Bound")
            else:
                done = len(prov.volumes.list())
            if done >= n:
                break
            if time.perf_counter() - t0 > 300:
                raise RuntimeError(f"only {done}/{n} after 300 s")
            await asyncio.sleep(0.02)
        total = time.perf_counter() - t0
        return {"mode": mode, "claims": n, "create_s": t_created, "total_s": total,
                "provisioned_s": t_prov if t_prov is not None else total,
                "what": "Bound" if binder else "provisioned"}
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await ctx.close()
        await ctx_client.close()
        await client.close()
        local.unregister(srv.url)
        await srv.stop()
        root = os.path.join(data, "volumes")
        names = [x for x in os.listdir(root) if x.startswith("pvc-")] if os.path.isdir(root) else []
        await asyncio.gather(*(asyncio.to_thread(images.unmount, data, x) for x in names))
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--claims", type=int, default=1000)
    ap.add_argument("--modes", default="image,directory")
    ap.add_argument("--http", action="store_true",
                    help="the controllers over HTTP too (k1s up wires them in-process)")
    args = ap.parse_args()
    ok, why = images.loop_supported()
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    print(f"cores={os.cpu_count()} loop devices: {'yes' if ok else 'no (' + why + ')'}; "
          "controllers -> API server: " + ("HTTP" if args.http else "in-process (as in k1s up)"))
    print(f"{'mode':<10} {'claims':>6} {'create s':>9} {'all PVs s':>10} {'all done s':>11}"
          "  per claim")
    for mode in args.modes.split(","):
        if mode == "image" and not ok:
            print(f"{mode:<10} skipped: {why}")
            continue
        r = asyncio.run(run_once(args.claims, mode, args.http))
        print(f"{r['mode']:<10} {r['claims']:>6} {r['create_s']:>9.2f} {r['provisioned_s']:>10.2f} "
              f"{r['total_s']:>11.2f}  "
              f"{1000 * r['total_s'] / r['claims']:.2f} ms  ({r['what']})")


if __name__ == "__main__":
    main()
