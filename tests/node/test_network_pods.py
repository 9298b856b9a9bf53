"""Pod networking for real: a node namespace with its bridge, pod namespaces joined to it by
veth pairs, traffic between them over sockets created inside them, nothing routed from the
root namespace, idempotent setup, complete teardown, and re-adoption after a restart.

Every namespace here carries a prefix unique to the test run and is removed by a finalizer;
traffic only flows between namespaces the test created (no socket is made in the root
namespace except to inspect its routing table, which sends nothing).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ipaddress
import os
import socket
import subprocess
import uuid

import pytest

from k1s.node.network import NodeNetwork, PodNetwork, netns
from k1s.node.network import links
from k1s.node.pods import AddressPool

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="network namespaces, veths and bridges need root "
                                       "(CI runs as root)")

CIDR = "10.244.3.0/24"
TIMEOUT = 20.0          # generous: a noisy machine, never a timing assertion


@pytest.fixture
def node(prefix):
    n = NodeNetwork("node-a", CIDR, prefix=prefix)
    n.ensure()
    return n


def new_uid() -> str:
    return str(uuid.uuid4())


def make_pod(node: NodeNetwork, pool: AddressPool) -> tuple[PodNetwork, str]:
    uid = new_uid()
    pod = PodNetwork(node, uid)
    return pod, pod.setup(pool.allocate(uid))


def echo_once(server_netns: str, bind_ip: str, client_netns: str, target_ip: str) -> tuple:
    """A TCP echo: the listener is created in `server_netns`, the client in `client_netns`;
    returns (what came back, the client address the server saw)."""
    srv = netns.socket_in(server_netns)
    cli = netns.socket_in(client_netns)
    with srv, cli:
        srv.settimeout(TIMEOUT)
        cli.settimeout(TIMEOUT)
        srv.bind((bind_ip, 0))
        srv.listen(1)
        port = srv.getsockname()[1]
        cli.connect((target_ip, port))
        conn, peer = srv.accept()
        with conn:
            conn.settimeout(TIMEOUT)
            cli.sendall(b"ping\n")
            conn.sendall(conn.recv(64))
            return cli.recv(64), peer[0]


def links_in(path: str) -> dict[str, dict]:
    with links.rtnl(path) as ipr:
        out = {}
        for msg in ipr.get_links():
            idx = msg["index"]
            out[msg.get("ifname")] = {
                "up": msg.get("flags") & 1 == 1,
                "master": msg.get("master"),
                "addrs": sorted(str(a) for a in links.ipv4_addresses(ipr, idx)),
            }
        return out


def routes_in(path: str) -> list[tuple]:
    with links.rtnl(path) as ipr:
        return sorted((r.get("dst") or "0.0.0.0", r["dst_len"], r.get("gateway") or "")
                      for r in ipr.get_routes(family=socket.AF_INET, table=254))


def test_two_pods_on_one_bridge_reach_each_other(node):
    pool = AddressPool(CIDR)
    a, ip_a = make_pod(node, pool)
    b, ip_b = make_pod(node, pool)
    assert ip_a != ip_b
    got, seen_from = echo_once(a.path, "0.0.0.0", b.path, ip_a)
    assert got == b"ping\n"
    assert seen_from == ip_b           # the connection came from pod B, over the bridge
    got, seen_from = echo_once(b.path, ip_b, a.path, ip_b)
    assert got == b"ping\n" and seen_from == ip_a


def test_pod_reaches_its_node_bridge_address(node):
    pod, ip = make_pod(node, AddressPool(CIDR))
    assert node.gateway_ip == "10.244.3.1"
    got, seen_from = echo_once(node.path, node.gateway_ip, pod.path, node.gateway_ip)
    assert got == b"ping\n" and seen_from == ip
    # the pod's default route goes through the bridge address
    assert ("0.0.0.0", 0, node.gateway_ip) in routes_in(pod.path)


def test_root_namespace_has_no_route_to_pod_addresses(node):
    pool = AddressPool(CIDR)
    pods = [make_pod(node, pool) for _ in range(2)]
    node.add_local_address("10.96.0.10")            # a Service address (kube-dns) too
    private = [ipaddress.ip_network(CIDR), ipaddress.ip_network("10.96.0.0/12")]
    # the namespace this process (the agent) runs in: inspect it, send nothing
    with links.rtnl("/proc/self/ns/net") as ipr:
        for r in ipr.route("dump", family=socket.AF_INET):      # every table
            dst = r.get("dst")
            if dst is None or r["dst_len"] == 0:
                continue                             # the machine's own default route
            route = ipaddress.ip_network(f"{dst}/{r['dst_len']}", strict=False)
            for net in private:
                assert not route.overlaps(net), f"root namespace routes {route} ({net})"
        for msg in ipr.get_addr(family=socket.AF_INET):
            ip = ipaddress.ip_address(msg.get("IFA_ADDRESS"))
            assert not any(ip in net for net in private)
        root_links = {m.get("ifname") for m in ipr.get_links()}
    assert links.BRIDGE not in root_links
    assert not {p.host_ifname for p, _ip in pods} & root_links
    # the k1s links and addresses are all in the node namespace
    assert links.BRIDGE in links_in(node.path)
    assert node.local_addresses() == ["10.96.0.10"]


def test_setup_is_idempotent_and_converges_after_crashes(node):
    pool = AddressPool(CIDR)
    uid = new_uid()
    pod = PodNetwork(node, uid)
    ip = pool.allocate(uid)
    assert pod.setup(ip) == ip
    node_links, pod_links, pod_routes = links_in(node.path), links_in(pod.path), routes_in(pod.path)
    assert pod_links["eth0"]["addrs"] == [f"{ip}/24"] and pod_links["eth0"]["up"]
    assert pod_links["lo"]["up"]
    bridge_index = None
    with links.rtnl(node.path) as ipr:
        bridge_index = ipr.link_lookup(ifname=links.BRIDGE)[0]
    assert node_links[pod.host_ifname]["master"] == bridge_index
    assert node_links[pod.host_ifname]["up"]

    pod.setup(ip)
    node.ensure()
    assert links_in(node.path) == node_links
    assert links_in(pod.path) == pod_links and routes_in(pod.path) == pod_routes

    # crash states, each repaired by running setup again
    with links.rtnl(pod.path) as ipr:               # address and route lost, eth0 down
        idx = ipr.link_lookup(ifname="eth0")[0]
        ipr.addr("del", index=idx, address=ip, prefixlen=24)
        ipr.link("set", index=idx, state="down")
    with links.rtnl(node.path) as ipr:              # host end off the bridge and down
        idx = ipr.link_lookup(ifname=pod.host_ifname)[0]
        ipr.link("set", index=idx, master=0, state="down")
    pod.setup(ip)
    assert links_in(node.path) == node_links
    assert links_in(pod.path) == pod_links and routes_in(pod.path) == pod_routes

    with links.rtnl(node.path) as ipr:              # the veth pair gone (both ends)
        ipr.link("del", index=ipr.link_lookup(ifname=pod.host_ifname)[0])
    assert "eth0" not in links_in(pod.path)
    pod.setup(ip)
    assert set(links_in(node.path)) == set(node_links)
    assert links_in(pod.path)["eth0"]["addrs"] == [f"{ip}/24"]
    assert routes_in(pod.path) == pod_routes

    # a new address replaces the old one rather than adding a second
    other = pool.allocate(new_uid())
    pod.setup(other)
    assert links_in(pod.path)["eth0"]["addrs"] == [f"{other}/24"]

    # a namespace placeholder left between creating the file and mounting it
    uid2 = new_uid()
    pod2 = PodNetwork(node, uid2)
    open(pod2.path, "w").close()
    ip2 = pod2.setup(pool.allocate(uid2))
    assert pod2.address() == ip2
    got, _ = echo_once(pod.path, "0.0.0.0", pod2.path, other)
    assert got == b"ping\n"


def test_bad_addresses_are_refused(node):
    pod = PodNetwork(node, new_uid())
    for ip in ("10.244.3.0", "10.244.3.1", "10.244.3.255", "10.244.4.2", "192.0.2.7"):
        with pytest.raises(ValueError):
            pod.setup(ip)
    assert not pod.exists()


def test_teardown_leaves_nothing(prefix, node):
    pool = AddressPool(CIDR)
    pods = [make_pod(node, pool) for _ in range(3)]
    before = set(links_in(node.path))
    assert {p.host_ifname for p, _ in pods} <= before
    for pod, _ip in pods:
        pod.teardown()
        pod.teardown()                                  # repeating it is harmless
        assert not pod.exists() and pod.address() is None
    assert set(links_in(node.path)) == {"lo", links.BRIDGE}
    assert netns.names(f"{prefix}-pod-") == []
    assert node.pods() == {}
    node.teardown()
    assert netns.names(prefix + "-") == []
    # and nothing under the same names is visible to `ip netns` either
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert prefix not in listed


def test_restart_readopts_existing_pods_and_their_addresses(prefix, node):
    pool = AddressPool(CIDR)
    kept = {}
    for _ in range(3):
        pod, ip = make_pod(node, pool)
        kept[pod.uid] = ip
    other_node = NodeNetwork("node-b", "10.244.9.0/24", prefix=prefix)
    stranger, _ = make_pod(other_node, AddressPool("10.244.9.0/24"))

    # the agent restarts: new objects, a new pool, only what is on the machine
    node2 = NodeNetwork("node-a", CIDR, prefix=prefix)
    found = node2.pods()
    assert found == kept                               # the other node's pod is not ours
    pool2 = AddressPool(CIDR)
    for uid, ip in found.items():
        pool2.adopt(uid, ip)
    fresh = pool2.allocate(new_uid())
    assert fresh not in kept.values()
    # re-running setup with the adopted address keeps the pod as it was, and it still works
    uids = sorted(kept)
    pods = [PodNetwork(node2, uid) for uid in uids]
    for pod in pods:
        assert pod.setup(pool2.get(pod.uid)) == kept[pod.uid]
    got, seen = echo_once(pods[0].path, "0.0.0.0", pods[1].path, kept[uids[0]])
    assert got == b"ping\n" and seen == kept[uids[1]]
    assert stranger.exists()


def test_concurrent_setups_on_a_fresh_node_all_succeed(prefix):
    """The agent sets pods up from several worker threads; the first ones race to build the
    node namespace and its bridge."""
    node = NodeNetwork("node-c", CIDR, prefix=prefix)
    pool = AddressPool(CIDR)
    pods = [PodNetwork(node, new_uid()) for _ in range(8)]
    wanted = {p.uid: pool.allocate(p.uid) for p in pods}
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        got = list(ex.map(lambda p: p.setup(wanted[p.uid]), pods))
    assert got == [wanted[p.uid] for p in pods]
    assert node.pods() == wanted
    assert set(links_in(node.path)) == {"lo", links.BRIDGE} | {p.host_ifname for p in pods}
    got, seen = echo_once(pods[0].path, "0.0.0.0", pods[-1].path, wanted[pods[0].uid])
    assert got == b"ping\n" and seen == wanted[pods[-1].uid]


async def test_netlink_calls_refuse_to_run_on_the_event_loop(node):
    pod = PodNetwork(node, new_uid())
    with pytest.raises(RuntimeError, match="worker thread"):
        pod.setup("10.244.3.9")
    assert await asyncio.to_thread(pod.setup, "10.244.3.9") == "10.244.3.9"


def test_setup_rebuilds_a_lost_bridge_or_node_namespace(node):
    pool = AddressPool(CIDR)
    a, ip_a = make_pod(node, pool)
    b, ip_b = make_pod(node, pool)
    with links.rtnl(node.path) as ipr:                  # the bridge deleted by hand
        ipr.link("del", index=ipr.link_lookup(ifname=links.BRIDGE)[0])
    assert a.setup(ip_a) == ip_a and b.setup(ip_b) == ip_b
    assert echo_once(a.path, "0.0.0.0", b.path, ip_a) == (b"ping\n", ip_b)
    netns.remove(node.name)                             # the whole node namespace
    assert a.setup(ip_a) == ip_a and b.setup(ip_b) == ip_b
    assert links_in(node.path)[links.BRIDGE]["addrs"] == [f"{node.gateway_ip}/24"]
    assert echo_once(a.path, "0.0.0.0", b.path, ip_a) == (b"ping\n", ip_b)
    assert echo_once(node.path, node.gateway_ip, a.path, node.gateway_ip) == (b"ping\n", ip_a)
