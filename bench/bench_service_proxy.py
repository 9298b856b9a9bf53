#!/usr/bin/env python3
"""The service proxy's cost: HTTP requests from a pod to nginx through a ClusterIP Service
against the same requests straight to the nginx pod's IP, in the same run.

On `k1s up`'s real node: an nginx pod behind a ClusterIP Service, and a client pod running a
small load generator (the host's Python, seen through the container's view of the host),
started with one `kubectl exec`. Each request opens a new TCP connection, sends
`GET / HTTP/1.0` and reads the answer to EOF (the proxy's whole path: accept, backend
connect from the node namespace, relay both ways, nginx's close passed on). Two phases per target:
- latency: one connection at a time; p50 and p99 per request, and the requests/s that gives;
- throughput: --concurrency connections at once (threads), requests/s.
Targets alternate round by round (--rounds) so a noisy moment hits both; latencies are pooled
over rounds, requests/s are medians over rounds.

Needs root (the real node runs pods in namespaces). Takes well under a minute.

    python bench/bench_service_proxy.py [--seconds 2] [--rounds 2] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src"))

from _common import median  # noqa: E402
from bench_pod_io import Cluster  # noqa: E402  (k1s up with its real node, torn down after)

MANIFEST = [
    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "labels": {"app": "web"}},
     "spec": {"containers": [{"name": "nginx", "image": "nginx", "readinessProbe": {
         "tcpSocket": {"port": 80}, "periodSeconds": 1}}]}},
    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "load"},
     "spec": {"containers": [{"name": "c", "image": "busybox",
                              "command": ["sleep", "3600"]}]}},
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
     "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 80}]}},
]

# the load generator, run inside the client pod: argv = seconds rounds concurrency target...
LOAD = r"""
import json, socket, sys, threading, time
seconds, rounds, conc = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
targets = sys.argv[4:]
REQ = b"GET / HTTP/1.0\r\nHost: web\r\n\r\n"

def request(host):
    s = socket.create_connection((host, 80), timeout=10)
    try:
        s.sendall(REQ)     # no half-close: nginx closes first and keeps the TIME_WAITs, so
                           # the client's ephemeral ports never run out
        n = 0
        while True:
            b = s.recv(65536)
            if not b:
                break
            n += len(b)
        if n == 0:
            raise OSError("empty answer")
    finally:
        s.close()

out = {t: {"lat": [], "seq_rps": [], "conc_rps": [], "errors": 0} for t in targets}
for t in targets:                      # warm up: first connections, caches
    for _ in range(20):
        request(t)
for _ in range(rounds):
    for t in targets:
        r = out[t]
        end = time.perf_counter() + seconds
        n = 0
        t0 = time.perf_counter()
        while time.perf_counter() < end:
            a = time.perf_counter()
            try:
                request(t)
            except OSError:
                r["errors"] += 1
                continue
            r["lat"].append(time.perf_counter() - a)
            n += 1
        r["seq_rps"].append(n / (time.perf_counter() - t0))
        counts = [0] * conc
        def worker(i):
            while time.perf_counter() < end2:
                try:
                    request(t)
                    counts[i] += 1
                except OSError:
                    r["errors"] += 1
        end2 = time.perf_counter() + seconds
        t0 = time.perf_counter()
        ths = [threading.Thread(target=worker, args=(i,)) for i in range(conc)]
        for th in ths:
            th.start()
        for th in ths:
            th.join()
        r["conc_rps"].append(sum(counts) / (time.perf_counter() - t0))
print(json.dumps(out))
"""


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=2.0, help="per phase, target and round")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--concurrency", type=int, default=8)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root: the real node runs pods in namespaces")
    c = Cluster()
    left: list[str] = []
    try:
        c.kubectl("create", "-f", "-", input="\n".join(map(json.dumps, MANIFEST)))
        c.kubectl("wait", "--for=condition=Ready", "pod/web", "pod/load", "--timeout=120s",
                  timeout=150)
        svc_ip = json.loads(c.kubectl("get", "svc", "web", "-o", "json"))["spec"]["clusterIP"]
        pod_ip = json.loads(c.kubectl("get", "pod", "web", "-o", "json"))["status"]["podIP"]
        # the Service answers once its EndpointSlice reached the node (Ready came first)
        c.kubectl("exec", "load", "--", "sh", "-c",
                  f"for i in $(seq 100); do timeout 5 wget -qO- http://{svc_ip}/ >/dev/null "
                  f"&& exit 0; sleep 0.2; done; exit 1")
        raw = c.kubectl("exec", "load", "--", sys.executable, "-c", LOAD, str(args.seconds),
                        str(args.rounds), str(args.concurrency), svc_ip, pod_ip, timeout=300)
        res = json.loads(raw.strip().splitlines()[-1])
        print(f"HTTP GET / to nginx from a pod, a new connection per request; "
              f"{args.rounds} rounds of {args.seconds:g} s per phase")
        print(f"  {'target':<28} {'p50 ms':>8} {'p99 ms':>8} {'req/s 1 conn':>13} "
              f"{f'req/s {args.concurrency} conns':>15} {'errors':>7}")
        rows = {}
        for label, ip in ((f"ClusterIP {svc_ip}", svc_ip), (f"pod IP {pod_ip}", pod_ip)):
            r = res[ip]
            rows[ip] = (pct(r["lat"], 0.5) * 1e3, pct(r["lat"], 0.99) * 1e3,
                        median(r["seq_rps"]), median(r["conc_rps"]))
            print(f"  {label:<28} {rows[ip][0]:8.3f} {rows[ip][1]:8.3f} {rows[ip][2]:13.0f} "
                  f"{rows[ip][3]:15.0f} {r['errors']:7d}")
        s, d = rows[svc_ip], rows[pod_ip]
        print(f"  through the proxy: p50 +{s[0] - d[0]:.3f} ms, p99 +{s[1] - d[1]:.3f} ms; "
              f"req/s {s[2] / d[2]:.2f}x (1 conn), {s[3] / d[3]:.2f}x "
              f"({args.concurrency} conns) of direct")
    finally:
        left = c.stop()
    if left:
        print(f"WARNING: k1s up left these behind (removed now): {left}")


if __name__ == "__main__":
    main()
