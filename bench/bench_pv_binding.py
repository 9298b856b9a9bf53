"""Benchmarks 1 and 3 of issue 3 for the PersistentVolume binder.

1. N static PVs + N claims created through the API (concurrently), time until every claim is
   Bound — N = 1,000 and 10,000 — beside upstream's reference figures.
2. Matching cost per claim as the number of volumes grows 100 -> 100,000: the binder's index
   (index.VolumeIndex.find) beside a plain scan (planner.find_best_match_linear), measured in
   the same run, in-process.

Runs an in-process API server and the binder in one event loop (as `k1s up` does: the binder
reaches the server in-process, the load generator over HTTP; `--http`: everything over HTTP).

    python bench/bench_pv_binding.py [--pairs 1000,10000] [--volumes 100,1000,10000,100000]
                                     [--http]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import controllers_in_process  # noqa: E402

from k1s.client.informer import Informer  # noqa: E402
from k1s.client.rest import APIClient  # noqa: E402
from k1s.controllers.context import ControllerContext  # noqa: E402
from k1s.controllers.pv_binder import planner as P  # noqa: E402
from k1s.controllers.pv_binder.controller import PV, PVC, PersistentVolumeBinder  # noqa: E402
from k1s.controllers.pv_binder.index import VolumeIndex  # noqa: E402

UPSTREAM = ("upstream reference (kubernetes/kubernetes#133352, #140721): about 30 claims/s; "
            "10,000 static pairs bind in ~450 s (p50 453 s); goals here: 1,000 pairs < 1 s, "
            "10,000 pairs < 10 s")
CONCURRENCY = 128


# Every volume (10-19Gi) fits every claim (1-10Gi): greedy smallest-fit over volumes that
# arrive in any order is not a perfect matching, so sizes that could strand a claim would make
# "all Bound" unreachable rather than slow.
def _pv(i: int) -> dict:
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": f"pv-{i}"},
            "spec": {"capacity": {"storage": f"{10 + i % 10}Gi"}, "accessModes": ["ReadWriteOnce"],
                     "storageClassName": "", "hostPath": {"path": f"/tmp/pv-{i}"}}}


def _pvc(i: int) -> dict:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": f"claim-{i}", "namespace": "default"},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "",
                     "resources": {"requests": {"storage": f"{1 + i % 10}Gi"}}}}


async def bind_pairs(n: int, http: bool = False) -> dict:
    from k1s.apiserver.server import APIServer
    from k1s.client import local
    work = tempfile.mkdtemp(prefix="k1s-bench-bind-")
    srv = APIServer(os.path.join(work, "api"), port=0)
    await srv.start()
    load_url = controllers_in_process(srv, http)
    ctx_client = APIClient(srv.url)
    ctx = ControllerContext.create(ctx_client, "bench")
    client = APIClient(load_url)
    binder = PersistentVolumeBinder(ctx)
    task = asyncio.create_task(binder.run())
    watcher = Informer(APIClient(load_url), PVC)
    bound: set[str] = set()
    done = asyncio.Event()

    def seen(obj: dict) -> None:
        if (obj.get("status") or {}).get("phase") == "Bound":
            bound.add(obj["metadata"]["name"])
            if len(bound) >= n:
                done.set()
    watcher.add_handler(on_add=seen, on_update=lambda _o, new: seen(new))
    await watcher.start()
    await watcher.wait_synced()
    try:
        await asyncio.gather(*(inf.wait_synced() for inf in (binder.volumes, binder.claims)))
        sem = asyncio.Semaphore(CONCURRENCY)

        async def create(r, obj, ns=None):
            async with sem:
                await client.create(r, obj, ns)

        # volumes and claims interleaved, all at once: the binder works while they arrive
        t0 = time.perf_counter()
        jobs = []
        for i in range(n):
            jobs.append(create(PV, _pv(i)))
            jobs.append(create(PVC, _pvc(i), "default"))
        await asyncio.gather(*jobs)
        t_created = time.perf_counter() - t0
        await asyncio.wait_for(done.wait(), timeout=600)
        t_bound = time.perf_counter() - t0
        items = (await client.list(PVC, "default"))["items"]
        vols = {c["spec"].get("volumeName") for c in items}
        assert len(vols) == n and all(c["status"]["phase"] == "Bound" for c in items)
        return {"n": n, "created": t_created, "bound": t_bound}
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await watcher.stop()
        await watcher.client.close()
        await ctx.close()
        await ctx_client.close()
        await client.close()
        local.unregister(srv.url)
        await srv.stop()
        shutil.rmtree(work, ignore_errors=True)


def _random_volume(rng: random.Random, i: int) -> dict:
    s = {"capacity": {"storage": f"{rng.randint(1, 1000)}Gi"},
         "accessModes": rng.choice([["ReadWriteOnce"], ["ReadWriteOnce", "ReadOnlyMany"],
                                    ["ReadWriteMany"]]),
         "storageClassName": rng.choice(["", "fast", "slow"])}
    return {"metadata": {"name": f"pv-{i:06d}", "labels": {"tier": rng.choice(["a", "b"])}},
            "spec": s, "status": {"phase": "Available"}}


def _random_claim(rng: random.Random, i: int) -> dict:
    return {"metadata": {"name": f"c{i}", "namespace": "default", "uid": f"u{i}"},
            "spec": {"accessModes": ["ReadWriteOnce"],
                     "storageClassName": rng.choice(["", "fast", "slow"]),
                     "resources": {"requests": {"storage": f"{rng.randint(1, 1000)}Gi"}}}}


def matching_cost(sizes: list[int]) -> list[tuple]:
    rng = random.Random(1)
    rows = []
    for n in sizes:
        vols = [_random_volume(rng, i) for i in range(n)]
        idx = VolumeIndex()
        for v in vols:
            idx.observe(v)
        claims = [_random_claim(rng, i) for i in range(2000)]
        t0 = time.perf_counter()
        for c in claims:
            idx.find(c)
        t_index = (time.perf_counter() - t0) / len(claims)
        k = max(3, min(200, 2_000_000 // n))        # keep the scan's total time bounded
        t0 = time.perf_counter()
        for c in claims[:k]:
            want = P.find_best_match_linear(c, vols)
            assert (want and want["metadata"]["name"]) == (
                (idx.find(c) or {}).get("metadata", {}).get("name")), "index != scan"
        t_scan = (time.perf_counter() - t0) / k
        rows.append((n, t_index, t_scan))
        del vols, idx
        gc.collect()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", default="1000,10000")
    ap.add_argument("--volumes", default="100,1000,10000,100000")
    ap.add_argument("--http", action="store_true",
                    help="the binder over HTTP too (k1s up wires it in-process)")
    args = ap.parse_args()
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    print(UPSTREAM)
    print("binder -> API server: " + ("HTTP" if args.http else "in-process (as in k1s up)")
          + "; claims and volumes created over HTTP")
    print(f"{'pairs':>7} {'created (s)':>12} {'all Bound (s)':>14} {'claims/s':>10}")
    for n in (int(x) for x in args.pairs.split(",") if x):
        r = asyncio.run(bind_pairs(n, args.http))
        print(f"{r['n']:>7} {r['created']:>12.2f} {r['bound']:>14.2f} {n / r['bound']:>10.0f}",
              flush=True)
    print()
    print("matching cost per claim (in-process; the scan includes the match check)")
    print(f"{'volumes':>8} {'index (us)':>11} {'linear scan (us)':>17} {'ratio':>7}")
    for n, ti, ts in matching_cost([int(x) for x in args.volumes.split(",") if x]):
        print(f"{n:>8} {ti * 1e6:>11.1f} {ts * 1e6:>17.1f} {ts / ti:>7.0f}x", flush=True)


if __name__ == "__main__":
    main()
