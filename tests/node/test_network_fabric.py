"""Several nodes on one machine: the fabric namespace joins node namespaces so pods of
different nodes reach each other, with no NAT, nothing in the root namespace, and routes that
follow the set of peers.

Every namespace carries a prefix unique to the test run and is removed by a finalizer; traffic
flows only between namespaces the test created.
"""

from __future__ import annotations

import os
import socket
import uuid

import pytest

from k1s.node.network import NodeNetwork, PodNetwork, links, netns
from k1s.node.network.fabric import NODE_IFNAME, Fabric, fabric_ifname

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="network namespaces, veths and bridges need root "
                                       "(CI runs as root)")

TIMEOUT = 20.0


def pod_on(node: NodeNetwork, ip: str) -> PodNetwork:
    pod = PodNetwork(node, str(uuid.uuid4()))
    pod.setup(ip)
    return pod


def connect(server: PodNetwork, client: PodNetwork, target_ip: str, timeout: float = TIMEOUT):
    """(what came back, the client address the server saw), or the client's OSError (a node
    that does not forward drops the SYN: a short timeout then ends the wait)."""
    srv = netns.socket_in(server.path)
    cli = netns.socket_in(client.path)
    with srv, cli:
        srv.settimeout(TIMEOUT)
        cli.settimeout(timeout)
        srv.bind(("0.0.0.0", 0))
        srv.listen(1)
        try:
            cli.connect((target_ip, srv.getsockname()[1]))
        except OSError as e:
            return e
        cli.settimeout(TIMEOUT)
        conn, peer = srv.accept()
        with conn:
            cli.sendall(b"x")
            conn.sendall(conn.recv(8))
            return cli.recv(8), peer[0]


def test_pods_of_two_nodes_reach_each_other_through_the_fabric(prefix):
    a = NodeNetwork("node-a", "10.244.1.0/24", prefix=prefix)
    b = NodeNetwork("node-b", "10.244.2.0/24", prefix=prefix)
    pa, pb = pod_on(a, "10.244.1.2"), pod_on(b, "10.244.2.2")
    # not joined: node A has no route to node B's pods
    assert isinstance(connect(pb, pa, "10.244.2.2", timeout=2), OSError)

    fabric = Fabric(prefix)
    for _ in range(2):                                 # idempotent
        for n in (a, b):
            fabric.attach(n)
            fabric.route(n, [a, b])
    assert connect(pb, pa, "10.244.2.2") == (b"x", "10.244.1.2")     # no NAT
    assert connect(pa, pb, "10.244.1.2") == (b"x", "10.244.2.2")

    # a third node joins later; the others learn its route
    c = NodeNetwork("node-c", "10.244.3.0/24", prefix=prefix)
    pc = pod_on(c, "10.244.3.2")
    fabric.attach(c)
    for n in (a, b, c):
        fabric.route(n, [a, b, c])
    assert connect(pc, pa, "10.244.3.2") == (b"x", "10.244.1.2")
    assert connect(pb, pc, "10.244.2.2") == (b"x", "10.244.3.2")

    # node B leaves: its routes go from the others, and B is detached
    fabric.detach(b)
    fabric.detach(b)
    for n in (a, c):
        fabric.route(n, [a, c])
    assert isinstance(connect(pb, pa, "10.244.2.2", timeout=2), OSError)
    assert connect(pc, pa, "10.244.3.2") == (b"x", "10.244.1.2")
    with links.rtnl(fabric.path) as ipr:
        names = {m.get("ifname") for m in ipr.get_links()}
    assert fabric_ifname(b) not in names and fabric_ifname(a) in names
    with links.rtnl(b.path) as ipr:
        assert not ipr.link_lookup(ifname=NODE_IFNAME)


def test_the_fabric_never_reaches_the_root_namespace(prefix):
    a = NodeNetwork("node-a", "10.244.1.0/24", prefix=prefix)
    b = NodeNetwork("node-b", "10.244.2.0/24", prefix=prefix)
    fabric = Fabric(prefix)
    for n in (a, b):
        fabric.attach(n)
        fabric.route(n, [a, b])
    with links.rtnl("/proc/self/ns/net") as ipr:
        root_links = {m.get("ifname") for m in ipr.get_links()}
        root_routes = [r.get("dst") for r in ipr.route("dump", family=socket.AF_INET)]
    assert not root_links & {NODE_IFNAME, fabric_ifname(a), fabric_ifname(b), "k1sfab"}
    assert not [d for d in root_routes if d and d.startswith("10.244.")]
    # the node namespaces route only pod CIDRs: no default route, no way off the machine
    for n in (a, b):
        with links.rtnl(n.path) as ipr:
            assert all(r["dst_len"] > 0 for r in ipr.get_routes(family=socket.AF_INET,
                                                                 table=254))


def test_overlapping_pod_cidrs_are_refused(prefix):
    a = NodeNetwork("node-a", "10.244.1.0/24", prefix=prefix)
    b = NodeNetwork("node-b", "10.244.0.0/16", prefix=prefix)
    fabric = Fabric(prefix)
    fabric.attach(a)
    with pytest.raises(ValueError, match="overlaps"):
        fabric.route(a, [a, b])
