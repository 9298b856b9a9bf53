"""The lean rtnetlink client (`network/rtnl.py`) against the kernel, checked with pyroute2 (an
independent reader): links, addresses and routes it writes are what pyroute2 reads back, and
kernel refusals come back as NetlinkError with the kernel's errno."""

from __future__ import annotations

import errno
import ipaddress
import os
import socket

import pytest

from k1s.node.network import links, netns, rtnl

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")


@pytest.fixture
def ns(prefix):
    name = f"{prefix}-node-rtnl"
    netns.create(name)
    return netns.path_of(name)


def test_links_addresses_and_routes_match_what_pyroute2_reads(ns):
    with rtnl.Handle(ns) as h:
        assert h.link_lookup(ifname="missing0") == []
        lo = h.link_lookup(ifname="lo")[0]
        h.link("set", index=lo, state="up")
        h.link("add", ifname="br9", kind="bridge")
        br = links.find_link(h, "br9")
        h.link("add", ifname="va", kind="veth", peer={"ifname": "vb"})
        va = links.find_link(h, "va")
        assert va["link"] == h.link_lookup(ifname="vb")[0]        # the peer, same namespace
        h.link("set", index=va["index"], master=br["index"])
        h.link("set", index=br["index"], state="up")
        links.set_only_address(h, br["index"], ipaddress.IPv4Interface("10.77.0.1/24"))
        links.set_only_address(h, br["index"], ipaddress.IPv4Interface("10.77.0.1/24"))  # again
        h.route("replace", dst="10.78.0.0/16", gateway="10.77.0.9", oif=br["index"])
        h.route("replace", dst="10.78.0.0/16", gateway="10.77.0.9", oif=br["index"])
        with pytest.raises(rtnl.NetlinkError) as e:
            h.link("add", ifname="br9", kind="bridge")
        assert e.value.code == errno.EEXIST
        with pytest.raises(rtnl.NetlinkError) as e:
            h.link("del", index=99999)
        assert e.value.code == errno.ENODEV
    with links.rtnl(ns) as ipr:
        by_name = {m.get("ifname"): m for m in ipr.get_links()}
        assert by_name["va"].get("master") == by_name["br9"]["index"]
        assert by_name["br9"]["flags"] & 1 and by_name["lo"]["flags"] & 1
        assert links.ipv4_addresses(ipr, by_name["br9"]["index"]) == [
            ipaddress.IPv4Interface("10.77.0.1/24")]
        routes = [r for r in ipr.get_routes(family=socket.AF_INET, table=254)
                  if r.get("RTA_DST") == "10.78.0.0"]
        assert len(routes) == 1 and routes[0].get("RTA_GATEWAY") == "10.77.0.9"
    with rtnl.Handle(ns) as h:                    # and deleting one end takes both
        h.link("del", index=h.link_lookup(ifname="va")[0])
        assert h.link_lookup(ifname="vb") == []
        assert [m["IFA_ADDRESS"] for m in h.get_addr(index=links.find_link(h, "br9")["index"])] \
            == ["10.77.0.1"]
