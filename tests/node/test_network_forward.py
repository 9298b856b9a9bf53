"""Reaching pods from the agent's event loop (port-forward, httpGet/tcpSocket probes) and
serving pods from the node namespace (the cluster DNS path), over real namespaces.

The servers run inside pod namespaces the test made; the main asyncio loop talks to them only
through sockets created inside those namespaces. Every namespace carries a prefix unique to
the test run and is removed by a finalizer.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid

import pytest

from k1s.node.network import NodeNetwork, PodNetwork, forward, netns
from k1s.node.pods import AddressPool

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="network namespaces, veths and bridges need root "
                                       "(CI runs as root)")

CIDR = "10.244.5.0/24"
TIMEOUT = 20.0          # generous: a noisy machine, never a timing assertion


@pytest.fixture
async def net(prefix):
    """A node with two pods (set up off the loop, as the agent must: pyroute2 is blocking)."""
    node = NodeNetwork("node-f", CIDR, prefix=prefix)
    pool = AddressPool(CIDR)
    pods = []
    for _ in range(2):
        pod = PodNetwork(node, str(uuid.uuid4()))
        ip = await asyncio.to_thread(pod.setup, pool.allocate(pod.uid))
        pods.append((pod, ip))
    return node, pods


async def echo_server(netns_path: str, host: str):
    """An asyncio echo server on a listener created inside `netns_path`; returns (server,
    port). Each line comes back prefixed with the server's own namespace inode."""
    tag = str(os.stat(netns_path).st_ino).encode()

    async def handle(reader, writer):
        while line := await reader.readline():
            writer.write(tag + b" " + line)
            await writer.drain()
        writer.close()

    sock = forward.tcp_listener(netns_path, host, 0)
    server = await asyncio.start_server(handle, sock=sock)
    return server, sock.getsockname()[1]


async def ask(reader, writer, text: bytes) -> bytes:
    writer.write(text)
    await writer.drain()
    return await asyncio.wait_for(reader.readline(), TIMEOUT)


async def test_open_connection_reaches_a_server_inside_a_pod(net):
    node, [(a, ip_a), (b, _ip_b)] = net
    tag_a = str(os.stat(a.path).st_ino).encode()
    # port-forward: the pod's own localhost
    server, port = await echo_server(a.path, "127.0.0.1")
    async with server:
        reader, writer = await forward.open_connection(a.path, "127.0.0.1", port, timeout=TIMEOUT)
        assert await ask(reader, writer, b"hello\n") == tag_a + b" hello\n"
        assert await ask(reader, writer, b"again\n") == tag_a + b" again\n"
        writer.close()
        await writer.wait_closed()
        # the pod's localhost is its own: another pod's loopback has nothing on that port
        assert not await forward.tcp_check(b.path, "127.0.0.1", port, timeout=TIMEOUT)

    # an httpGet probe with no host: the pod IP, from the node namespace
    server, port = await echo_server(a.path, "0.0.0.0")
    async with server:
        reader, writer = await forward.open_connection(node.path, ip_a, port, timeout=TIMEOUT)
        assert await ask(reader, writer, b"probe\n") == tag_a + b" probe\n"
        writer.close()
        await writer.wait_closed()
        assert await forward.tcp_check(node.path, ip_a, port, timeout=TIMEOUT)
        assert await forward.tcp_check(b.path, ip_a, port, timeout=TIMEOUT)


async def test_tcp_check_fails_on_a_closed_port(net):
    node, [(a, ip_a), _b] = net
    server, port = await echo_server(a.path, "0.0.0.0")
    server.close()
    await server.wait_closed()
    assert not await forward.tcp_check(node.path, ip_a, port, timeout=TIMEOUT)
    with pytest.raises(ConnectionRefusedError):
        await forward.open_connection(node.path, ip_a, port, timeout=TIMEOUT)


async def test_many_connections_share_the_loop(net):
    node, [(a, ip_a), _b] = net
    tag_a = str(os.stat(a.path).st_ino).encode()
    server, port = await echo_server(a.path, "0.0.0.0")
    async with server:
        async def one(i):
            reader, writer = await forward.open_connection(node.path, ip_a, port, timeout=TIMEOUT)
            try:
                return await ask(reader, writer, b"%d\n" % i)
            finally:
                writer.close()
        got = await asyncio.gather(*(one(i) for i in range(20)))
    assert got == [tag_a + b" %d\n" % i for i in range(20)]


class _Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.transport.sendto(b"answer:" + data, addr)


async def test_udp_socket_in_the_node_namespace_answers_a_pod(net):
    """The cluster DNS path: a datagram server bound on the bridge address inside the node
    namespace, queried from inside a pod namespace."""
    node, [(a, ip_a), _b] = net
    sock = forward.udp_socket(node.path, node.gateway_ip, 0)
    port = sock.getsockname()[1]
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(_Echo, sock=sock)

    def query():
        cli = netns.socket_in(a.path, socket.AF_INET, socket.SOCK_DGRAM)
        with cli:
            cli.settimeout(TIMEOUT)
            cli.sendto(b"web-0.nginx", (node.gateway_ip, port))
            return cli.recvfrom(512)

    try:
        data, frm = await asyncio.to_thread(query)
    finally:
        transport.close()
    assert data == b"answer:web-0.nginx"
    assert frm == (node.gateway_ip, port)


async def test_tcp_listener_in_the_node_namespace_serves_pods(net):
    node, [(a, ip_a), (b, ip_b)] = net
    tag_node = str(os.stat(node.path).st_ino).encode()
    server, port = await echo_server(node.path, node.gateway_ip)
    async with server:
        for pod in (a, b):
            reader, writer = await forward.open_connection(pod.path, node.gateway_ip, port,
                                                           timeout=TIMEOUT)
            assert await ask(reader, writer, b"q\n") == tag_node + b" q\n"
            writer.close()


async def test_a_service_address_in_the_node_namespace_answers_pods_on_port_53(net):
    """The kube-dns path as pods see it: resolv.conf names the Service's cluster IP; the node
    namespace holds that address, and UDP and TCP sockets bound to it there answer pods."""
    node, [(a, ip_a), (b, _ip_b)] = net
    dns_ip = "10.96.0.10"
    await asyncio.to_thread(node.add_local_address, dns_ip)
    await asyncio.to_thread(node.add_local_address, dns_ip)          # idempotent
    assert await asyncio.to_thread(node.local_addresses) == [dns_ip]
    udp = forward.udp_socket(node.path, dns_ip, 53)
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(_Echo, sock=udp)
    tcp = forward.tcp_listener(node.path, dns_ip, 53)
    tag_node = str(os.stat(node.path).st_ino).encode()

    async def handle(reader, writer):
        writer.write(tag_node + b" " + await reader.readline())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, sock=tcp)

    def query(pod):
        cli = netns.socket_in(pod.path, socket.AF_INET, socket.SOCK_DGRAM)
        with cli:
            cli.settimeout(TIMEOUT)
            cli.sendto(b"kubernetes.default", (dns_ip, 53))
            return cli.recvfrom(512)

    try:
        async with server:
            for pod in (a, b):
                assert await asyncio.to_thread(query, pod) == (b"answer:kubernetes.default",
                                                               (dns_ip, 53))
                reader, writer = await forward.open_connection(pod.path, dns_ip, 53,
                                                               timeout=TIMEOUT)
                assert await ask(reader, writer, b"axfr\n") == tag_node + b" axfr\n"
                writer.close()
    finally:
        transport.close()
    await asyncio.to_thread(node.remove_local_address, dns_ip)
    assert await asyncio.to_thread(node.local_addresses) == []
