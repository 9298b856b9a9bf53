"""The service proxy's planner (network/proxy.py) as tables: which Services and ports are
proxied, the target port taken from the EndpointSlice port of the same name, which endpoints
take new connections (ready, else serving-and-terminating), and the balancer's round robin and
ClientIP affinity; then, briefly, the acting ServiceProxy those plans drive, over real network
namespaces (root only): relaying with half-close, retries, refusal, UDP flows, addresses."""

from __future__ import annotations

import pytest

from k1s.node.network.proxy import (DEFAULT_AFFINITY_TIMEOUT, ENDPOINT_SLICES, SERVICES,
                                    Balancer, ServicePort, affinity_timeout, backends,
                                    cluster_ips, conditions, plan_service, slice_service)


def svc(name="web", ns="default", ip="10.96.100.1", ports=None, **spec) -> dict:
    s = {"type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip] if ip else None,
         "ports": ports if ports is not None else
         [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": "web"}]}
    s.update(spec)
    return {"metadata": {"name": name, "namespace": ns}, "spec": s}


def ep(ip, ready=True, serving=None, terminating=None) -> dict:
    cond = {"ready": ready}
    if serving is not None:
        cond["serving"] = serving
    if terminating is not None:
        cond["terminating"] = terminating
    return {"addresses": [ip], "conditions": cond}


def eslice(*endpoints, ports=(("http", 8080, "TCP"),), service="web", ns="default",
           family="IPv4") -> dict:
    return {"metadata": {"name": f"{service}-x", "namespace": ns,
                         "labels": {"kubernetes.io/service-name": service}},
            "addressType": family,
            "ports": [{"name": n, "port": p, "protocol": pr} for n, p, pr in ports],
            "endpoints": list(endpoints)}


# --- which Services ------------------------------------------------------------------------

@pytest.mark.parametrize("spec,want", [
    ({"clusterIP": "None", "clusterIPs": ["None"]}, ()),                  # headless
    ({"clusterIP": "", "clusterIPs": None}, ()),
    ({"type": "ExternalName", "clusterIP": None, "clusterIPs": None,
      "externalName": "example.com"}, ()),
    ({"type": "NodePort"}, ("10.96.100.1",)),
    ({"type": "LoadBalancer"}, ("10.96.100.1",)),
    ({"clusterIPs": ["10.96.100.1", "fd00::1"]}, ("10.96.100.1",)),       # IPv4 only
    ({"clusterIPs": None}, ("10.96.100.1",)),                            # clusterIP alone
])
def test_services_with_a_real_cluster_ip_are_proxied(spec, want):
    assert cluster_ips(svc(**spec)) == want
    plan = plan_service(svc(**spec), [eslice(ep("10.244.0.5"))])
    assert plan.cluster_ips == want
    assert {k[0] for k in plan.ports} == set(want)


def test_headless_service_has_no_ports_and_nothing_skipped_to_report():
    plan = plan_service(svc(ip="None"), [eslice(ep("10.244.0.5"))])
    assert (plan.cluster_ips, plan.ports, plan.skipped) == ((), {}, [])


def test_the_dns_servers_address_is_never_proxied():
    plan = plan_service(svc("kube-dns", "kube-system", "10.96.0.10"), [eslice(ep("10.244.0.5"))],
                        skip_ips={"10.96.0.10"})
    assert plan.cluster_ips == () and plan.ports == {}
    assert plan.skipped == ["cluster IP 10.96.0.10 is served by the node's DNS server"]


# --- ports ----------------------------------------------------------------------------------

def test_each_port_gets_its_target_port_from_the_slice_port_of_the_same_name():
    ports = [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": "web"},
             {"name": "metrics", "port": 9100, "protocol": "TCP", "targetPort": 9100},
             {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 5353}]
    sl = eslice(ep("10.244.0.5"), ep("10.244.0.6"),
                ports=(("http", 8080, "TCP"), ("metrics", 9100, "TCP"), ("dns", 5353, "UDP")))
    plan = plan_service(svc(ports=ports), [sl])
    assert set(plan.ports) == {("10.96.100.1", 80, "TCP"), ("10.96.100.1", 9100, "TCP"),
                               ("10.96.100.1", 53, "UDP")}
    assert plan.ports[("10.96.100.1", 80, "TCP")].backends == \
        (("10.244.0.5", 8080), ("10.244.0.6", 8080))
    assert plan.ports[("10.96.100.1", 53, "UDP")].backends == \
        (("10.244.0.5", 5353), ("10.244.0.6", 5353))
    sp = plan.ports[("10.96.100.1", 9100, "TCP")]
    assert (sp.service, sp.name, sp.protocol) == ("default/web", "metrics", "TCP")


def test_pods_resolving_a_named_target_port_differently_come_from_their_own_slices():
    a = eslice(ep("10.244.0.5"), ports=(("http", 8080, "TCP"),))
    b = eslice(ep("10.244.0.6"), ports=(("http", 9090, "TCP"),))
    plan = plan_service(svc(), [a, b])
    assert plan.ports[("10.96.100.1", 80, "TCP")].backends == \
        (("10.244.0.5", 8080), ("10.244.0.6", 9090))


def test_an_unnamed_port_matches_the_unnamed_slice_port():
    ports = [{"port": 80, "protocol": "TCP", "targetPort": 8080}]
    sl = eslice(ep("10.244.0.5"), ports=(("", 8080, "TCP"),))
    sl["ports"][0].pop("name")
    plan = plan_service(svc(ports=ports), [sl])
    assert plan.ports[("10.96.100.1", 80, "TCP")].backends == (("10.244.0.5", 8080),)


def test_a_slice_port_of_another_name_or_protocol_gives_no_backend():
    assert backends([eslice(ep("10.244.0.5"), ports=(("other", 8080, "TCP"),))],
                    "http", "TCP") == ()
    assert backends([eslice(ep("10.244.0.5"), ports=(("http", 8080, "UDP"),))],
                    "http", "TCP") == ()


def test_sctp_ports_are_skipped_with_a_reason_and_the_others_kept():
    ports = [{"name": "http", "port": 80, "protocol": "TCP"},
             {"name": "sig", "port": 3868, "protocol": "SCTP"}]
    sl = eslice(ep("10.244.0.5"), ports=(("http", 80, "TCP"), ("sig", 3868, "SCTP")))
    plan = plan_service(svc(ports=ports), [sl])
    assert set(plan.ports) == {("10.96.100.1", 80, "TCP")}
    assert plan.skipped == ["port sig/SCTP: only TCP and UDP are proxied"]


def test_a_port_without_endpoints_is_planned_with_no_backends():
    plan = plan_service(svc(), [])
    assert plan.cluster_ips == ("10.96.100.1",)
    assert plan.ports[("10.96.100.1", 80, "TCP")].backends == ()


def test_ipv6_slices_and_bad_addresses_are_ignored():
    v6 = eslice({"addresses": ["fd00::5"], "conditions": {"ready": True}}, family="IPv6")
    bad = eslice({"addresses": ["not-an-ip"]}, {"addresses": []}, ep("10.244.0.7"))
    assert backends([v6, bad], "http", "TCP") == (("10.244.0.7", 8080),)


def test_an_endpoint_in_two_slices_is_one_backend():
    assert backends([eslice(ep("10.244.0.5")), eslice(ep("10.244.0.5"))], "http", "TCP") == \
        (("10.244.0.5", 8080),)


# --- ready and terminating endpoints ----------------------------------------------------------

@pytest.mark.parametrize("cond,want", [
    ({}, (True, True, False)),                          # unset: ready and serving
    ({"ready": False}, (False, True, False)),            # serving unset: true (kube-proxy)
    ({"ready": False, "terminating": True}, (False, True, True)),
    ({"ready": False, "serving": True, "terminating": True}, (False, True, True)),
    ({"ready": True, "serving": None}, (True, True, False)),
])
def test_conditions_default_as_kube_proxy_reads_them(cond, want):
    assert conditions({"conditions": cond}) == want


def test_ready_endpoints_only_when_there_are_some():
    sl = eslice(ep("10.244.0.5"), ep("10.244.0.6", ready=False),
                ep("10.244.0.7", ready=False, serving=True, terminating=True))
    assert backends([sl], "http", "TCP") == (("10.244.0.5", 8080),)


def test_serving_terminating_endpoints_when_none_is_ready():
    sl = eslice(ep("10.244.0.6", ready=False),                                   # not serving
                ep("10.244.0.7", ready=False, serving=True, terminating=True),
                ep("10.244.0.8", ready=False, serving=False, terminating=True))  # going away
    assert backends([sl], "http", "TCP") == (("10.244.0.7", 8080),)


def test_not_ready_and_not_terminating_endpoints_are_never_used():
    sl = eslice(ep("10.244.0.6", ready=False, serving=True, terminating=False))
    assert backends([sl], "http", "TCP") == ()


# --- affinity ---------------------------------------------------------------------------------

@pytest.mark.parametrize("spec,want", [
    ({}, None),
    ({"sessionAffinity": "None"}, None),
    ({"sessionAffinity": "ClientIP"}, DEFAULT_AFFINITY_TIMEOUT),
    ({"sessionAffinity": "ClientIP",
      "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}}}, 60),
])
def test_affinity_timeout(spec, want):
    assert affinity_timeout(svc(**spec)) == want
    plan = plan_service(svc(**spec), [eslice(ep("10.244.0.5"))])
    assert plan.ports[("10.96.100.1", 80, "TCP")].affinity_timeout == want


def port(*ips, timeout=None) -> ServicePort:
    return ServicePort("default/web", "http", "10.96.100.1", 80, "TCP",
                       tuple((ip, 8080) for ip in ips), timeout)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_round_robin_goes_through_every_backend_in_turn():
    b = Balancer(port("10.244.0.5", "10.244.0.6", "10.244.0.7"))
    picks = [b.pick("10.244.0.2")[0] for _ in range(6)]
    assert picks == ["10.244.0.5", "10.244.0.6", "10.244.0.7"] * 2


def test_no_backend_picks_nothing():
    assert Balancer(port()).pick("10.244.0.2") is None


def test_failed_backends_are_avoided_and_all_failed_gives_none():
    b = Balancer(port("10.244.0.5", "10.244.0.6"))
    bad = ("10.244.0.5", 8080)
    assert {b.pick("c", {bad}) for _ in range(4)} == {("10.244.0.6", 8080)}
    assert b.pick("c", {bad, ("10.244.0.6", 8080)}) is None


def test_client_ip_affinity_keeps_a_client_on_its_backend_until_the_timeout():
    clock = Clock()
    b = Balancer(port("10.244.0.5", "10.244.0.6", "10.244.0.7", timeout=60), clock=clock)
    first = b.pick("10.244.0.2")
    other = b.pick("10.244.0.3")
    assert other != first
    for _ in range(5):
        clock.now += 59                      # each new connection renews the affinity
        assert b.pick("10.244.0.2") == first
    clock.now += 61
    assert b.pick("10.244.0.2") != first     # expired: round robin moves on


def test_affinity_follows_a_backend_that_is_removed():
    b = Balancer(port("10.244.0.5", "10.244.0.6", timeout=60), clock=Clock())
    first = b.pick("10.244.0.2")
    rest = [ip for ip in ("10.244.0.5", "10.244.0.6") if (ip, 8080) != first]
    b.update(port(*rest, timeout=60))
    assert b.pick("10.244.0.2") == (rest[0], 8080)
    b.update(port(first[0], *rest, timeout=60))    # back again: the client stays where it went
    assert b.pick("10.244.0.2") == (rest[0], 8080)


def test_affinity_gives_way_to_a_failed_backend():
    b = Balancer(port("10.244.0.5", "10.244.0.6", timeout=60), clock=Clock())
    first = b.pick("10.244.0.2")
    second = b.pick("10.244.0.2", {first})
    assert second != first
    assert b.pick("10.244.0.2") == second       # the new choice is remembered


def test_turning_affinity_off_forgets_clients():
    b = Balancer(port("10.244.0.5", "10.244.0.6", timeout=60), clock=Clock())
    first = b.pick("10.244.0.2")
    b.update(port("10.244.0.5", "10.244.0.6"))
    assert b.pick("10.244.0.2") != first


def test_slices_are_indexed_by_their_service_name_label():
    assert slice_service(eslice(service="web", ns="shop")) == ["shop/web"]
    assert slice_service({"metadata": {"name": "x", "namespace": "shop"}}) == []


# --- the acting proxy over real namespaces ----------------------------------------------------
# Beside the planner, a check of what it drives: ServiceProxy fed by stand-in informers, with a
# node namespace and pod namespaces of the test's own (root only); backends are servers on
# sockets made inside pod namespaces, clients connect from another pod's namespace.

import asyncio  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import uuid  # noqa: E402

from k1s.node.network import NodeNetwork, PodNetwork, forward, netns  # noqa: E402
from k1s.node.network.proxy import ServiceProxy  # noqa: E402
from k1s.node.pods import AddressPool  # noqa: E402

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")
CIDR = "10.244.7.0/24"
TIMEOUT = 20.0           # bounds a hang on a noisy machine, never a timing assertion
IP = "10.96.100.1"


class FakeInformer:
    """What ServiceProxy uses of an Informer; put/delete call its handlers at once."""

    def __init__(self):
        self.items: dict[str, dict] = {}
        self.handlers = []
        self.indexers = {}

    def add_indexer(self, name, fn):
        self.indexers[name] = fn

    def add_handler(self, on_add=None, on_update=None, on_delete=None):
        self.handlers.append((on_add, on_update, on_delete))

    async def start(self):
        pass

    async def wait_synced(self, timeout=None):
        return True

    def get(self, name, namespace=None):
        return self.items.get(f"{namespace}/{name}")

    def list(self, namespace=None):
        return list(self.items.values())

    def by_index(self, name, value):
        return [o for o in self.items.values() if value in self.indexers[name](o)]

    def put(self, obj):
        key = f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"
        old = self.items.get(key)
        self.items[key] = obj
        for add, update, _ in self.handlers:
            add(obj) if old is None else update(old, obj)

    def delete(self, obj):
        key = f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"
        old = self.items.pop(key)
        for _, _, delete in self.handlers:
            delete(old)


class FakeInformers:
    def __init__(self):
        self.by: dict[str, FakeInformer] = {}

    def informer(self, resource):
        return self.by.setdefault(resource.plural, FakeInformer())


@pytest.fixture
async def cluster(prefix):
    """A node with three pods: two backends and a client; the proxy not started yet."""
    node = NodeNetwork("node-p", CIDR, prefix=prefix)
    pool = AddressPool(CIDR)
    await asyncio.to_thread(node.ensure)
    pods = []
    for _ in range(3):
        pod = PodNetwork(node, str(uuid.uuid4()))
        pods.append((pod, await asyncio.to_thread(pod.setup, pool.allocate(pod.uid))))
    informers = FakeInformers()
    proxy = ServiceProxy(informers, node, skip_ips={"10.96.0.10"})
    yield node, pods, informers, proxy
    await proxy.stop()


async def tagged_server(pod: PodNetwork, port: int, tag: bytes):
    """Reads until the client's EOF, then answers `tag:` + what it read and closes: a client
    that half-closes gets its answer only if the half-close went through."""
    async def handle(reader, writer):
        data = await reader.read()
        writer.write(tag + b":" + data)
        await writer.drain()
        writer.close()
    return await asyncio.start_server(handle, sock=forward.tcp_listener(pod.path, "0.0.0.0", port))


async def ask(path: str, ip: str, port: int, data: bytes) -> bytes:
    reader, writer = await forward.open_connection(path, ip, port, timeout=TIMEOUT)
    try:
        writer.write(data)
        writer.write_eof()
        return await asyncio.wait_for(reader.read(), TIMEOUT)
    finally:
        writer.close()


def ready_slice(*ips, port=8080, proto="TCP", name="http"):
    return eslice(*(ep(ip) for ip in ips), ports=((name, port, proto),))


@root_only
async def test_a_cluster_ip_relays_to_each_ready_backend_with_half_close(cluster):
    node, [(a, ip_a), (b, ip_b), (client, _)], inf, proxy = cluster
    servers = [await tagged_server(a, 8080, b"a"), await tagged_server(b, 8080, b"b")]
    inf.informer(SERVICES).put(svc(ip=IP))
    inf.informer(ENDPOINT_SLICES).put(ready_slice(ip_a, ip_b))
    await proxy.start()
    assert IP in await asyncio.to_thread(node.local_addresses)
    got = [await ask(client.path, IP, 80, b"hello %d" % i) for i in range(4)]
    assert sorted(got) == [b"a:hello 0", b"a:hello 2", b"b:hello 1", b"b:hello 3"] or \
        sorted(got) == [b"a:hello 1", b"a:hello 3", b"b:hello 0", b"b:hello 2"], got
    # a large body both ways goes through the relay's flow control intact
    big = os.urandom(4 << 20)
    answer = await ask(client.path, IP, 80, big)
    assert answer[2:] == big
    # one backend gone without its endpoint being removed yet: connections retry the other
    servers[1].close()
    await servers[1].wait_closed()
    assert {await ask(client.path, IP, 80, b"x") for _ in range(4)} == {b"a:x"}
    servers[0].close()


@root_only
async def test_no_ready_endpoint_refuses_and_a_deleted_service_lets_its_address_go(cluster):
    node, [(a, ip_a), _b, (client, _)], inf, proxy = cluster
    server = await tagged_server(a, 8080, b"a")
    services, slices = inf.informer(SERVICES), inf.informer(ENDPOINT_SLICES)
    services.put(svc(ip=IP))
    slices.put(eslice(ep(ip_a, ready=False)))
    await proxy.start()
    with pytest.raises(ConnectionRefusedError):
        await ask(client.path, IP, 80, b"x")
    slices.put(ready_slice(ip_a))
    await proxy.sync("default/web")
    assert await ask(client.path, IP, 80, b"x") == b"a:x"
    # a terminating pod still serves while no other is ready
    slices.put(eslice(ep(ip_a, ready=False, serving=True, terminating=True)))
    await proxy.sync("default/web")
    assert await ask(client.path, IP, 80, b"y") == b"a:y"
    services.delete(svc(ip=IP))
    await proxy.sync("default/web")
    assert await asyncio.to_thread(node.local_addresses) == []
    assert proxy.ports == {} and proxy.ip_users == {}
    server.close()


@root_only
async def test_ports_follow_a_service_update_and_stop_removes_everything(cluster):
    node, [(a, ip_a), _b, (client, _)], inf, proxy = cluster
    server = await tagged_server(a, 8080, b"a")
    services, slices = inf.informer(SERVICES), inf.informer(ENDPOINT_SLICES)
    services.put(svc(ip=IP))
    slices.put(ready_slice(ip_a))
    await proxy.start()
    assert await ask(client.path, IP, 80, b"x") == b"a:x"
    services.put(svc(ip=IP, ports=[{"name": "http", "port": 8000, "protocol": "TCP"}]))
    await proxy.sync("default/web")
    assert await ask(client.path, IP, 8000, b"x") == b"a:x"
    with pytest.raises(ConnectionRefusedError):
        await ask(client.path, IP, 80, b"x")
    await proxy.stop()
    assert await asyncio.to_thread(node.local_addresses) == []
    server.close()


@root_only
async def test_the_dns_address_is_left_alone_and_stale_addresses_are_removed(cluster):
    node, _pods, inf, proxy = cluster
    for ip in ("10.96.0.10", "10.96.200.9"):       # DNS's, and one a killed agent left
        await asyncio.to_thread(node.add_local_address, ip)
    inf.informer(SERVICES).put(svc("kube-dns", "kube-system", "10.96.0.10",
                                   ports=[{"name": "dns", "port": 53, "protocol": "UDP"}]))
    await proxy.start()
    assert proxy.ports == {}
    assert await asyncio.to_thread(node.local_addresses) == ["10.96.0.10"]
    await proxy.stop()
    assert await asyncio.to_thread(node.local_addresses) == ["10.96.0.10"]


class _UDPTag(asyncio.DatagramProtocol):
    def __init__(self, tag: bytes):
        self.tag = tag

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.transport.sendto(self.tag + b":" + data, addr)


@root_only
async def test_udp_flows_reach_a_backend_and_replies_come_from_the_cluster_ip(cluster):
    node, [(a, ip_a), (b, ip_b), (client, _)], inf, proxy = cluster
    loop = asyncio.get_running_loop()
    transports = []
    for pod, tag in ((a, b"a"), (b, b"b")):
        t, _ = await loop.create_datagram_endpoint(
            lambda tag=tag: _UDPTag(tag), sock=forward.udp_socket(pod.path, "0.0.0.0", 5353))
        transports.append(t)
    inf.informer(SERVICES).put(svc(ip=IP, ports=[{"name": "dns", "port": 53, "protocol": "UDP"}]))
    inf.informer(ENDPOINT_SLICES).put(ready_slice(ip_a, ip_b, port=5353, proto="UDP", name="dns"))
    await proxy.start()

    def exchange(n):
        """n datagrams from one client socket, then one from a second socket."""
        out = []
        for s_count in (n, 1):
            cli = netns.socket_in(client.path, socket.AF_INET, socket.SOCK_DGRAM)
            with cli:
                cli.settimeout(TIMEOUT)
                for i in range(s_count):
                    cli.sendto(b"q%d" % i, (IP, 53))
                    out.append(cli.recvfrom(512))
        return out

    try:
        got = await asyncio.to_thread(exchange, 3)
    finally:
        for t in transports:
            t.close()
    assert all(frm == (IP, 53) for _, frm in got)
    tags = [data.split(b":")[0] for data, _ in got]
    assert len(set(tags[:3])) == 1             # one flow: one backend
    assert tags[3] != tags[0]                   # a new client goes round robin
    assert [data.split(b":")[1] for data, _ in got] == [b"q0", b"q1", b"q2", b"q0"]


def test_node_ports_are_planned_on_the_node_address_for_their_types_only():
    ports = [{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080}]
    sl = eslice(ep("10.244.0.5"))
    plan = plan_service(svc(type="NodePort", ports=ports), [sl], node_ip="127.0.0.1")
    np = plan.ports[("127.0.0.1", 30080, "TCP")]
    assert np.node_port and np.backends == (("10.244.0.5", 8080),)
    assert not plan.ports[("10.96.100.1", 80, "TCP")].node_port     # the ClusterIP as ever
    assert "127.0.0.1" not in plan.cluster_ips                      # no address to hold
    # no node address given, or a type without node ports: nothing on the node
    assert ("127.0.0.1", 30080, "TCP") not in plan_service(
        svc(type="NodePort", ports=ports), [sl]).ports
    assert ("127.0.0.1", 30080, "TCP") not in plan_service(
        svc(type="ClusterIP", ports=ports), [sl], node_ip="127.0.0.1").ports
    lb = plan_service(svc(type="LoadBalancer", ports=ports), [sl], node_ip="127.0.0.1")
    assert ("127.0.0.1", 30080, "TCP") in lb.ports
