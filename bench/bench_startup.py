#!/usr/bin/env python3
"""Benchmark 1: `k1s up` start to the first successful `kubectl get ns`.

Reference, measured in the same run: the same `kubectl get ns` against an already-running
server (kubectl's own cost, the floor any server sees) and `python -c pass` (the interpreter's).
Goal: under 1 s. (k3s and envtest take tens of seconds to the same point.)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import K1s, kubectl_binary, median  # noqa: E402

RUNS = 7


def kubectl_ok(kubeconfig: str, cache: str) -> bool:
    p = subprocess.run([kubectl_binary(), "--kubeconfig", kubeconfig, "--cache-dir", cache,
                        "get", "ns"], capture_output=True)
    return p.returncode == 0


def one_start() -> float:
    t0 = time.monotonic()
    k = K1s()
    try:
        cache = tempfile.mkdtemp()
        while not kubectl_ok(k.kubeconfig, cache):
            time.sleep(0.01)
        return time.monotonic() - t0
    finally:
        k.stop()


def main() -> None:
    starts = [one_start() for _ in range(RUNS)]
    k = K1s()
    try:
        warm = []
        for _ in range(RUNS):
            cache = tempfile.mkdtemp()
            t0 = time.monotonic()
            assert kubectl_ok(k.kubeconfig, cache)
            warm.append(time.monotonic() - t0)
    finally:
        k.stop()
    py = []
    for _ in range(RUNS):
        t0 = time.monotonic()
        subprocess.run([sys.executable, "-c", "pass"])
        py.append(time.monotonic() - t0)
    print(f"k1s up -> first kubectl get ns OK : median {median(starts)*1000:7.0f} ms "
          f"(min {min(starts)*1000:.0f}, max {max(starts)*1000:.0f}, n={RUNS})")
    print(f"reference: kubectl get ns, server up : median {median(warm)*1000:7.0f} ms")
    print(f"reference: python -c pass            : median {median(py)*1000:7.0f} ms")
    print(f"k1s's own share (start minus kubectl): {max(median(starts)-median(warm),0)*1000:.0f} ms"
          f"   goal: total under 1000 ms")


if __name__ == "__main__":
    main()
