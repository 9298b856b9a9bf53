"""records.answer, table-driven: one world of Services and EndpointSlices, every kind of name the
Kubernetes DNS spec (and CoreDNS's kubernetes plugin) answers, and the negative answers."""

from __future__ import annotations

import pytest

from dns_objects import endpoint, endpoint_slice, service
from k1s.dns.records import (NOERROR, NXDOMAIN, REFUSED, TTL, ZoneData, answer,
                             generated_label, reverse_ip)

Z = "cluster.local"


def world() -> ZoneData:
    services = [
        service("nginx", cluster_ip="None"),
        service("db", cluster_ip="None", publish_not_ready=True,
                ports=(("pg", 5432, "TCP"),)),
        service("lonely", cluster_ip="None"),
        service("web", cluster_ip="10.96.0.20",
                ports=(("http", 80, "TCP"), ("dns", 53, "UDP"), (None, 8080, "TCP"))),
        service("kubernetes", cluster_ip="10.96.0.1", ports=(("https", 443, "TCP"),)),
        service("ext", external_name="example.com"),
        service("extip", external_name="192.0.2.1"),
        service("api", "other", cluster_ip="10.96.0.30", ports=(("grpc", 9000, "TCP"),)),
    ]
    slices = [
        endpoint_slice("nginx-a", "nginx", [
            endpoint("10.244.0.5", "web-0"),
            endpoint("10.244.0.6", "web-1"),
            endpoint("10.244.0.7", "web-2", ready=False),
            endpoint("10.244.0.8"),                       # no hostname: generated label
        ]),
        endpoint_slice("nginx-v6", "nginx", [endpoint("fd00::5", "web-0")],
                       address_type="IPv6"),
        endpoint_slice("db-a", "db", [
            endpoint("10.244.1.1", "db-0"),
            endpoint("10.244.1.2", "db-1", ready=False),
        ], ports=(("pg", 5432, "TCP"),)),
        endpoint_slice("web-a", "web", [endpoint("10.244.2.1", pod="web-x")],
                       ports=(("http", 8080, "TCP"),)),
    ]
    return ZoneData.build(services, slices, namespaces=["default", "kube-system", "other"],
                          zone=Z, dns_ip="10.96.0.10")


N = "nginx.default.svc.cluster.local"

CASES = [
    # -- headless Service ----------------------------------------------------------------------
    (N, "A", NOERROR, {("A", "10.244.0.5"), ("A", "10.244.0.6"), ("A", "10.244.0.8")}),
    (N.upper(), "A", NOERROR, {("A", "10.244.0.5"), ("A", "10.244.0.6"), ("A", "10.244.0.8")}),
    (N, "AAAA", NOERROR, set()),                                  # IPv4 cluster: NODATA
    (N, "TXT", NOERROR, set()),
    (f"web-0.{N}", "A", NOERROR, {("A", "10.244.0.5")}),
    (f"WEB-1.{N}", "A", NOERROR, {("A", "10.244.0.6")}),
    (f"web-2.{N}", "A", NXDOMAIN, set()),                         # not ready
    (f"web-9.{N}", "A", NXDOMAIN, set()),
    (f"10-244-0-8.{N}", "A", NOERROR, {("A", "10.244.0.8")}),     # generated label
    (f"web-0.{N}", "AAAA", NOERROR, set()),
    (f"_web._tcp.{N}", "SRV", NOERROR, {
        ("SRV", (0, 33, 80, f"web-0.{N}.")), ("SRV", (0, 33, 80, f"web-1.{N}.")),
        ("SRV", (0, 33, 80, f"10-244-0-8.{N}."))}),
    (f"_WEB._TCP.{N}", "SRV", NOERROR, {
        ("SRV", (0, 33, 80, f"web-0.{N}.")), ("SRV", (0, 33, 80, f"web-1.{N}.")),
        ("SRV", (0, 33, 80, f"10-244-0-8.{N}."))}),
    (f"_web._udp.{N}", "SRV", NXDOMAIN, set()),
    (f"_http._tcp.{N}", "SRV", NXDOMAIN, set()),
    (f"web.tcp.{N}", "SRV", NXDOMAIN, set()),                     # labels need underscores
    (f"a.b.c.{N}", "A", NXDOMAIN, set()),
    ("lonely.default.svc.cluster.local", "A", NXDOMAIN, set()),   # no ready endpoints
    # -- publishNotReadyAddresses ----------------------------------------------------------------
    ("db.default.svc.cluster.local", "A", NOERROR, {("A", "10.244.1.1"), ("A", "10.244.1.2")}),
    ("db-1.db.default.svc.cluster.local", "A", NOERROR, {("A", "10.244.1.2")}),
    ("_pg._tcp.db.default.svc.cluster.local", "SRV", NOERROR, {
        ("SRV", (0, 50, 5432, "db-0.db.default.svc.cluster.local.")),
        ("SRV", (0, 50, 5432, "db-1.db.default.svc.cluster.local."))}),
    # -- ClusterIP Service -----------------------------------------------------------------------
    ("web.default.svc.cluster.local", "A", NOERROR, {("A", "10.96.0.20")}),
    ("web.default.svc.cluster.local", "AAAA", NOERROR, set()),
    ("_http._tcp.web.default.svc.cluster.local", "SRV", NOERROR,
     {("SRV", (0, 100, 80, "web.default.svc.cluster.local."))}),
    ("_dns._udp.web.default.svc.cluster.local", "SRV", NOERROR,
     {("SRV", (0, 100, 53, "web.default.svc.cluster.local."))}),
    ("_dns._tcp.web.default.svc.cluster.local", "SRV", NXDOMAIN, set()),
    ("_http._tcp.web.default.svc.cluster.local", "A", NOERROR, {("A", "10.96.0.20")}),
    ("kubernetes.default.svc.cluster.local", "SRV", NOERROR,      # no port: every port
     {("SRV", (0, 100, 443, "kubernetes.default.svc.cluster.local."))}),
    ("api.other.svc.cluster.local", "A", NOERROR, {("A", "10.96.0.30")}),
    ("api.default.svc.cluster.local", "A", NXDOMAIN, set()),
    # an endpoint name under a ClusterIP Service (CoreDNS answers those too)
    ("10-244-2-1.web.default.svc.cluster.local", "A", NOERROR, {("A", "10.244.2.1")}),
    # -- ExternalName ----------------------------------------------------------------------------
    ("ext.default.svc.cluster.local", "A", NOERROR, {("CNAME", "example.com.")}),
    ("ext.default.svc.cluster.local", "CNAME", NOERROR, {("CNAME", "example.com.")}),
    ("x.ext.default.svc.cluster.local", "A", NXDOMAIN, set()),
    ("extip.default.svc.cluster.local", "A", NXDOMAIN, set()),
    # -- PTR -------------------------------------------------------------------------------------
    ("5.0.244.10.in-addr.arpa", "PTR", NOERROR, {("PTR", f"web-0.{N}.")}),
    ("8.0.244.10.in-addr.arpa", "PTR", NOERROR, {("PTR", f"10-244-0-8.{N}.")}),
    ("7.0.244.10.in-addr.arpa", "PTR", NXDOMAIN, set()),           # not ready
    ("2.1.244.10.in-addr.arpa", "PTR", NOERROR, {("PTR", "db-1.db.default.svc.cluster.local.")}),
    ("20.0.96.10.in-addr.arpa", "PTR", NOERROR, {("PTR", "web.default.svc.cluster.local.")}),
    ("20.0.96.10.in-addr.arpa", "A", NOERROR, set()),
    ("99.0.96.10.in-addr.arpa", "PTR", NXDOMAIN, set()),
    ("1.2.3.in-addr.arpa", "PTR", NXDOMAIN, set()),
    # -- pods ------------------------------------------------------------------------------------
    ("10-244-0-5.default.pod.cluster.local", "A", NOERROR, {("A", "10.244.0.5")}),
    ("1-2-3-4.other.pod.cluster.local", "A", NOERROR, {("A", "1.2.3.4")}),
    ("1-2-3-4.other.pod.cluster.local", "AAAA", NOERROR, set()),
    ("1-2-3-4.nope.pod.cluster.local", "A", NXDOMAIN, set()),     # no such namespace
    ("1-2-3-999.default.pod.cluster.local", "A", NXDOMAIN, set()),
    ("web-0.default.pod.cluster.local", "A", NXDOMAIN, set()),
    # -- the zone itself -------------------------------------------------------------------------
    ("dns-version.cluster.local", "TXT", NOERROR, {("TXT", "1.0.1")}),
    ("dns-version.cluster.local", "A", NOERROR, set()),
    ("cluster.local", "NS", NOERROR, {("NS", "ns.dns.cluster.local.")}),
    ("cluster.local", "A", NOERROR, set()),
    ("svc.cluster.local", "A", NOERROR, set()),
    ("default.svc.cluster.local", "A", NOERROR, set()),           # existing namespace
    ("nope.svc.cluster.local", "A", NXDOMAIN, set()),
    ("nothing.cluster.local", "A", NXDOMAIN, set()),
    ("ns.dns.cluster.local", "A", NOERROR, {("A", "10.96.0.10")}),
    # -- outside the zone: no upstream -----------------------------------------------------------
    ("example.com", "A", REFUSED, set()),
    ("cluster.local.example.com", "A", REFUSED, set()),
    ("xcluster.local", "A", REFUSED, set()),
]


@pytest.mark.parametrize("qname,qtype,rcode,expected", CASES,
                         ids=[f"{c[1]} {c[0]}" for c in CASES])
def test_answer(qname, qtype, rcode, expected):
    data = world()
    got = answer(data, qname, qtype)
    assert got.rcode == rcode
    assert {(r.rtype, r.value) for r in got.answer} == expected
    assert all(r.name == qname + "." for r in got.answer)           # owner keeps the spelling
    assert all(r.ttl == TTL == 5 for r in got.answer)
    if rcode == NXDOMAIN or (rcode == NOERROR and not expected):
        # negative answers carry the zone's SOA, with CoreDNS's TTL
        (soa,) = got.authority
        assert soa.rtype == "SOA" and soa.ttl == 5
        apex = "in-addr.arpa." if qname.endswith("in-addr.arpa") else "cluster.local."
        assert soa.name == apex
        mname, rname, _serial, refresh, retry, expire, minimum = soa.value
        assert (mname, rname, refresh, retry, expire, minimum) == (
            "ns.dns." + apex, "hostmaster." + apex, 7200, 1800, 86400, 5)
    if rcode == REFUSED:
        assert not got.authoritative and not got.authority


def test_srv_additional_section_has_target_addresses():
    got = answer(world(), f"_web._tcp.{N}", "SRV")
    assert {(r.name, r.value) for r in got.additional} == {
        (f"web-0.{N}.", "10.244.0.5"), (f"web-1.{N}.", "10.244.0.6"),
        (f"10-244-0-8.{N}.", "10.244.0.8")}


def test_apex_soa():
    got = answer(world(), "cluster.local", "SOA")
    assert got.rcode == NOERROR and [r.rtype for r in got.answer] == ["SOA"]


def test_a_pod_behind_two_services_has_a_ptr_for_each():
    data = ZoneData.build(
        [service("a", cluster_ip="None"), service("b", cluster_ip="None")],
        [endpoint_slice("a-1", "a", [endpoint("10.0.0.1", "p")]),
         endpoint_slice("b-1", "b", [endpoint("10.0.0.1")])])
    got = answer(data, "1.0.0.10.in-addr.arpa", "PTR")
    assert {r.value for r in got.answer} == {"p.a.default.svc.cluster.local.",
                                            "10-0-0-1.b.default.svc.cluster.local."}


def test_slice_without_ports_gives_addresses_but_no_srv():
    data = ZoneData.build([service("h", cluster_ip="None", ports=())],
                          [endpoint_slice("h-1", "h", [endpoint("10.0.0.2", "x")], ports=())])
    assert {r.value for r in answer(data, "x.h.default.svc.cluster.local", "A").answer} == \
        {"10.0.0.2"}
    got = answer(data, "h.default.svc.cluster.local", "SRV")
    assert got.rcode == NOERROR and not got.answer


def test_endpoint_in_two_slices_answers_once():
    data = ZoneData.build([service("h", cluster_ip="None")],
                          [endpoint_slice("h-1", "h", [endpoint("10.0.0.2", "x")]),
                           endpoint_slice("h-2", "h", [endpoint("10.0.0.2", "x")])])
    assert [r.value for r in answer(data, "h.default.svc.cluster.local", "A").answer] == \
        ["10.0.0.2"]
    assert len(answer(data, "_web._tcp.h.default.svc.cluster.local", "SRV").answer) == 1


def test_changes_apply_one_event_at_a_time():
    svc = service("nginx", cluster_ip="None")
    sl = endpoint_slice("nginx-a", "nginx", [endpoint("10.244.0.5", "web-0"),
                                             endpoint("10.244.0.6", "web-1", ready=False)])
    data = ZoneData.build([], [], namespaces=["default"])
    data.set_slice(sl)                       # slice before its Service: kept, not yet served
    assert answer(data, f"web-0.{N}", "A").rcode == NXDOMAIN
    data.set_service(svc)
    assert answer(data, f"web-0.{N}", "A").rcode == NOERROR
    assert answer(data, f"web-1.{N}", "A").rcode == NXDOMAIN
    serial = data.serial
    sl2 = endpoint_slice("nginx-a", "nginx", [endpoint("10.244.0.5", "web-0"),
                                              endpoint("10.244.0.6", "web-1")])
    data.set_slice(sl2)                      # web-1 turns ready
    assert {r.value for r in answer(data, f"web-1.{N}", "A").answer} == {"10.244.0.6"}
    assert data.serial > serial              # the SOA serial follows changes
    relabelled = endpoint_slice("nginx-a", "other", sl2["endpoints"])
    data.set_slice(relabelled)               # the slice now belongs to another Service
    assert answer(data, N, "A").rcode == NXDOMAIN
    assert answer(data, "5.0.244.10.in-addr.arpa", "PTR").rcode == NXDOMAIN
    data.set_slice(sl2)
    data.delete_service(svc)
    assert answer(data, N, "A").rcode == NXDOMAIN
    assert answer(data, "6.0.244.10.in-addr.arpa", "PTR").rcode == NXDOMAIN


def test_generated_label_and_reverse_ip():
    assert generated_label("10.244.0.8") == "10-244-0-8"
    assert reverse_ip("8.0.244.10.in-addr.arpa") == "10.244.0.8"
    assert reverse_ip("08.0.244.10.in-addr.arpa") is None
    assert reverse_ip("256.0.244.10.in-addr.arpa") is None
    assert reverse_ip("0.244.10.in-addr.arpa") is None


def test_srv_weight_shares_100_but_is_at_least_1():
    eps = [endpoint(f"10.3.0.{i}", f"p-{i}") for i in range(1, 151)]
    data = ZoneData.build([service("h", cluster_ip="None")], [endpoint_slice("h-1", "h", eps)])
    got = answer(data, "_web._tcp.h.default.svc.cluster.local", "SRV")
    assert len(got.answer) == 150 and {r.value[1] for r in got.answer} == {1}
