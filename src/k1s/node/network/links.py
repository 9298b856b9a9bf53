"""Netlink (rtnetlink, through pyroute2) handles bound to one network namespace, and the few
link/address queries the node and pod modules share.

A handle's netlink socket is created by a helper thread inside the namespace (netns.socket_in),
so the handle talks to that namespace from any thread without forking (pyroute2's own
`netns=` argument forks a child process per socket). pyroute2's synchronous IPRoute runs its
own event loop: call these from a worker thread (asyncio.to_thread), never from a running loop.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket

from pyroute2 import IPRoute

from . import netns
from . import rtnl as rtnl_lean

NETLINK_ROUTE = 0
BRIDGE = "k1s0"          # the bridge in every node namespace


def rtnl(path: str) -> IPRoute:
    """An IPRoute handle for the namespace at `path` (close it, or use it as a context)."""
    rtnl_lean.refuse_event_loop()   # (pyroute2 would also try to run its loop inside ours)
    sock = netns.socket_in(path, socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_ROUTE)
    return _RTNL(sock.detach())


class _RTNL(IPRoute):
    """IPRoute on a stdlib event loop of its own: pyroute2 runs one per handle, and under
    `k1s up` the default loop policy is uvloop's, which cannot open netlink sockets."""

    def __init__(self, fileno: int):
        self._own_loop = asyncio.SelectorEventLoop()
        try:
            super().__init__(fileno=fileno, use_event_loop=self._own_loop)
        except BaseException:
            self._own_loop.close()
            raise

    def close(self, *args, **kwargs):
        try:
            return super().close(*args, **kwargs)
        finally:
            if not self._own_loop.is_closed():
                self._own_loop.close()


def find_link(ipr: IPRoute, name: str):
    """The link message of interface `name`, or None."""
    found = ipr.link_lookup(ifname=name)
    if not found:
        return None
    links = ipr.get_links(found[0])
    return links[0] if links else None


def ensure_bridge(ipr: IPRoute, name: str):
    """The bridge `name`, created if missing (another agent process creating it at the same
    moment is not an error). Returns its link message."""
    br = find_link(ipr, name)
    if br is None:
        try:
            ipr.link("add", ifname=name, kind="bridge")
        except Exception as e:
            if getattr(e, "code", None) != errno.EEXIST:
                raise
        br = find_link(ipr, name)
    return br


def ipv4_addresses(ipr: IPRoute, index: int) -> list[ipaddress.IPv4Interface]:
    out = []
    for msg in ipr.get_addr(family=socket.AF_INET, index=index):
        out.append(ipaddress.IPv4Interface(f"{msg.get('IFA_ADDRESS')}/{msg['prefixlen']}"))
    return out


def set_only_address(ipr: IPRoute, index: int, want: ipaddress.IPv4Interface) -> None:
    """Make `want` the one IPv4 address of the link (a re-run with a new address replaces the
    old one; a re-run with the same one changes nothing)."""
    have = ipv4_addresses(ipr, index)
    for a in have:
        if a != want:
            ipr.addr("del", index=index, address=str(a.ip), prefixlen=a.network.prefixlen)
    if want not in have:
        ipr.addr("add", index=index, address=str(want.ip), prefixlen=want.network.prefixlen)


def up(ipr: IPRoute, index: int) -> None:
    ipr.link("set", index=index, state="up")
