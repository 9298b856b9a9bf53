#!/usr/bin/env python3
"""Benchmark 4: idle resident memory of `k1s up` (store, API server, controllers).

Measured IDLE_SECONDS after start, beside two references from the same run: a bare Python
interpreter and a trivial aiohttp server (what any Python HTTP service costs at minimum).
Goal: under 100 MB (a k3s server measures ~1.6 GB).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import K1s, median, rss_mb  # noqa: E402

IDLE_SECONDS = float(os.environ.get("BENCH_IDLE_SECONDS", "10"))
RUNS = 3


def main() -> None:
    k1s_rss = []
    for _ in range(RUNS):
        k = K1s()
        try:
            time.sleep(IDLE_SECONDS)
            k1s_rss.append(k.rss_mb())
        finally:
            k.stop()
    py = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    aio = subprocess.Popen([sys.executable, "-c",
                            "from aiohttp import web; import uvloop, orjson; "
                            "app = web.Application(); "
                            "web.run_app(app, host='127.0.0.1', port=0, print=None)"])
    time.sleep(3)
    py_rss, aio_rss = rss_mb(py.pid), rss_mb(aio.pid)
    py.kill(), aio.kill()
    print(f"k1s up, idle {IDLE_SECONDS:.0f}s : median RSS {median(k1s_rss):6.1f} MB "
          f"(runs: {', '.join(f'{x:.1f}' for x in k1s_rss)})   goal: < 100 MB")
    print(f"reference: python idle     : {py_rss:6.1f} MB")
    print(f"reference: trivial aiohttp : {aio_rss:6.1f} MB")


if __name__ == "__main__":
    main()
