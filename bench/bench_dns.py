"""Cluster DNS benchmark (issue 5): how soon a pod turning Ready resolves, and queries/s.

1. Readiness-to-resolvable: the headless Service `nginx` has EndpointSlice endpoints web-0
   (always ready) and web-1. Each round marks web-1 not ready, waits until its name is NXDOMAIN,
   then marks it ready again and times, from just before the EndpointSlice update is sent, until
   `web-1.nginx.default.svc.cluster.local` answers its IP (polling over UDP as fast as answers
   come). Median and p99 over --flips rounds, beside two references from the same run: the
   update request's own round-trip (the API write floor) and one query for an already-present
   name. Upstream users wait up to ~30 s for this (kubernetes/kubernetes#92559: endpoint
   propagation + CoreDNS cache + negative caching).
2. Queries/s: a separate client process keeps --window UDP queries in flight for --seconds
   against a Service of 20 ready endpoints (A for a per-pod name, A for the Service, SRV with
   EDNS), with the server's response cache (wire.Responder) and, as the reference, without.

In-process API server and DNS server in one event loop (as `k1s up` would run them).

    python bench/bench_dns.py [--flips 100] [--seconds 3] [--window 32]
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src"))

from dnslib import EDNS0, DNSRecord  # noqa: E402

from k1s.api import registry  # noqa: E402
from k1s.client.rest import APIClient  # noqa: E402
from k1s.controllers.context import ControllerContext  # noqa: E402
from k1s.dns.server import DNSServer  # noqa: E402
from k1s.dns.wire import respond  # noqa: E402

SVC = registry.core("services")
SLICES = registry.get("endpointslices.discovery.k8s.io")
N = "nginx.default.svc.cluster.local"
UPSTREAM = ("upstream reference (kubernetes/kubernetes#92559): a pod's DNS name can take up to "
            "~30 s to resolve after it turns Ready")


def _ep(ip, host, ready):
    return {"addresses": [ip], "hostname": host,
            "conditions": {"ready": ready, "serving": ready, "terminating": False},
            "targetRef": {"kind": "Pod", "namespace": "default", "name": host}}


def _objects(n_big: int = 20):
    ports = [{"name": "web", "port": 80, "protocol": "TCP"}]
    svc = {"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": "nginx", "namespace": "default"},
           "spec": {"clusterIP": "None", "ports": ports}}
    sl = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
          "metadata": {"name": "nginx-bench", "namespace": "default",
                       "labels": {"kubernetes.io/service-name": "nginx"}},
          "addressType": "IPv4", "ports": ports,
          "endpoints": [_ep("10.244.0.5", "web-0", True), _ep("10.244.0.6", "web-1", True)]}
    big = copy.deepcopy(svc)
    big["metadata"]["name"] = "big"
    big_sl = copy.deepcopy(sl)
    big_sl["metadata"] = {"name": "big-bench", "namespace": "default",
                          "labels": {"kubernetes.io/service-name": "big"}}
    big_sl["endpoints"] = [_ep(f"10.245.0.{i + 1}", f"big-{i}", True) for i in range(n_big)]
    return [(SVC, svc), (SLICES, sl), (SVC, big), (SLICES, big_sl)]


class _Client(asyncio.DatagramProtocol):
    """A minimal asyncio UDP DNS client: one query at a time."""

    def __init__(self):
        self.waiter: asyncio.Future | None = None

    def datagram_received(self, data, addr):
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(data)

    async def ask(self, transport, q: bytes) -> DNSRecord:
        self.waiter = asyncio.get_running_loop().create_future()
        transport.sendto(q)
        return DNSRecord.parse(await asyncio.wait_for(self.waiter, 5))


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def ms(x):
    return f"{x * 1000:8.2f} ms"


async def latency(flips: int) -> int:
    from k1s.apiserver.server import APIServer
    tmp = tempfile.mkdtemp(prefix="k1s-bench-dns-")
    api = APIServer(os.path.join(tmp, "data"), port=0)
    await api.start()
    c = APIClient(api.url)
    ctx = ControllerContext.create(c, "bench-dns")
    srv = DNSServer(ctx)
    task = asyncio.create_task(srv.run())
    try:
        await asyncio.wait_for(srv.ready.wait(), 30)
        created = {}
        for r, obj in _objects():
            created[obj["metadata"]["name"]] = await c.create(r, obj, "default")
        sl = created["nginx-bench"]
        loop = asyncio.get_running_loop()
        client = _Client()
        tr, _ = await loop.create_datagram_endpoint(lambda: client,
                                                    remote_addr=("127.0.0.1", srv.port))
        q_web1 = DNSRecord.question(f"web-1.{N}").pack()
        q_web0 = DNSRecord.question(f"web-0.{N}").pack()
        while not (await client.ask(tr, q_web1)).rr:
            await asyncio.sleep(0.01)
        flip, write, present, polls = [], [], [], []
        for _ in range(flips):
            sl = copy.deepcopy(sl)
            sl["endpoints"][1]["conditions"] = {"ready": False, "serving": False,
                                                "terminating": False}
            sl = await c.update(SLICES, sl)
            while (await client.ask(tr, q_web1)).header.rcode != 3:
                await asyncio.sleep(0.001)
            t = time.perf_counter()
            await client.ask(tr, q_web0)
            present.append(time.perf_counter() - t)
            sl = copy.deepcopy(sl)
            sl["endpoints"][1]["conditions"] = {"ready": True, "serving": True,
                                                "terminating": False}
            t0 = time.perf_counter()
            sl = await c.update(SLICES, sl)
            write.append(time.perf_counter() - t0)
            n = 0
            while True:
                n += 1
                r = await client.ask(tr, q_web1)
                if r.rr:
                    break
            flip.append(time.perf_counter() - t0)
            polls.append(n)
        tr.close()
        print(f"readiness -> resolvable over {flips} flips (from sending the slice update):")
        print(f"  flip to resolvable  median {ms(statistics.median(flip))}   "
              f"p99 {ms(pct(flip, 99))}   max {ms(max(flip))}   "
              f"(queries until answered: median {statistics.median(polls):.0f})")
        print(f"  reference: slice update round-trip  median {ms(statistics.median(write))}   "
              f"p99 {ms(pct(write, 99))}")
        print(f"  reference: query, name present      median {ms(statistics.median(present))}   "
              f"p99 {ms(pct(present, 99))}")
        print(f"  {UPSTREAM}")
        return srv.port
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await ctx.close()
        await c.close()
        await api.stop()
        shutil.rmtree(tmp, ignore_errors=True)


async def throughput(seconds: float, window: int, cached: bool) -> None:
    from k1s.apiserver.server import APIServer
    tmp = tempfile.mkdtemp(prefix="k1s-bench-dns-")
    api = APIServer(os.path.join(tmp, "data"), port=0)
    await api.start()
    c = APIClient(api.url)
    ctx = ControllerContext.create(c, "bench-dns")
    srv = DNSServer(ctx)
    if not cached:      # the reference: every query parsed, answered and encoded anew
        srv.respond = lambda data, udp=True: respond(data, srv.data, udp=udp)
    task = asyncio.create_task(srv.run())
    try:
        await asyncio.wait_for(srv.ready.wait(), 30)
        for r, obj in _objects():
            await c.create(r, obj, "default")
        await asyncio.sleep(0.5)            # let the watch deliver the objects
        proc = await asyncio.create_subprocess_exec(
            sys.executable, os.path.abspath(__file__), "--load", str(srv.port), str(seconds),
            str(window), stdout=asyncio.subprocess.PIPE)
        out, _ = await proc.communicate()
        print(("  response cache on:  " if cached else "  response cache off: ") +
              out.decode().rstrip())
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await ctx.close()
        await c.close()
        await api.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def load(port: int, seconds: float, window: int) -> None:
    """Client process: keep `window` queries in flight, count answers."""
    names = [("big-7.big.default.svc.cluster.local", "A"),
             ("big.default.svc.cluster.local", "A"),
             ("_web._tcp.big.default.svc.cluster.local", "SRV")]
    queries = []
    for i in range(256):
        name, qtype = names[i % len(names)]
        q = DNSRecord.question(name, qtype)
        q.header.id = i
        if qtype == "SRV":      # 20 SRV records and their glue need EDNS's larger buffer
            q.add_ar(EDNS0(udp_len=4096))
        queries.append((q.pack(), qtype))
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect(("127.0.0.1", port))
    s.settimeout(0.5)
    counts = {"A": 0, "SRV": 0}
    i = answered = lost = bad = 0
    for _ in range(window):
        s.send(queries[i % 256][0])
        i += 1
    t0 = time.perf_counter()
    end = t0 + seconds
    while time.perf_counter() < end:
        try:
            data = s.recv(4096)
        except socket.timeout:
            lost += window          # refill the window after a stall
            for _ in range(window):
                s.send(queries[i % 256][0])
                i += 1
            continue
        answered += 1
        if data[3] & 0x0F or not int.from_bytes(data[6:8], "big"):
            bad += 1            # an error or an empty answer: the benchmark is void
        counts[queries[int.from_bytes(data[:2], "big") % 256][1]] += 1
        s.send(queries[i % 256][0])
        i += 1
    dt = time.perf_counter() - t0
    print(f"{answered / dt:8,.0f} /s (UDP, {window} in flight, one client process: "
          f"A {counts['A']:,}, SRV {counts['SRV']:,} answered in {dt:.1f} s; "
          f"stalls {lost // window}, wrong answers {bad})")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--load":
        load(int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]))
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--flips", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--window", type=int, default=32)
    a = ap.parse_args()
    asyncio.run(latency(a.flips))
    print("queries/s:")
    asyncio.run(throughput(a.seconds, a.window, True))
    asyncio.run(throughput(a.seconds, a.window, False))


if __name__ == "__main__":
    main()
