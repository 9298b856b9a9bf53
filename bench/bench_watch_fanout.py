#!/usr/bin/env python3
"""Benchmark 3: one write delivered to 1,000 watchers; latency from issuing the write to each
watcher receiving its event (p50, p99, max).

Reference, measured in the same run: the same with a single watcher (the floor: one write plus
one delivery). The server runs in its own process on CPU 0; watchers and the writer share this
process on CPU 1. Goal: p99 under 100 ms.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

import aiohttp
import orjson

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import K1s, raise_nofile  # noqa: E402

WATCHERS = int(os.environ.get("BENCH_WATCHERS", "1000"))
WRITES = 20


async def measure(url: str, watchers: int) -> list[float]:
    cm = f"{url}/api/v1/namespaces/default/configmaps"
    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=conn) as s:
        async with s.post(cm, json={"apiVersion": "v1", "kind": "ConfigMap",
                                    "metadata": {"name": f"fan-{watchers}"}}) as r:
            created = await r.json()
        rv = created["metadata"]["resourceVersion"]
        sent: dict[str, float] = {}
        lat: list[float] = []
        ready = 0
        all_ready = asyncio.Event()

        async def watcher() -> None:
            nonlocal ready
            q = {"watch": "true", "resourceVersion": rv,
                 "fieldSelector": f"metadata.name=fan-{watchers}"}
            async with s.get(cm, params=q, timeout=aiohttp.ClientTimeout(total=None)) as r:
                ready += 1
                if ready == watchers:
                    all_ready.set()
                buf = b""
                got = 0
                async for chunk in r.content.iter_any():
                    buf += chunk
                    while b"\n" in buf:
                        line, buf = buf.split(b"\n", 1)
                        ev = orjson.loads(line)
                        mark = ev["object"].get("data", {}).get("n")
                        if mark in sent:
                            lat.append(time.monotonic() - sent[mark])
                            got += 1
                    if got >= WRITES:
                        return

        tasks = [asyncio.create_task(watcher()) for _ in range(watchers)]
        await asyncio.wait_for(all_ready.wait(), 60)
        await asyncio.sleep(0.5)
        for i in range(WRITES):
            mark = str(i)
            sent[mark] = time.monotonic()
            async with s.patch(f"{cm}/fan-{watchers}", data=orjson.dumps({"data": {"n": mark}}),
                               headers={"Content-Type": "application/merge-patch+json"}) as r:
                await r.read()
            await asyncio.sleep(0.1)
        await asyncio.wait_for(asyncio.gather(*tasks), 60)
        return sorted(lat)


def pct(xs: list[float], p: float) -> float:
    return xs[min(len(xs) - 1, int(len(xs) * p))] * 1000


def main() -> None:
    raise_nofile()
    try:
        os.sched_setaffinity(0, {1})
    except (AttributeError, OSError):
        pass
    k = K1s("--no-controllers", cpu=0)
    try:
        one = asyncio.run(measure(k.url, 1))
        many = asyncio.run(measure(k.url, WATCHERS))
    finally:
        k.stop()
    print(f"{WATCHERS} watchers x {WRITES} writes: p50 {pct(many, .5):6.1f} ms  "
          f"p99 {pct(many, .99):6.1f} ms  max {many[-1]*1000:6.1f} ms  "
          f"({len(many)} deliveries)   goal: p99 < 100 ms")
    print(f"reference, 1 watcher      : p50 {pct(one, .5):6.1f} ms  p99 {pct(one, .99):6.1f} ms")


if __name__ == "__main__":
    main()
