"""A node's network: the node network namespace `<prefix>-node-<node>` k1s creates, holding the
bridge `k1s0` with the first address of the node's pod CIDR, which every pod's veth joins.

The bridge lives in its own namespace, never in the root one: on these machines the root
namespace may connect only to loopback, and nothing routes from it to pod addresses. Whatever
must reach pods (probes, port-forward, cluster DNS) creates its socket in this namespace or a
pod's (see forward.py). The node namespace has no route out: no traffic leaves the machine.

Blocking calls (netlink through pyroute2): run them in a worker thread from asyncio code.
"""

from __future__ import annotations

import ipaddress
import threading

from . import links, netns
from .links import BRIDGE
from .pod import PodNetwork


class NodeNetwork:
    """The network of one node: its namespace, bridge and pod CIDR. `ensure()` builds it and
    is idempotent; `pods()` lists the pod namespaces already there (re-adoption)."""

    def __init__(self, node_name: str, pod_cidr: str, prefix: str = netns.DEFAULT_PREFIX):
        net = ipaddress.ip_network(pod_cidr, strict=False)
        if net.version != 4 or net.num_addresses < 4:
            raise ValueError(f"pod CIDR {pod_cidr!r}: want an IPv4 network with room for pods")
        self.node_name = node_name
        self.prefix = netns.check_prefix(prefix)
        self.cidr = net
        self.gateway = ipaddress.IPv4Interface(f"{next(net.hosts())}/{net.prefixlen}")
        self.name = netns.node_netns_name(prefix, node_name)
        self.path = netns.path_of(self.name)
        self._ready = False
        self._lock = threading.Lock()       # concurrent pod setups build the node once

    def __repr__(self) -> str:
        return f"NodeNetwork({self.name}, {self.cidr})"

    @property
    def gateway_ip(self) -> str:
        """The bridge's address: the pods' default route."""
        return str(self.gateway.ip)

    def ensure(self) -> None:
        """Create the node namespace, bring loopback up, create the bridge with the gateway
        address and bring it up. Safe to repeat, and converges after a crash at any step."""
        with self._lock:
            netns.create(self.name)
            with links.rtnl(self.path) as ipr:
                links.up(ipr, ipr.link_lookup(ifname="lo")[0])
                br = links.ensure_bridge(ipr, BRIDGE)
                links.set_only_address(ipr, br["index"], self.gateway)
                links.up(ipr, br["index"])
            self._ready = True

    def ensure_once(self) -> None:
        """`ensure` unless this object built the node and its namespace is still there."""
        if not (self._ready and self.exists()):
            self.ensure()

    def add_local_address(self, ip: str) -> None:
        """Make `ip` (a Service cluster IP such as kube-dns's 10.96.0.10) an address of the node
        namespace, on its loopback as a /32: pods reach it through their default route (the
        bridge), and a socket bound to it inside this namespace (forward.udp_socket) answers
        them, with no NAT and nothing in the root namespace. Idempotent."""
        addr = ipaddress.IPv4Address(ip)
        with links.rtnl(self.path) as ipr:
            lo = ipr.link_lookup(ifname="lo")[0]
            have = links.ipv4_addresses(ipr, lo)
            if ipaddress.IPv4Interface(f"{addr}/32") not in have:
                ipr.addr("add", index=lo, address=str(addr), prefixlen=32)

    def remove_local_address(self, ip: str) -> None:
        addr = ipaddress.IPv4Address(ip)
        with links.rtnl(self.path) as ipr:
            lo = ipr.link_lookup(ifname="lo")[0]
            if ipaddress.IPv4Interface(f"{addr}/32") in links.ipv4_addresses(ipr, lo):
                ipr.addr("del", index=lo, address=str(addr), prefixlen=32)

    def local_addresses(self) -> list[str]:
        """The addresses added by add_local_address (loopback's /32s, 127.0.0.1 aside)."""
        with links.rtnl(self.path) as ipr:
            lo = ipr.link_lookup(ifname="lo")[0]
            return sorted(str(a.ip) for a in links.ipv4_addresses(ipr, lo)
                          if a.network.prefixlen == 32 and not a.ip.is_loopback)

    def exists(self) -> bool:
        return netns.is_netns(self.path)

    def pod_names(self) -> dict[str, str]:
        """pod uid -> namespace name, for every pod namespace of this node."""
        head = netns.pod_netns_prefix(self.prefix, self.node_name)
        out = {}
        for n in netns.names(head):
            uid = n[len(head):]
            try:
                out[netns.check_uid(uid)] = n
            except ValueError:                  # not a name k1s makes: leave it alone
                continue
        return out

    def pods(self) -> dict[str, str | None]:
        """pod uid -> its IPv4 address (None when its eth0 is missing or has none), for every
        pod namespace of this node: a restarted agent adopts them (AddressPool.adopt) instead
        of handing their addresses out again."""
        return {uid: PodNetwork(self, uid).address() for uid in self.pod_names()}

    def teardown(self) -> None:
        """Remove the node namespace (its bridge goes with it). Pod namespaces are left alone:
        remove them first (PodNetwork.teardown) when the node goes away for good."""
        netns.remove(self.name)
        self._ready = False
