"""A lean synchronous rtnetlink client for the per-pod network path (`pod.PodNetwork`).

Why not pyroute2 here: every pyroute2 call runs an asyncio loop of its own, so setting up one
pod's network (about fourteen calls) cost ~17 ms of CPU, most of the node's work per pod.
These are the same netlink messages built with `struct` on a plain socket made inside the
namespace (`netns.socket_in`): ~50 µs a call. pyroute2 stays for the once-per-node work
(`links.py`: the node namespace, bridge, fabric) and for tests, which check what this writes
with an independent reader.

`Handle` offers the small part of pyroute2's IPRoute interface that `pod.py` uses
(`link_lookup`, `get_links`, `link`, `get_addr`, `addr`, `route`), so `links.find_link` /
`set_only_address` / `up` work on either; messages come back as `Msg` dicts with the keys pod.py
reads (index, flags, master, link, IFLA_LINK_NETNSID, prefixlen, IFA_ADDRESS). Errors raise
`NetlinkError` with the kernel's errno as `.code`.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import os
import socket
import struct

from . import netns

NETLINK_ROUTE = 0
NLMSG_ERROR, NLMSG_DONE = 2, 3
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
RTM_NEWROUTE = 24
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP = 0x1, 0x4, 0x300
NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE = 0x100, 0x200, 0x400
IFLA_ADDRESS, IFLA_IFNAME, IFLA_LINK, IFLA_MASTER = 1, 3, 5, 10
IFLA_LINKINFO, IFLA_IFALIAS, IFLA_NET_NS_FD, IFLA_LINK_NETNSID = 18, 20, 28, 37
IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER = 1, 2, 1
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_DST, RTA_OIF, RTA_GATEWAY = 1, 4, 5
IFF_UP = 0x1
RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST = 254, 3, 0, 1

_HDR = struct.Struct("=IHHII")          # nlmsghdr
_IFINFO = struct.Struct("=BxHiII")      # ifinfomsg
_IFADDR = struct.Struct("=BBBBI")       # ifaddrmsg
_RTMSG = struct.Struct("=BBBBBBBBI")    # rtmsg
_ATTR = struct.Struct("=HH")            # rtattr


class NetlinkError(OSError):
    def __init__(self, code: int, what: str):
        super().__init__(code, f"{what}: {os.strerror(code)}")
        self.code = code


class Msg(dict):
    """A decoded message: its header fields and attributes, by pyroute2's names."""


def _attr(kind: int, data: bytes) -> bytes:
    raw = _ATTR.pack(_ATTR.size + len(data), kind) + data
    return raw + b"\0" * (-len(raw) % 4)


def _name(s: str) -> bytes:
    return s.encode() + b"\0"


def _attrs(buf: bytes, off: int, end: int) -> dict[int, bytes]:
    out = {}
    while off + _ATTR.size <= end:
        length, kind = _ATTR.unpack_from(buf, off)
        if length < _ATTR.size:
            break
        out[kind & 0x3FFF] = buf[off + _ATTR.size:off + length]
        off += (length + 3) & ~3
    return out


def _u32(b: bytes) -> int:
    return struct.unpack("=I", b[:4])[0]


def refuse_event_loop() -> None:
    """Netlink calls block: a caller on the event loop would stall every pod."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError("netlink calls block: run them in a worker thread (asyncio.to_thread), "
                       "not on the event loop")


class Handle:
    """One rtnetlink socket in the namespace at `path` (close it, or use it as a context)."""

    def __init__(self, path: str):
        refuse_event_loop()
        self.sock = netns.socket_in(path, socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self.seq = 0

    def __enter__(self) -> "Handle":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    # -- the exchange --------------------------------------------------------------------------------
    def _request(self, mtype: int, flags: int, body: bytes, what: str) -> list[tuple[int, bytes]]:
        """Send one request; return the (type, payload) of every reply message until the ack
        (or the end of a dump). An error reply raises NetlinkError."""
        self.seq += 1
        seq = self.seq
        self.sock.send(_HDR.pack(_HDR.size + len(body), mtype, flags | NLM_F_REQUEST, seq, 0)
                       + body)
        out = []
        while True:
            data = self.sock.recv(1 << 16)
            off = 0
            while off + _HDR.size <= len(data):
                length, rtype, _fl, rseq, _pid = _HDR.unpack_from(data, off)
                payload = data[off + _HDR.size:off + length]
                off += (length + 3) & ~3
                if rseq != seq:
                    continue
                if rtype == NLMSG_ERROR:
                    code = -struct.unpack_from("=i", payload)[0]
                    if code:
                        raise NetlinkError(code, what)
                    return out                      # the ack
                if rtype == NLMSG_DONE:
                    return out
                out.append((rtype, payload))
            if not flags & NLM_F_DUMP and not flags & NLM_F_ACK:
                return out

    # -- links ---------------------------------------------------------------------------------------
    @staticmethod
    def _link(payload: bytes) -> Msg:
        _fam, _type, index, flags, _chg = _IFINFO.unpack_from(payload)
        a = _attrs(payload, _IFINFO.size, len(payload))
        m = Msg(index=index, flags=flags)
        if IFLA_IFNAME in a:
            m["ifname"] = a[IFLA_IFNAME].rstrip(b"\0").decode()
        if IFLA_MASTER in a:
            m["master"] = _u32(a[IFLA_MASTER])
        if IFLA_LINK in a:
            m["link"] = _u32(a[IFLA_LINK])
        if IFLA_LINK_NETNSID in a:
            m["IFLA_LINK_NETNSID"] = struct.unpack("=i", a[IFLA_LINK_NETNSID][:4])[0]
        return m

    def get_links(self, index: int) -> list[Msg]:
        try:
            got = self._request(RTM_GETLINK, 0, _IFINFO.pack(0, 0, index, 0, 0), "get link")
        except NetlinkError as e:
            if e.code == errno.ENODEV:
                return []
            raise
        return [self._link(p) for t, p in got if t == RTM_NEWLINK]

    def link_lookup(self, ifname: str) -> list[int]:
        body = _IFINFO.pack(0, 0, 0, 0, 0) + _attr(IFLA_IFNAME, _name(ifname))
        try:
            got = self._request(RTM_GETLINK, 0, body, f"get link {ifname}")
        except NetlinkError as e:
            if e.code == errno.ENODEV:
                return []
            raise
        return [self._link(p)["index"] for t, p in got if t == RTM_NEWLINK]

    def link(self, op: str, *, index: int = 0, ifname: str | None = None, kind: str | None = None,
             peer: dict | None = None, master: int | None = None, state: str | None = None,
             ifalias: str | None = None) -> None:
        if op == "del":
            self._request(RTM_DELLINK, NLM_F_ACK, _IFINFO.pack(0, 0, index, 0, 0), "delete link")
            return
        flags = change = 0
        if state == "up":
            flags = change = IFF_UP
        attrs = b""
        if ifname is not None:
            attrs += _attr(IFLA_IFNAME, _name(ifname))
        if master is not None:
            attrs += _attr(IFLA_MASTER, struct.pack("=I", master))
        if ifalias is not None:
            attrs += _attr(IFLA_IFALIAS, _name(ifalias))
        if op == "add":
            info = _attr(IFLA_INFO_KIND, _name(kind or ""))
            if peer is not None:
                p = _IFINFO.pack(0, 0, 0, 0, 0) + _attr(IFLA_IFNAME, _name(peer["ifname"]))
                if "net_ns_fd" in peer:
                    p += _attr(IFLA_NET_NS_FD, struct.pack("=I", peer["net_ns_fd"]))
                info += _attr(IFLA_INFO_DATA, _attr(VETH_INFO_PEER, p))
            attrs += _attr(IFLA_LINKINFO, info)
            self._request(RTM_NEWLINK, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
                          _IFINFO.pack(0, 0, 0, flags, change) + attrs, f"add link {ifname}")
        elif op == "set":
            self._request(RTM_NEWLINK, NLM_F_ACK, _IFINFO.pack(0, 0, index, flags, change)
                          + attrs, "set link")
        else:
            raise ValueError(f"unknown link operation {op!r}")

    # -- addresses and routes ------------------------------------------------------------------------
    def get_addr(self, family: int = socket.AF_INET, index: int | None = None) -> list[Msg]:
        got = self._request(RTM_GETADDR, NLM_F_DUMP, _IFADDR.pack(family, 0, 0, 0, 0),
                            "list addresses")
        out = []
        for t, p in got:
            if t != RTM_NEWADDR:
                continue
            fam, plen, _fl, _scope, idx = _IFADDR.unpack_from(p)
            if fam != family or (index is not None and idx != index):
                continue
            a = _attrs(p, _IFADDR.size, len(p))
            raw = a.get(IFA_ADDRESS) or a.get(IFA_LOCAL)
            if raw is None:
                continue
            out.append(Msg(index=idx, prefixlen=plen,
                           IFA_ADDRESS=str(ipaddress.ip_address(raw[:4]))))
        return out

    def addr(self, op: str, *, index: int, address: str, prefixlen: int) -> None:
        ip = ipaddress.IPv4Address(address).packed
        body = _IFADDR.pack(socket.AF_INET, prefixlen, 0, RT_SCOPE_UNIVERSE, index) + \
            _attr(IFA_LOCAL, ip) + _attr(IFA_ADDRESS, ip)
        if op == "add":
            self._request(RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE, body,
                          f"add address {address}")
        elif op == "del":
            self._request(RTM_DELADDR, NLM_F_ACK, body, f"delete address {address}")
        else:
            raise ValueError(f"unknown address operation {op!r}")

    def route(self, op: str, *, dst: str, gateway: str, oif: int) -> None:
        if op != "replace":
            raise ValueError(f"unknown route operation {op!r}")
        net = ipaddress.IPv4Network(dst)
        body = _RTMSG.pack(socket.AF_INET, net.prefixlen, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT,
                           RT_SCOPE_UNIVERSE, RTN_UNICAST, 0)
        if net.prefixlen:
            body += _attr(RTA_DST, net.network_address.packed)
        body += _attr(RTA_GATEWAY, ipaddress.IPv4Address(gateway).packed)
        body += _attr(RTA_OIF, struct.pack("=I", oif))
        self._request(RTM_NEWROUTE, NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE, body,
                      f"replace route {dst}")
