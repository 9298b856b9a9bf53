"""Pod addresses of a node (pods.AddressPool) and the simulated nodes' naming: a property over
allocate / release / adopt sequences (addresses unique, inside the CIDR, never the network or
the bridge address) and the per-node CIDRs and host addresses."""

from __future__ import annotations

import ipaddress

from hypothesis import given, strategies as st

from k1s.node import simulated
from k1s.node.pods import AddressPool

OPS = st.lists(st.tuples(st.sampled_from(["alloc", "release", "adopt"]), st.integers(0, 40),
                         st.integers(0, 255)), max_size=200)


@given(OPS)
def test_address_pool_invariants(ops):
    pool = AddressPool("10.244.3.0/27")             # 30 hosts: the first is the bridge's
    net = ipaddress.ip_network("10.244.3.0/27")
    for op, uid, host in ops:
        uid = f"u{uid}"
        if op == "alloc":
            ip = pool.allocate(uid)
            if ip is None:
                assert not pool.free and uid not in pool.by_uid
        elif op == "release":
            pool.release(uid)
            assert pool.get(uid) is None
        else:
            before = dict(pool.by_uid)
            cand = str(net.network_address + host % 32)
            pool.adopt(uid, cand)
            if uid not in before and pool.get(uid) is not None:
                assert pool.get(uid) == cand
        given_out = list(pool.by_uid.values())
        assert len(given_out) == len(set(given_out))                 # never shared
        assert not set(given_out) & set(pool.free)
        assert len(given_out) + len(pool.free) == 29
        for ip in given_out:
            a = ipaddress.ip_address(ip)
            assert a in net and a not in (net.network_address, net.network_address + 1,
                                          net.broadcast_address)


def test_allocation_is_stable_and_lowest_first():
    pool = AddressPool("10.244.0.0/24")
    assert pool.allocate("a") == "10.244.0.2"
    assert pool.allocate("a") == "10.244.0.2"
    assert pool.allocate("b") == "10.244.0.3"
    pool.release("a")
    assert pool.allocate("c") == "10.244.0.2"


def test_node_names_cidrs_and_addresses():
    assert simulated.node_name(7) == "k1s-sim-7"
    assert simulated.pod_cidr(0) == "10.244.0.0/24"
    assert simulated.pod_cidr(255) == "10.244.255.0/24"
    assert simulated.pod_cidr(256) == "10.245.0.0/24"
    cidrs = {simulated.pod_cidr(i) for i in range(600)}
    assert len(cidrs) == 600
    hosts = {simulated.host_ip(i) for i in range(600)}
    assert len(hosts) == 600
    assert simulated.host_ip(0) == "10.0.0.2" and simulated.host_ip(1) == "10.0.1.2"
    n = simulated.node_object("k1s-sim-3", 3)
    assert n["spec"]["podCIDR"] == "10.244.3.0/24" == n["spec"]["podCIDRs"][0]
    st_ = simulated.node_status("k1s-sim-3", 3, simulated.DEFAULT_ALLOCATABLE, None,
                                "2026-01-01T00:00:00Z")
    assert st_["allocatable"] == {"cpu": "32", "memory": "256Gi", "pods": "110"}
    assert st_["capacity"] == st_["allocatable"]
    assert [c["type"] for c in st_["conditions"]] == ["MemoryPressure", "DiskPressure",
                                                      "PIDPressure", "Ready"]
