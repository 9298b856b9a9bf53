"""Property: under any sequence of Service / EndpointSlice changes, the incrementally kept
ZoneData answers exactly as one built from scratch, every published endpoint name resolves to
exactly its IPs (not-ready ones only with publishNotReadyAddresses), and PTR and A agree."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dns_objects import endpoint, endpoint_slice, service
from k1s.dns.records import NOERROR, NXDOMAIN, ZoneData, answer, generated_label

Z = "cluster.local"
SVC_NAMES = ["s0", "s1", "s2"]
HOSTS = [None, "h0", "h1", "h2"]
IPS = [f"10.0.0.{i}" for i in range(1, 7)]

services = st.builds(
    lambda name, headless, pnr, n: service(
        name, cluster_ip="None" if headless else f"10.96.0.{n}", publish_not_ready=pnr),
    st.sampled_from(SVC_NAMES), st.booleans(), st.booleans(), st.integers(100, 102))
endpoints = st.builds(endpoint, st.sampled_from(IPS), st.sampled_from(HOSTS), st.booleans())
slices = st.builds(
    lambda svc, k, eps: endpoint_slice(f"{svc}-{k}", svc, eps),
    st.sampled_from(SVC_NAMES), st.integers(0, 1), st.lists(endpoints, max_size=4))
ops = st.one_of(
    st.tuples(st.just("set_service"), services),
    st.tuples(st.just("delete_service"), services),
    st.tuples(st.just("set_slice"), slices),
    st.tuples(st.just("delete_slice"), slices),
)


def published(svc: dict, slices: list[dict]) -> dict[str, set[str]]:
    """The model: label -> IPs for every endpoint DNS should publish."""
    pnr = bool(svc["spec"].get("publishNotReadyAddresses"))
    out: dict[str, set[str]] = {}
    for sl in slices:
        for ep in sl["endpoints"]:
            if ep["conditions"]["ready"] or pnr:
                for ip in ep["addresses"]:
                    out.setdefault(ep.get("hostname") or generated_label(ip), set()).add(ip)
    return out


def a_ips(data: ZoneData, name: str) -> set[str]:
    got = answer(data, name, "A")
    assert got.rcode in (NOERROR, NXDOMAIN)
    return {r.value for r in got.answer}


def check(data: ZoneData, svcs: dict, slcs: dict) -> None:
    fresh = ZoneData.build(svcs.values(), slcs.values(), namespaces=["default"], zone=Z)
    assert data.views == fresh.views
    assert data._by_ip == fresh._by_ip        # nothing left behind: memory stays bounded
    for ip in IPS + ["10.96.0.100", "10.96.0.101", "10.96.0.102"]:
        rev = ".".join(reversed(ip.split("."))) + ".in-addr.arpa"
        mine, theirs = answer(data, rev, "PTR"), answer(fresh, rev, "PTR")
        assert (mine.rcode, mine.answer) == (theirs.rcode, theirs.answer)

    ptr_pairs = set()      # (ip, name) from PTR answers
    for ip in IPS + ["10.96.0.100", "10.96.0.101", "10.96.0.102"]:
        rev = ".".join(reversed(ip.split("."))) + ".in-addr.arpa"
        ptr_pairs |= {(ip, r.value.rstrip(".")) for r in answer(data, rev, "PTR").answer}
    a_pairs = set()        # (ip, name) from A answers of every name the model publishes
    for name, svc in svcs.items():
        base = f"{name}.default.svc.{Z}"
        mine = [s for s in slcs.values()
                if s["metadata"]["labels"]["kubernetes.io/service-name"] == name]
        model = published(svc, mine)
        for label, ips in model.items():
            assert a_ips(data, f"{label}.{base}") == ips
            a_pairs |= {(ip, f"{label}.{base}") for ip in ips}
        for label in HOSTS[1:]:
            if label not in model:       # a not-ready (or absent) hostname never resolves
                assert answer(data, f"{label}.{base}", "A").rcode == NXDOMAIN
        everyone = set().union(*model.values()) if model else set()
        if svc["spec"]["clusterIP"] == "None":
            assert a_ips(data, base) == everyone
        else:
            assert a_ips(data, base) == {svc["spec"]["clusterIP"]}
            a_pairs.add((svc["spec"]["clusterIP"], base))
    assert ptr_pairs == a_pairs


@given(st.lists(ops, max_size=25))
def test_incremental_index_matches_model(steps):
    data = ZoneData(Z)
    data.set_namespace("default")
    svcs: dict[str, dict] = {}
    slcs: dict[str, dict] = {}
    for op, obj in steps:
        name = obj["metadata"]["name"]
        getattr(data, op)(obj)
        if op == "set_service":
            svcs[name] = obj
        elif op == "delete_service":
            svcs.pop(name, None)
        elif op == "set_slice":
            slcs[name] = obj
        else:
            slcs.pop(name, None)
        check(data, svcs, slcs)


def test_two_services_with_one_cluster_ip_share_ptr():
    # (the allocator never does this, but the index must not lose an IP's other owner)
    data = ZoneData(Z)
    a, b = service("a", cluster_ip="10.96.0.5"), service("b", cluster_ip="10.96.0.5")
    data.set_service(a)
    data.set_service(b)
    data.delete_service(a)
    got = answer(data, "5.0.96.10.in-addr.arpa", "PTR")
    assert [r.value for r in got.answer] == [f"b.default.svc.{Z}."]
