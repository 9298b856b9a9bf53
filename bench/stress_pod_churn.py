#!/usr/bin/env python3
"""Pod churn on `k1s up`'s real node: waves of pods created while the previous wave is still
being taken down, round after round in one cluster. It shows what bench_pod_start keeps apart
on purpose (each of its waves waits until the node has finished the previous one), and it
catches what only shows after many pods: a wave that never becomes Ready.

Each round: N pods without claims at `rate`/s, then N with a 64Mi claim each at `rate`/s,
then N with claims all at once; between waves the namespace is deleted and the next wave
starts as soon as its pods are gone from the API (their netns, mounts and volumes may still
be going). Printed per wave: p50 / p99 create-to-Ready. Reference, same run: round 0's
first wave, on a fresh node.

A wave not Ready within --timeout stops the run: the pods that are not Ready are printed
with their status and events, and k1s's own log is kept (its path is printed).

    python bench/stress_pod_churn.py [--rounds 3] [--pods 100] [--rate 10] [--timeout 180]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_pod_start as B  # noqa: E402

from k1s.client.rest import APIClient  # noqa: E402


def report_stuck(node: B.Node, ns: str) -> None:
    kc = ["kubectl", "--kubeconfig", node.k.kubeconfig, "-n", ns]
    out = subprocess.run(kc + ["get", "pods", "-o", "json"], capture_output=True, text=True)
    pods = json.loads(out.stdout or '{"items": []}')["items"]
    stuck = [p for p in pods if not B.ready(p)]
    print(f"{len(stuck)} of {len(pods)} pods not Ready in {ns}")
    for p in stuck[:3]:
        print(json.dumps(p.get("status"), indent=1)[:3000])
        ev = subprocess.run(kc + ["get", "events", "--field-selector",
                                  f"involvedObject.name={p['metadata']['name']}"],
                            capture_output=True, text=True)
        print(ev.stdout)
    keep = tempfile.mkdtemp(prefix="k1s-stress-log-")
    shutil.copy(node.k.log_path, keep)
    print(f"k1s's log kept in {keep}/k1s.log")


async def run(args) -> int:
    B.TIMEOUT = args.timeout
    node = B.Node(log=True)
    try:
        c = APIClient(node.url)
        await B.node_ready(c)
        await c.close()
        reference = None
        for r in range(args.rounds):
            for kind, size, rate in (("bare", None, args.rate), ("claims", "64Mi", args.rate),
                                     ("burst", "64Mi", 0)):
                ns = f"{kind}-{r}"
                try:
                    lat = await B.wave(node.url, ns, args.pods, size, rate)
                except (TimeoutError, asyncio.TimeoutError):
                    print(f"round {r} {kind}: NOT all Ready within {args.timeout:g} s")
                    report_stuck(node, ns)
                    return 1
                label = f"round {r}, {kind}" + (f" at {rate:g}/s" if rate else ", all at once")
                print(B.line(label, lat), flush=True)
                if reference is None:
                    reference = lat
                await B.drain(node.url, ns)         # pods gone; their teardown may go on
        print(B.line("reference: round 0's first wave (fresh node)", reference))
        return 0
    finally:
        left = node.stop()
        if left:
            print(f"WARNING: k1s up left these behind (removed now): {left}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pods", type=int, default=100)
    ap.add_argument("--rate", type=float, default=10.0)
    ap.add_argument("--timeout", type=float, default=180.0)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root: the real node runs pods in namespaces with mounts")
        return 2
    B.raise_nofile()
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
