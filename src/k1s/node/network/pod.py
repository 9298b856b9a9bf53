"""A pod's network: its own namespace `<prefix>-pod-<node>_<uid>` with `lo` up and `eth0`, one
end of a veth pair whose other end (`veth<hash of uid>`) sits on the node's bridge; eth0 holds
the pod's address from the node's pod CIDR, with the default route via the bridge address.

The pair is created in the node namespace with its peer placed directly in the pod namespace
under the name eth0 (one netlink request), so a crash never leaves a half-moved peer behind.
`setup` reads what is there and fixes only what differs, so re-running it after a crash at any
line converges; `teardown` deletes the veth (both ends go) and the namespace, and is safe to
repeat. Which address a pod gets is decided by the caller (pods.AddressPool).

Blocking calls (netlink through the lean `rtnl` client: this runs once per pod, and pyroute2
cost most of a pod's setup): run them in a worker thread from asyncio code.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
from typing import TYPE_CHECKING

from . import links, netns, rtnl

if TYPE_CHECKING:
    from .bridge import NodeNetwork

POD_IFNAME = "eth0"


def host_ifname(uid: str) -> str:
    """The node-side veth name: 15 characters at most (IFNAMSIZ), unique per uid in practice;
    the uid itself is kept as the link's alias for whoever reads `ip link`."""
    return "veth" + hashlib.sha256(uid.encode()).hexdigest()[:11]


class PodNetwork:
    def __init__(self, node: "NodeNetwork", uid: str):
        self.node = node
        self.uid = netns.check_uid(uid)
        self.name = netns.pod_netns_name(node.prefix, node.node_name, uid)
        self.path = netns.path_of(self.name)
        self.host_ifname = host_ifname(uid)

    def __repr__(self) -> str:
        return f"PodNetwork({self.name})"

    def exists(self) -> bool:
        return netns.is_netns(self.path)

    def _interface(self, ip: str) -> ipaddress.IPv4Interface:
        want = ipaddress.IPv4Interface(f"{ip}/{self.node.cidr.prefixlen}")
        if want.ip not in self.node.cidr or want.ip in (
                self.node.cidr.network_address, self.node.cidr.broadcast_address,
                self.node.gateway.ip):
            raise ValueError(f"pod address {ip} is not a pod address of {self.node.cidr}")
        return want

    def setup(self, ip: str) -> str:
        """Give the pod its namespace, eth0 with `ip` and the default route; return `ip`."""
        want = self._interface(ip)
        self.node.ensure_once()
        netns.create(self.name)
        with rtnl.Handle(self.node.path) as node_ipr, rtnl.Handle(self.path) as pod_ipr:
            links.up(pod_ipr, pod_ipr.link_lookup(ifname="lo")[0])
            host, eth0 = self._pair(node_ipr, pod_ipr)
            bridge = links.find_link(node_ipr, links.BRIDGE)
            if bridge is None:                  # deleted by hand: make it again
                self.node.ensure()
                bridge = links.find_link(node_ipr, links.BRIDGE)
            if host.get("master") != bridge["index"]:
                node_ipr.link("set", index=host["index"], master=bridge["index"])
            links.up(node_ipr, host["index"])
            links.set_only_address(pod_ipr, eth0["index"], want)
            links.up(pod_ipr, eth0["index"])
            pod_ipr.route("replace", dst="0.0.0.0/0", gateway=self.node.gateway_ip,
                          oif=eth0["index"])
        return str(want.ip)

    def _pair(self, node_ipr, pod_ipr):
        """The (host end, eth0) veth pair, created when missing; a lone end or a pair whose
        ends do not match (a crash, a stray link) is deleted and made again."""
        host = links.find_link(node_ipr, self.host_ifname)
        eth0 = links.find_link(pod_ipr, POD_IFNAME)
        if host is not None and eth0 is not None:
            if host.get("link") == eth0["index"] and host.get("IFLA_LINK_NETNSID") is not None:
                return host, eth0
        if host is not None:
            node_ipr.link("del", index=host["index"])
        if eth0 is not None and links.find_link(pod_ipr, POD_IFNAME) is not None:
            pod_ipr.link("del", index=eth0["index"])
        fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            node_ipr.link("add", ifname=self.host_ifname, kind="veth",
                          peer={"ifname": POD_IFNAME, "net_ns_fd": fd})
        finally:
            os.close(fd)
        host = links.find_link(node_ipr, self.host_ifname)
        try:
            node_ipr.link("set", index=host["index"], ifalias=self.uid)
        except Exception:                       # the alias is a courtesy for `ip link` readers
            pass
        return host, links.find_link(pod_ipr, POD_IFNAME)

    def address(self) -> str | None:
        """The IPv4 address eth0 holds now, or None (no namespace, no eth0, no address)."""
        if not self.exists():
            return None
        with rtnl.Handle(self.path) as ipr:
            eth0 = links.find_link(ipr, POD_IFNAME)
            if eth0 is None:
                return None
            addrs = links.ipv4_addresses(ipr, eth0["index"])
        return str(addrs[0].ip) if addrs else None

    def teardown(self) -> None:
        """Delete the veth pair and the pod namespace; nothing is left. Safe to repeat."""
        if self.node.exists():
            with rtnl.Handle(self.node.path) as ipr:
                host = links.find_link(ipr, self.host_ifname)
                if host is not None:
                    ipr.link("del", index=host["index"])
        netns.remove(self.name)
