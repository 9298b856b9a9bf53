#!/usr/bin/env python3
"""Benchmark 2: API throughput with 1 and 32 concurrent clients.

GET one pod, LIST 1,000 pods and CREATE pods, each measured with wrk (server pinned to CPU 0,
wrk to CPU 1) beside a trivial aiohttp handler serving the same pod bytes on the same machine:
the raw limit of the framework k1s is built on. Goal: GET at >= 50% of the raw limit.
Figures are medians of REPEATS runs of SECONDS each.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import K1s, http_json, median, pod, taskset  # noqa: E402

SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))

TRIVIAL = textwrap.dedent('''
    import sys, orjson
    from aiohttp import web
    body = open(sys.argv[2], "rb").read()
    async def h(request):
        return web.Response(body=body, content_type="application/json")
    app = web.Application()
    app.router.add_get("/{tail:.*}", h)
    try:
        import uvloop; uvloop.install()
    except ImportError:
        pass
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
''')

# Each run gets its own name prefix (RUN), so creates never collide with an earlier run's.
CREATE_LUA = textwrap.dedent('''
    counter = 0
    request = function()
      counter = counter + 1
      local name = string.format("c-RUN-%d", counter)
      local body = '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"' .. name ..
        '"},"spec":{"containers":[{"name":"main","image":"nginx:1.25"}]}}'
      return wrk.format("POST", nil, {["Content-Type"]="application/json"}, body)
    end
''')


_runs = [0]


def wrk(url: str, conns: int, script: str | None = None) -> float:
    cmd = taskset(1) + ["wrk", "-t1", f"-c{conns}", f"-d{SECONDS}s", "--latency", url]
    if script:
        _runs[0] += 1
        run_script = f"{script}.{_runs[0]}.lua"
        with open(script) as f, open(run_script, "w") as g:
            g.write(f.read().replace("RUN", str(_runs[0])))
        cmd += ["-s", run_script]
    out = subprocess.run(cmd, capture_output=True, text=True).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx and int(non2xx.group(1)) > 0:
        print(f"  warning: {non2xx.group(1)} non-2xx responses for {url}")
    return float(m.group(1)) if m else 0.0


def main() -> None:
    if not shutil.which("wrk"):
        sys.exit("this benchmark needs wrk (apt-get install wrk)")
    k = K1s("--no-controllers", cpu=0)
    tmp = tempfile.mkdtemp()
    try:
        base = f"{k.url}/api/v1/namespaces/default/pods"
        for i in range(1000):
            http_json("POST", base, pod(f"p-{i:04d}"))
        one = http_json("GET", f"{base}/p-0000")
        pod_file = os.path.join(tmp, "pod.json")
        with open(pod_file, "wb") as f:
            f.write(json.dumps(one, separators=(",", ":")).encode())
        port = 20000 + os.getpid() % 20000
        triv = subprocess.Popen(taskset(0) + [sys.executable, "-c", TRIVIAL, str(port),
                                              pod_file])
        time.sleep(1.0)
        # creates go to their own namespace so LIST keeps measuring exactly 1,000 pods
        http_json("POST", f"{k.url}/api/v1/namespaces",
                  {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench-create"}})
        create_url = f"{k.url}/api/v1/namespaces/bench-create/pods"
        lua = os.path.join(tmp, "create.lua")
        with open(lua, "w") as f:
            f.write(CREATE_LUA)
        rows = []
        for conns in (1, 32):
            raw = median([wrk(f"http://127.0.0.1:{port}/x", conns) for _ in range(REPEATS)])
            get = median([wrk(f"{base}/p-0000", conns) for _ in range(REPEATS)])
            lst = median([wrk(base, conns) for _ in range(REPEATS)])
            crt = median([wrk(create_url, conns, lua) for _ in range(REPEATS)])
            rows.append((conns, raw, get, lst, crt))
        triv.terminate()
        triv.wait()
        print(f"{'clients':>7} | {'raw aiohttp':>11} | {'GET pod':>9} | {'GET/raw':>7} | "
              f"{'LIST 1000':>9} | {'CREATE':>8}   (requests/s, median of {REPEATS}x{SECONDS}s)")
        for conns, raw, get, lst, crt in rows:
            print(f"{conns:>7} | {raw:>11.0f} | {get:>9.0f} | {get / raw:>7.2f} | {lst:>9.1f} | "
                  f"{crt:>8.0f}")
        print("goal: GET/raw >= 0.50")
    finally:
        k.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
