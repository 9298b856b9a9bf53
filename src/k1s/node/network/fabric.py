"""Pods of different nodes on one machine reaching each other: the fabric.

When several nodes run on one machine (several `k1s node` processes, or tests), each node's
bridge sits in its own node namespace. The fabric is one more namespace, `<prefix>-fabric`,
holding a bridge `k1sfab`; each node namespace joins it with a veth pair (`fab0` in the node
namespace, `fab<hash of node>` on the fabric bridge) and routes every peer node's pod CIDR
"via <peer's bridge address> dev fab0 onlink". The peer answers ARP for its bridge address on
fab0 (Linux answers for any local address), so no transit addresses are needed, and node
namespaces forward between fab0 and their bridge (ip_forward=1 inside them only).

Nothing here touches the root namespace, and the fabric has no way out: no traffic leaves the
machine. Blocking calls (netlink): run them in a worker thread from asyncio code.
"""

from __future__ import annotations

import hashlib
import os
import socket

from . import links, netns
from .bridge import NodeNetwork

FABRIC_BRIDGE = "k1sfab"
NODE_IFNAME = "fab0"
RTPROT_K1S = 77          # our routes' protocol tag, so stale ones are found and only ours go


def fabric_netns_name(prefix: str) -> str:
    return f"{netns.check_prefix(prefix)}-fabric"


def fabric_ifname(node: NodeNetwork) -> str:
    return "fab" + hashlib.sha256(node.name.encode()).hexdigest()[:12]


def _forwarding_on() -> None:
    # /proc/sys/net is the namespace of the thread that opens it: run inside the node's
    with open("/proc/sys/net/ipv4/ip_forward", "w") as f:
        f.write("1")


class Fabric:
    """The machine's fabric for one prefix. `attach(node)` joins a node namespace (idempotent);
    `route(node, peers)` makes the node's routes to its peers exactly `peers`."""

    def __init__(self, prefix: str = netns.DEFAULT_PREFIX):
        self.prefix = netns.check_prefix(prefix)
        self.name = fabric_netns_name(prefix)
        self.path = netns.path_of(self.name)

    def ensure(self) -> None:
        netns.create(self.name)
        with links.rtnl(self.path) as ipr:
            links.up(ipr, ipr.link_lookup(ifname="lo")[0])
            br = links.ensure_bridge(ipr, FABRIC_BRIDGE)
            links.up(ipr, br["index"])

    def attach(self, node: NodeNetwork) -> None:
        """Join the node's namespace to the fabric: veth pair, both ends up, the fabric end on
        the fabric bridge, forwarding on inside the node namespace."""
        self.ensure()
        node.ensure_once()
        outer = fabric_ifname(node)
        with links.rtnl(self.path) as fab, links.rtnl(node.path) as nipr:
            end = links.find_link(fab, outer)
            inner = links.find_link(nipr, NODE_IFNAME)
            paired = (end is not None and inner is not None
                      and end.get("link") == inner["index"]
                      and end.get("IFLA_LINK_NETNSID") is not None)
            if not paired:
                if end is not None:
                    fab.link("del", index=end["index"])
                if links.find_link(nipr, NODE_IFNAME) is not None:
                    nipr.link("del", index=nipr.link_lookup(ifname=NODE_IFNAME)[0])
                fd = os.open(node.path, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    fab.link("add", ifname=outer, kind="veth",
                             peer={"ifname": NODE_IFNAME, "net_ns_fd": fd})
                finally:
                    os.close(fd)
                end = links.find_link(fab, outer)
                inner = links.find_link(nipr, NODE_IFNAME)
            br = links.find_link(fab, FABRIC_BRIDGE)
            if end.get("master") != br["index"]:
                fab.link("set", index=end["index"], master=br["index"])
            links.up(fab, end["index"])
            links.up(nipr, inner["index"])
        netns.in_netns(node.path, _forwarding_on)

    def route(self, node: NodeNetwork, peers: list[NodeNetwork]) -> None:
        """Route each peer's pod CIDR through its bridge address over fab0, and drop routes
        to nodes no longer among `peers` (only routes this module added)."""
        want = {}
        for p in peers:
            if p.name == node.name:
                continue
            if p.cidr.overlaps(node.cidr):
                raise ValueError(f"pod CIDR {p.cidr} of {p.node_name} overlaps {node.cidr} "
                                 f"of {node.node_name}")
            want[(str(p.cidr.network_address), p.cidr.prefixlen)] = p.gateway_ip
        with links.rtnl(node.path) as ipr:
            fab0 = ipr.link_lookup(ifname=NODE_IFNAME)
            if not fab0:
                raise RuntimeError(f"{node.name} is not attached to the fabric")
            have = {}
            for r in ipr.get_routes(family=socket.AF_INET, table=254):
                if r.get("proto") == RTPROT_K1S:
                    have[(r.get("dst"), r["dst_len"])] = r.get("gateway")
            for (dst, plen), gw in have.items():
                if want.get((dst, plen)) != gw:
                    ipr.route("del", dst=f"{dst}/{plen}", table=254)
            for (dst, plen), gw in want.items():
                if have.get((dst, plen)) != gw:
                    ipr.route("replace", dst=f"{dst}/{plen}", gateway=gw, oif=fab0[0],
                              flags=["onlink"], proto=RTPROT_K1S)

    def detach(self, node: NodeNetwork) -> None:
        """Remove the node's veth pair (its routes go with fab0). Safe to repeat."""
        if not netns.is_netns(self.path):
            return
        with links.rtnl(self.path) as fab:
            end = links.find_link(fab, fabric_ifname(node))
            if end is not None:
                fab.link("del", index=end["index"])

    def teardown(self) -> None:
        netns.remove(self.name)

