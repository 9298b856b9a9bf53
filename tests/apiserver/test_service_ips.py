"""ClusterIP allocation bands (upstream KEP-3070): dynamic addresses come from above the static
band, so the addresses Services ask for by number (kube-dns's 10.96.0.10) stay free; the
static band is used only once the rest is full; asked-for addresses anywhere are honoured."""

from __future__ import annotations

import pytest

from k1s.apiserver.admission import ServiceIPs


class Store:
    def __init__(self):
        self.services = []

    def cached_all(self, resource):
        return self.services

    def take(self, ip):
        self.services.append({"spec": {"clusterIP": ip, "clusterIPs": [ip]}})


def fill(alloc, store, n):
    out = []
    for _ in range(n):
        ip = alloc.allocate()
        store.take(ip)
        out.append(ip)
    return out


def test_dynamic_addresses_start_above_the_static_band():
    store = Store()
    alloc = ServiceIPs(store, "10.96.0.0/12")
    assert alloc.band == 256                      # min(max(16, size/16), 256)
    ips = fill(alloc, store, 300)
    assert "10.96.0.10" not in ips and ips[0] == "10.96.1.1"
    assert all(not ip.startswith("10.96.0.") for ip in ips)


def test_the_static_band_is_used_once_the_upper_one_is_full_then_the_range_is_full():
    store = Store()
    alloc = ServiceIPs(store, "10.0.0.0/24")      # 254 usable, band 16
    assert alloc.band == 16
    ips = fill(alloc, store, 254)
    assert ips[:238] == [f"10.0.0.{i}" for i in range(17, 255)]
    assert sorted(ips[238:], key=lambda s: int(s.rsplit(".", 1)[1])) == \
        [f"10.0.0.{i}" for i in range(1, 17)]
    with pytest.raises(ValueError, match="range is full"):
        alloc.allocate()


def test_a_requested_address_in_either_band_is_honoured_once():
    store = Store()
    alloc = ServiceIPs(store, "10.96.0.0/12")
    assert alloc.allocate("10.96.0.10") == "10.96.0.10"
    store.take("10.96.0.10")
    with pytest.raises(ValueError, match="already allocated"):
        alloc.allocate("10.96.0.10")
    assert alloc.allocate("10.96.200.1") == "10.96.200.1"


def test_the_band_is_computed_over_the_whole_range_as_upstream():
    sizes = {"10.0.0.0/20": 256, "10.0.0.0/21": 128, "10.0.0.0/24": 16, "10.0.0.0/29": 0}
    assert {c: ServiceIPs(Store(), c).band for c in sizes} == sizes
