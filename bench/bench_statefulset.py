#!/usr/bin/env python3
"""Issue 4's benchmarks: StatefulSets on simulated nodes, end to end through `k1s up`.

1. Parallel, 1,000 replicas, one claim template on the default class (WaitForFirstConsumer,
   provisioned by each simulated node's local provisioner), 10 simulated nodes: time from
   creating the set until every pod is Ready and every claim Bound. Goal: under 10 s
   (upstream: ~120 pods/s at best plus ~30 binds/s, so well over 30 s).
2. OrderedReady, 100 replicas, zero readiness delay: time until all Ready. Goal: under 5 s.
3. A rolling update of set 1 with maxUnavailable 100: time until every pod runs the new
   revision and is Ready again (status.updatedReplicas = readyReplicas = 1,000).

Reference, measured in the same run: the write floor — the same number of bare pods and claims
created straight through the API of a `k1s up --no-controllers` by this client at 64 in flight,
with no controller, scheduler or node involved.

    python bench/bench_statefulset.py [--replicas 1000] [--ordered 100] [--nodes 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src"))

from _common import K1s, raise_nofile  # noqa: E402

from k1s.api import registry  # noqa: E402
from k1s.client.informer import Informer  # noqa: E402
from k1s.client.rest import APIClient  # noqa: E402

PODS = registry.core("pods")
PVCS = registry.core("persistentvolumeclaims")
NAMESPACES = registry.core("namespaces")
STS = registry.get("statefulsets.apps")
CONCURRENCY = 64


def statefulset(name: str, replicas: int, policy: str, *, claims: bool = True) -> dict:
    spec = {
        "replicas": replicas, "serviceName": name, "podManagementPolicy": policy,
        "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}},
                     "spec": {"containers": [{"name": "nginx", "image": "nginx:1.25",
                                              "ports": [{"containerPort": 80, "name": "web"}],
                                              "volumeMounts": ([{"name": "www",
                                                                 "mountPath": "/data"}]
                                                               if claims else [])}]}},
    }
    if claims:
        spec["volumeClaimTemplates"] = [{
            "metadata": {"name": "www"},
            "spec": {"accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": "1Gi"}}}}]
    return {"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": name}, "spec": spec}


def ready(pod: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or ())


class Progress:
    """Pods Ready and claims Bound in one namespace, from informers (list + watch)."""

    def __init__(self, url: str, ns: str):
        self.client = APIClient(url)
        self.pods = Informer(self.client, PODS, ns)
        self.claims = Informer(self.client, PVCS, ns)
        self.changed = asyncio.Event()
        for inf in (self.pods, self.claims):
            inf.add_handler(on_add=lambda _o: self.changed.set(),
                            on_update=lambda _o, _n: self.changed.set(),
                            on_delete=lambda _o: self.changed.set())

    async def start(self) -> None:
        for inf in (self.pods, self.claims):
            await inf.start()
            await inf.wait_synced()

    async def until(self, pred, timeout: float = 600) -> float:
        """Seconds until pred(self) holds (checked on every change)."""
        t0 = time.perf_counter()
        while not pred(self):
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), 1.0)
            except asyncio.TimeoutError:
                pass
            if time.perf_counter() - t0 > timeout:
                raise TimeoutError("benchmark condition not reached")
        return time.perf_counter() - t0

    def n_ready(self, revision: str | None = None) -> int:
        return sum(1 for p in self.pods.list() if ready(p) and not p["metadata"].get(
            "deletionTimestamp") and (revision is None or p["metadata"].get(
                "labels", {}).get("controller-revision-hash") == revision))

    def n_bound(self) -> int:
        return sum(1 for c in self.claims.list() if (c.get("status") or {}).get("phase") == "Bound")

    async def stop(self) -> None:
        for inf in (self.pods, self.claims):
            await inf.stop()
        await self.client.close()


async def namespace(c: APIClient, name: str) -> None:
    await c.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                "metadata": {"name": name}})


async def write_floor(c: APIClient, n: int) -> float:
    """Bare pods + claims created straight through the API (no controllers involved)."""
    await namespace(c, "floor")
    sem = asyncio.Semaphore(CONCURRENCY)

    async def make(r, obj):
        async with sem:
            await c.create(r, obj, "floor")
    tpl = statefulset("x", 1, "Parallel")["spec"]
    t0 = time.perf_counter()
    jobs = []
    for i in range(n):
        jobs.append(make(PVCS, {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                "metadata": {"name": f"www-x-{i}"},
                                "spec": tpl["volumeClaimTemplates"][0]["spec"]}))
        jobs.append(make(PODS, {"apiVersion": "v1", "kind": "Pod",
                                "metadata": {"name": f"x-{i}", "labels": {"app": "x"}},
                                "spec": {**tpl["template"]["spec"], "schedulerName": "none",
                                         "volumes": [{"name": "www", "persistentVolumeClaim": {
                                             "claimName": f"www-x-{i}"}}]}}))
    await asyncio.gather(*jobs)
    return time.perf_counter() - t0


async def parallel_and_update(url: str, n: int) -> tuple[float, float, float]:
    c = APIClient(url)
    await namespace(c, "par")
    prog = Progress(url, "par")
    await prog.start()
    try:
        t0 = time.perf_counter()
        await c.create(STS, statefulset("web", n, "Parallel"), "par")
        await prog.until(lambda p: p.n_ready() >= n and p.n_bound() >= n)
        t_all = time.perf_counter() - t0

        # 3. rolling update, maxUnavailable 100
        await c.patch(STS, "web", {"spec": {
            "updateStrategy": {"type": "RollingUpdate",
                               "rollingUpdate": {"maxUnavailable": 100, "partition": 0}},
            "template": {"metadata": {"annotations": {"bench/rev": "2"}}}}}, "par",
            patch_type="merge")

        async def update_done() -> bool:
            s = await c.get(STS, "web", "par")
            st = s.get("status") or {}
            return (st.get("observedGeneration", 0) >= s["metadata"]["generation"]
                    and st.get("updateRevision") and st.get("updatedReplicas") == n
                    and st.get("readyReplicas") == n
                    and st.get("currentRevision") == st.get("updateRevision"))
        t1 = time.perf_counter()
        while not await update_done():
            await asyncio.sleep(0.05)
            if time.perf_counter() - t1 > 900:
                raise TimeoutError("rolling update did not finish")
        t_update = time.perf_counter() - t1
        return t_all, t_update
    finally:
        await prog.stop()
        await c.close()


async def ordered(url: str, n: int) -> float:
    c = APIClient(url)
    await namespace(c, "ord")
    prog = Progress(url, "ord")
    await prog.start()
    try:
        t0 = time.perf_counter()
        await c.create(STS, statefulset("ord", n, "OrderedReady", claims=False), "ord")
        await prog.until(lambda p: p.n_ready() >= n)
        return time.perf_counter() - t0
    finally:
        await prog.stop()
        await c.close()


async def run(args) -> None:
    # 1 and 3 on one cluster; 2 on one whose simulated pods turn Ready at once
    k = K1s("--no-controllers")
    try:
        c = APIClient(k.url)
        floor = await write_floor(c, args.replicas)
        await c.close()
    finally:
        k.stop()
    k = K1s("--simulated-nodes", str(args.nodes), "--simulated-pod-delay", "0.1")
    try:
        await asyncio.sleep(0.5)
        t_par, t_upd = await parallel_and_update(k.url, args.replicas)
    finally:
        k.stop()
    k = K1s("--simulated-nodes", str(args.nodes), "--simulated-pod-delay", "0")
    try:
        await asyncio.sleep(0.5)
        t_ord = await ordered(k.url, args.ordered)
    finally:
        k.stop()
    n, m = args.replicas, args.ordered
    print(f"reference: {n} bare pods + {n} claims created through the API "
          f"({CONCURRENCY} in flight): {floor:6.2f} s")
    print(f"1. Parallel {n} replicas + claims, {args.nodes} simulated nodes, all Ready and Bound:"
          f" {t_par:6.2f} s  ({n / t_par:.0f} pods/s; {t_par / floor:.1f}x the write floor)"
          f"   goal < 10 s")
    print(f"2. OrderedReady {m} replicas, zero readiness delay, all Ready:"
          f" {t_ord:6.2f} s  ({t_ord / m * 1000:.0f} ms per ordinal)   goal < 5 s")
    print(f"3. rolling update of the {n}-replica set, maxUnavailable 100:"
          f" {t_upd:6.2f} s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--replicas", type=int, default=1000)
    ap.add_argument("--ordered", type=int, default=100)
    ap.add_argument("--nodes", type=int, default=10)
    args = ap.parse_args()
    raise_nofile()
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
