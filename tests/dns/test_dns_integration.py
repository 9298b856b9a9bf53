"""The DNS server against the real API server, asked by real DNS clients (dnslib's client and,
where installed, `dig` from Debian's dnsutils): the tutorial's headless Service `nginx` with
EndpointSlices for web-0 and web-1, a readiness flip, NXDOMAIN, and UDP truncation with the TCP
retry for a Service of 200 endpoints."""

from __future__ import annotations

import asyncio
import copy
import shutil

import pytest
from dnslib import DNSRecord

from ctrl_util import eventually, running_controllers
from dns_objects import endpoint, endpoint_slice, nginx_objects, service
from k1s.api import registry
from k1s.dns.server import DNSServer

SVC = registry.core("services")
SLICES = registry.get("endpointslices.discovery.k8s.io")
Z = "cluster.local"
N = f"nginx.default.svc.{Z}"
DIG = shutil.which("dig")


@pytest.fixture
async def dns(api_server):
    made = {}

    def factory(ctx):
        made["srv"] = DNSServer(ctx, zone=Z)
        return made["srv"]

    async with running_controllers(api_server.url, factory) as c:
        await asyncio.wait_for(made["srv"].ready.wait(), 30)
        yield c, made["srv"]


async def query(port: int, name: str, qtype: str = "A", *, tcp: bool = False) -> DNSRecord:
    """Ask with dnslib's (blocking) client from a thread: the server runs in this loop."""
    q = DNSRecord.question(name, qtype)
    raw = await asyncio.to_thread(q.send, "127.0.0.1", port, tcp=tcp, timeout=5)
    r = DNSRecord.parse(raw)
    assert r.header.id == q.header.id
    return r


def values(r: DNSRecord) -> set[str]:
    return {str(a.rdata) for a in r.rr}


async def seed_nginx(c):
    svc, sl = nginx_objects()
    await c.create(SVC, svc, "default")
    return await c.create(SLICES, sl, "default")


async def test_headless_service_names_resolve(dns):
    c, srv = dns
    await seed_nginx(c)

    async def both():
        r = await query(srv.port, N)
        return r if values(r) == {"10.244.0.5", "10.244.0.6"} else None

    await eventually(both, 20)
    r = await query(srv.port, f"web-0.{N}")
    assert r.header.rcode == 0 and values(r) == {"10.244.0.5"}
    assert r.rr[0].ttl == 5
    r = await query(srv.port, f"_web._tcp.{N}", "SRV")
    assert values(r) == {f"0 50 80 web-0.{N}.", f"0 50 80 web-1.{N}."}
    r = await query(srv.port, "6.0.244.10.in-addr.arpa", "PTR")
    assert values(r) == {f"web-1.{N}."}
    r = await query(srv.port, f"web-9.{N}")
    assert r.header.rcode == 3 and not r.rr and r.auth[0].rtype == 6     # NXDOMAIN + SOA
    r = await query(srv.port, f"dns-version.{Z}", "TXT")
    assert values(r) == {'"1.0.1"'}
    r = await query(srv.port, "example.com")
    assert r.header.rcode == 5                                             # REFUSED


async def test_cluster_ip_service_and_its_ptr(dns):
    c, srv = dns
    created = await c.create(SVC, service("web", cluster_ip=None, ports=(("http", 80, "TCP"),)),
                             "default")
    ip = created["spec"]["clusterIP"]

    async def resolves():
        r = await query(srv.port, f"web.default.svc.{Z}")
        return values(r) == {ip}

    await eventually(resolves, 20)
    r = await query(srv.port, f"_http._tcp.web.default.svc.{Z}", "SRV")
    assert values(r) == {f"0 100 80 web.default.svc.{Z}."}
    rev = ".".join(reversed(ip.split("."))) + ".in-addr.arpa"
    assert values(await query(srv.port, rev, "PTR")) == {f"web.default.svc.{Z}."}


async def test_readiness_flip_follows_the_slice(dns):
    c, srv = dns
    sl = await seed_nginx(c)

    async def web1_present():
        return values(await query(srv.port, f"web-1.{N}")) == {"10.244.0.6"}

    await eventually(web1_present, 20)
    flipped = copy.deepcopy(sl)
    flipped["endpoints"][1]["conditions"] = {"ready": False, "serving": False,
                                             "terminating": False}
    sl = await c.update(SLICES, flipped)

    async def web1_gone():
        r = await query(srv.port, f"web-1.{N}")
        return r.header.rcode == 3 and values(await query(srv.port, N)) == {"10.244.0.5"}

    await eventually(web1_gone, 20)
    srv_answer = await query(srv.port, f"_web._tcp.{N}", "SRV")
    assert values(srv_answer) == {f"0 100 80 web-0.{N}."}
    assert (await query(srv.port, "6.0.244.10.in-addr.arpa", "PTR")).header.rcode == 3

    back = copy.deepcopy(sl)
    back["endpoints"][1]["conditions"] = {"ready": True, "serving": True, "terminating": False}
    await c.update(SLICES, back)
    await eventually(web1_present, 20)


async def test_truncation_then_tcp_for_200_endpoints(dns):
    c, srv = dns
    await c.create(SVC, service("big", cluster_ip="None"), "default")
    await c.create(SLICES, endpoint_slice(
        "big-1", "big", [endpoint(f"10.1.{i // 200}.{i % 200 + 1}", f"big-{i}")
                         for i in range(200)]), "default")
    name = f"big.default.svc.{Z}"

    async def all_there():
        r = await query(srv.port, name, tcp=True)
        return len(r.rr) == 200

    await eventually(all_there, 20)
    r = await query(srv.port, name)
    assert r.header.tc == 1 and not r.rr


@pytest.mark.skipif(DIG is None, reason="dig not installed (Debian package dnsutils)")
async def test_dig(dns):
    c, srv = dns
    await seed_nginx(c)
    await c.create(SVC, service("big", cluster_ip="None"), "default")
    await c.create(SLICES, endpoint_slice(
        "big-1", "big", [endpoint(f"10.1.0.{i + 1}", f"big-{i}") for i in range(200)]),
        "default")

    async def dig(*args: str) -> str:
        p = await asyncio.create_subprocess_exec(
            DIG, "@127.0.0.1", "-p", str(srv.port), "+tries=1", "+time=5", *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, _ = await p.communicate()
        return out.decode()

    async def ready():
        return len((await dig("+short", f"big.default.svc.{Z}")).split()) == 200 and \
            len((await dig("+short", N)).split()) == 2

    await eventually(ready, 20)
    assert (await dig("+short", f"web-0.{N}")).split() == ["10.244.0.5"]
    assert sorted((await dig("+short", f"_web._tcp.{N}", "SRV")).splitlines()) == [
        f"0 50 80 web-0.{N}.", f"0 50 80 web-1.{N}."]
    assert (await dig("+short", "-x", "10.244.0.5")).split() == [f"web-0.{N}."]
    out = await dig(f"web-9.{N}")
    assert "status: NXDOMAIN" in out and "SOA" in out
    # dig (EDNS 1232) gets TC on UDP and retries over TCP by itself
    out = await dig("+noedns", f"big.default.svc.{Z}")
    assert "Truncated, retrying in TCP mode" in out and "ANSWER: 200" in out


async def test_given_sockets_are_served(api_server):
    """The node agent hands over sockets it created (in a node's network namespace)."""
    import socket
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    port = udp.getsockname()[1]
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        tcp.bind(("127.0.0.1", port))
    except OSError:
        tcp.close()
        pytest.skip("the UDP port's TCP twin is taken")
    made = {}

    def factory(ctx):
        made["srv"] = DNSServer(ctx, sockets=[udp, tcp], zone=Z)
        return made["srv"]

    async with running_controllers(api_server.url, factory):
        await asyncio.wait_for(made["srv"].ready.wait(), 30)
        assert made["srv"].port == port
        for tcp_mode in (False, True):
            r = await query(port, f"dns-version.{Z}", "TXT", tcp=tcp_mode)
            assert values(r) == {'"1.0.1"'}


async def test_kube_dns_service_resolves(api_server, monkeypatch):
    """The API server makes the kube-dns Service at start, as kube_dns_service() describes it,
    and the DNS server built as `k1s up` builds it (controller(), from the environment) serves
    it like any other."""
    from k1s.dns.server import controller
    from k1s.dns.service import kube_dns_service
    monkeypatch.setenv("K1S_DNS_PORT", "0")
    made = {}

    def factory(ctx):
        made["srv"] = controller(ctx)
        return made["srv"]

    async with running_controllers(api_server.url, factory) as c:
        await asyncio.wait_for(made["srv"].ready.wait(), 30)
        port = made["srv"].port
        made_by_server = await c.get(SVC, "kube-dns", "kube-system")
        assert made_by_server["spec"]["clusterIP"] == "10.96.0.10"
        want = kube_dns_service()
        assert made_by_server["spec"]["ports"] == want["spec"]["ports"]
        assert made_by_server["metadata"]["labels"] == want["metadata"]["labels"]

        async def resolves():
            r = await query(port, f"kube-dns.kube-system.svc.{Z}")
            return values(r) == {"10.96.0.10"}

        await eventually(resolves, 20)
        r = await query(port, f"_dns._udp.kube-dns.kube-system.svc.{Z}", "SRV")
        assert values(r) == {f"0 100 53 kube-dns.kube-system.svc.{Z}."}
        r = await query(port, f"_dns-tcp._tcp.kube-dns.kube-system.svc.{Z}", "SRV")
        assert values(r) == {f"0 100 53 kube-dns.kube-system.svc.{Z}."}
        assert values(await query(port, "10.0.96.10.in-addr.arpa", "PTR")) == {
            f"kube-dns.kube-system.svc.{Z}."}
        # the default namespace exists: an empty non-terminal, not NXDOMAIN
        r = await query(port, f"default.svc.{Z}")
        assert r.header.rcode == 0 and not r.rr
        assert (await query(port, f"nope.svc.{Z}")).header.rcode == 3


async def test_garbage_and_abrupt_clients_do_not_stop_the_server(dns):
    c, srv = dns
    loop = asyncio.get_running_loop()

    class Sink(asyncio.DatagramProtocol):
        def __init__(self):
            self.got: list[bytes] = []

        def datagram_received(self, data, addr):
            self.got.append(data)

    sink = Sink()
    tr, _ = await loop.create_datagram_endpoint(lambda: sink,
                                                remote_addr=("127.0.0.1", srv.port))
    junks = (b"", b"\x00", b"\xff" * 11, b"\x12\x34\x01\x00" + b"\xff" * 40,
             bytes(range(256)))
    for junk in junks:
        tr.sendto(junk)
    # TCP: a length prefix promising more than is sent, then hang up; a half prefix; garbage
    for junk in (b"\xff\xff\x00\x01", b"\x00", b"\x00\x05hello"):
        _, w = await asyncio.open_connection("127.0.0.1", srv.port)
        w.write(junk)
        await w.drain()
        w.close()
    # two queries pipelined on one TCP connection: both answered, in order, on that connection
    r, w = await asyncio.open_connection("127.0.0.1", srv.port)
    qs = [DNSRecord.question(f"dns-version.{Z}", "TXT"), DNSRecord.question(f"nope.{Z}")]
    for q in qs:
        raw = q.pack()
        w.write(len(raw).to_bytes(2, "big") + raw)
    await w.drain()
    for q in qs:
        size = int.from_bytes(await r.readexactly(2), "big")
        got = DNSRecord.parse(await r.readexactly(size))
        assert got.header.id == q.header.id
    w.close()
    assert values(await query(srv.port, f"dns-version.{Z}", "TXT")) == {'"1.0.1"'}
    # the garbage that had a header got FORMERR back, the runts nothing
    async def formerrs():
        return len(sink.got) >= 2

    await eventually(formerrs, 10)
    tr.close()
    assert all(DNSRecord.parse(g).header.rcode == 1 for g in sink.got)


async def test_a_selector_less_headless_service_resolves_through_mirrored_slices(api_server):
    """A Service without selector and its hand-written Endpoints: the mirroring controller turns
    them into slices, and DNS (which reads slices only) answers with the addresses, hostnames
    included."""
    from k1s.controllers.endpointslicemirroring.controller import (
        EndpointSliceMirroringController)
    made = {}

    def factory(ctx):
        made["srv"] = DNSServer(ctx, zone=Z)
        return made["srv"]

    async with running_controllers(api_server.url, factory,
                                   EndpointSliceMirroringController) as c:
        await asyncio.wait_for(made["srv"].ready.wait(), 30)
        srv = made["srv"]
        await c.create(SVC, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ext"},
                             "spec": {"clusterIP": "None", "ports": [{"port": 5432}]}},
                       "default")
        await c.create(registry.core("endpoints"), {
            "apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "ext"},
            "subsets": [{"addresses": [{"ip": "192.0.2.7", "hostname": "db-0"},
                                       {"ip": "192.0.2.8"}],
                         "ports": [{"port": 5432}]}]}, "default")

        async def resolves():
            r = await query(srv.port, f"ext.default.svc.{Z}")
            return r if values(r) == {"192.0.2.7", "192.0.2.8"} else None
        await eventually(resolves, 20)
        r = await query(srv.port, f"db-0.ext.default.svc.{Z}")
        assert values(r) == {"192.0.2.7"}
