"""Endpoints planner: which pods become addresses, where, with which hostname and ports; the
repacking of subsets, truncation, and writing only when something changed.

The pod/service builders here are shared with the EndpointSlice planner tests."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings, strategies as st

from k1s.controllers.endpoints import planner as P
from k1s.controllers.endpoints.pods import TRIGGER_TIME
from k1s.controllers.endpoints.triggertime import TriggerTimeTracker

NS = "default"


def service(name="nginx", headless=True, ports=(("web", 80, None),), publish=False,
            labels=None, annotations=None, selector=None, uid=None, **spec):
    s = {"selector": {"app": "nginx"} if selector is None else selector,
         "ports": [{"name": n, "port": p, "protocol": "TCP", "targetPort": t or p}
                   for n, p, t in ports],
         "type": "ClusterIP", "clusterIP": "None" if headless else "10.96.0.10", **spec}
    if not ports:
        del s["ports"]
    if publish:
        s["publishNotReadyAddresses"] = True
    md = {"name": name, "namespace": NS, "uid": uid or f"uid-{name}",
          "labels": {"app": "nginx"} if labels is None else labels,
          "creationTimestamp": "2026-01-01T00:00:00Z"}
    if annotations:
        md["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Service", "metadata": md, "spec": s}


def pod(name="web-0", ip="10.0.0.1", ready=True, hostname="auto", subdomain="nginx",
        node="node-1", phase="Running", deleting=False, labels=None, ports=(("web", 80),),
        ready_at="2026-01-01T00:00:05Z", ns=NS):
    ps = {"containers": [{"name": "nginx", "image": "nginx",
                          "ports": [{"name": n, "containerPort": p, "protocol": "TCP"}
                                    for n, p in ports]}]}
    if hostname == "auto":
        hostname = name
    if hostname:
        ps["hostname"] = hostname
    if subdomain:
        ps["subdomain"] = subdomain
    if node:
        ps["nodeName"] = node
    md = {"name": name, "namespace": ns, "uid": f"uid-{name}",
          "labels": {"app": "nginx"} if labels is None else labels}
    if deleting:
        md["deletionTimestamp"] = "2026-01-01T00:01:00Z"
    st_ = {"phase": phase,
           "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                           "lastTransitionTime": ready_at}]}
    if ip:
        st_["podIP"] = ip
        st_["podIPs"] = [{"ip": ip}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": ps, "status": st_}


def ref(name):
    return {"kind": "Pod", "namespace": NS, "name": name, "uid": f"uid-{name}"}


def subsets(svc, pods):
    return P.desired_subsets(svc, pods)


def ips(ss, field="addresses"):
    return [a["ip"] for s in ss for a in s.get(field) or ()]


# -- table: who is in, where ----------------------------------------------------------------------

def test_seed_service_two_ready_pods():
    got = subsets(service(), [pod("web-1", "10.0.0.2"), pod("web-0", "10.0.0.1")])
    assert got == [{
        "addresses": [
            {"ip": "10.0.0.1", "hostname": "web-0", "nodeName": "node-1",
             "targetRef": ref("web-0")},
            {"ip": "10.0.0.2", "hostname": "web-1", "nodeName": "node-1",
             "targetRef": ref("web-1")}],
        "ports": [{"name": "web", "port": 80, "protocol": "TCP"}]}]


INCLUSION = [
    # (case, service kwargs, pod kwargs, expected field or None)
    ("ready pod", {}, {}, "addresses"),
    ("not ready pod", {}, {"ready": False}, "notReadyAddresses"),
    ("not ready, publishNotReadyAddresses", {"publish": True}, {"ready": False}, "addresses"),
    ("not ready, legacy tolerate annotation",
     {"annotations": {"service.alpha.kubernetes.io/tolerate-unready-endpoints": "true"}},
     {"ready": False}, "addresses"),
    ("legacy annotation false", {"annotations": {
        "service.alpha.kubernetes.io/tolerate-unready-endpoints": "false"}},
     {"ready": False}, "notReadyAddresses"),
    ("terminating pod excluded", {}, {"deleting": True}, None),
    ("terminating not-ready pod excluded", {}, {"deleting": True, "ready": False}, None),
    ("terminating pod kept with publishNotReadyAddresses", {"publish": True},
     {"deleting": True}, "addresses"),
    ("Succeeded pod excluded", {}, {"phase": "Succeeded", "ready": False}, None),
    ("Failed pod excluded even with publish", {"publish": True}, {"phase": "Failed"}, None),
    ("pod without IP excluded", {}, {"ip": None}, None),
    ("named targetPort the pod lacks: excluded", {"ports": (("web", 80, "http"),)}, {}, None),
    ("IPv6-only pod for an IPv4 service: excluded", {}, {"ip": "fd00::1"}, None),
]


@pytest.mark.parametrize("case,skw,pkw,where", INCLUSION, ids=[c[0] for c in INCLUSION])
def test_inclusion(case, skw, pkw, where):
    got = subsets(service(**skw), [pod(**pkw)])
    if where is None:
        assert got == []
    else:
        assert len(got) == 1 and list(k for k in got[0] if k != "ports") == [where]


def test_hostname_rule_only_under_the_governing_service():
    pods = [pod("web-0", "10.0.0.1"), pod("web-1", "10.0.0.2")]
    gov = subsets(service("nginx"), pods)
    assert [a.get("hostname") for a in gov[0]["addresses"]] == ["web-0", "web-1"]
    other = subsets(service("nginx-other"), pods)
    assert [a.get("hostname") for a in other[0]["addresses"]] == [None, None]
    assert ips(other) == ["10.0.0.1", "10.0.0.2"]


@pytest.mark.parametrize("pkw", [{"hostname": None}, {"subdomain": None},
                                 {"subdomain": "elsewhere"}, {"ns": "other"}])
def test_hostname_needs_hostname_subdomain_and_namespace(pkw):
    got = subsets(service(), [pod(**pkw)])
    assert "hostname" not in got[0]["addresses"][0]


def test_named_target_port_resolved_per_pod():
    svc = service(ports=(("http", 80, "web"),))
    got = subsets(svc, [pod("a", "10.0.0.1", ports=(("web", 8080),)),
                        pod("b", "10.0.0.2", ports=(("web", 9090),))])
    by_port = {s["ports"][0]["port"]: ips([s]) for s in got}
    assert by_port == {8080: ["10.0.0.1"], 9090: ["10.0.0.2"]}
    assert all(s["ports"][0]["name"] == "http" for s in got)


def test_named_target_port_needs_same_protocol():
    svc = service(ports=(("dns", 53, "dns"),))
    svc["spec"]["ports"][0]["protocol"] = "UDP"
    assert subsets(svc, [pod(ports=(("dns", 53),))]) == []      # container port is TCP


def test_ports_served_by_the_same_addresses_share_a_subset():
    svc = service(ports=(("web", 80, "web"), ("admin", 81, "admin")))
    both = pod("a", "10.0.0.1", ports=(("web", 80), ("admin", 81)))
    web_only = pod("b", "10.0.0.2", ports=(("web", 80),))
    got = subsets(svc, [both, web_only])
    shape = sorted((tuple(p["name"] for p in s["ports"]), tuple(ips([s]))) for s in got)
    # upstream's RepackSubsets: port 80 is served by a and b, port 81 by a alone
    assert shape == [(("admin",), ("10.0.0.1",)), (("web",), ("10.0.0.1", "10.0.0.2"))]
    same = subsets(svc, [both, pod("c", "10.0.0.3", ports=(("web", 80), ("admin", 81)))])
    assert len(same) == 1 and [p["name"] for p in same[0]["ports"]] == ["admin", "web"]


def test_ready_and_not_ready_in_one_subset_sorted():
    got = subsets(service(), [pod("c", "10.0.0.3"), pod("a", "10.0.0.10", ready=False),
                              pod("b", "10.0.0.2")])
    assert len(got) == 1
    assert ips(got) == ["10.0.0.2", "10.0.0.3"]
    assert ips(got, "notReadyAddresses") == ["10.0.0.10"]


def test_headless_service_without_ports():
    got = subsets(service(ports=()), [pod()])
    assert got == [{"addresses": [{"ip": "10.0.0.1", "hostname": "web-0", "nodeName": "node-1",
                                   "targetRef": ref("web-0")}]}]
    assert subsets(service(ports=(), headless=False), [pod()]) == []


# -- the object, and when to write -----------------------------------------------------------------

def stored(obj, rv="7"):
    out = copy.deepcopy(obj)
    out["metadata"].update(resourceVersion=rv, uid="ep-uid",
                           creationTimestamp="2026-01-01T00:00:00Z")
    return out


def test_new_object_has_service_labels_headless_label_and_trigger_time():
    plan = P.plan(service(), [pod()], None, "2026-01-01T00:00:05Z")
    assert plan.create
    md = plan.obj["metadata"]
    assert (md["name"], md["namespace"]) == ("nginx", NS)
    assert md["labels"] == {"app": "nginx", "service.kubernetes.io/headless": ""}
    assert md["annotations"] == {TRIGGER_TIME: "2026-01-01T00:00:05Z"}
    plain = P.plan(service(headless=False), [pod()], None).obj["metadata"]
    assert plain["labels"] == {"app": "nginx"} and "annotations" not in plain


def test_no_write_when_only_trigger_time_or_server_metadata_differ():
    svc, pods = service(), [pod("web-0", "10.0.0.1"), pod("web-1", "10.0.0.2")]
    cur = stored(P.plan(svc, pods, None, "2026-01-01T00:00:05Z").obj)
    assert P.plan(svc, pods, cur, "") is None
    assert P.plan(svc, list(reversed(pods)), cur, "2026-01-02T00:00:00Z") is None


def test_write_keeps_metadata_and_resource_version():
    svc = service()
    cur = stored(P.plan(svc, [pod()], None).obj)
    cur["metadata"]["annotations"] = {"user": "x"}
    plan = P.plan(svc, [pod(ready=False)], cur, "2026-01-01T00:00:09Z")
    assert not plan.create
    assert plan.obj["metadata"]["resourceVersion"] == "7"
    assert plan.obj["metadata"]["annotations"] == {"user": "x",
                                                   TRIGGER_TIME: "2026-01-01T00:00:09Z"}
    assert ips(plan.obj["subsets"], "notReadyAddresses") == ["10.0.0.1"]


def test_label_change_alone_is_written():
    cur = stored(P.plan(service(), [pod()], None).obj)
    plan = P.plan(service(labels={"app": "nginx", "tier": "web"}), [pod()], cur)
    assert plan.obj["metadata"]["labels"]["tier"] == "web"


def test_stored_defaults_compare_equal():
    """What the API hands back (protocol defaulted, empty fields dropped) is not a change."""
    svc = service()
    cur = stored(P.plan(svc, [pod()], None).obj)
    del cur["subsets"][0]["ports"][0]["protocol"]
    assert P.plan(svc, [pod()], cur) is None


def test_over_capacity_truncates_and_annotates():
    pods = [pod(f"p{i}", f"10.1.{i // 250}.{i % 250}", ready=i % 3 != 0) for i in range(1200)]
    plan = P.plan(service(), pods, None)
    ready = ips(plan.obj["subsets"])
    not_ready = ips(plan.obj["subsets"], "notReadyAddresses")
    assert len(ready) == 800 and len(not_ready) == 200       # not-ready ones are cut first
    assert plan.obj["metadata"]["annotations"][P.OVER_CAPACITY] == "truncated"
    assert P.plan(service(), pods, stored(plan.obj)) is None
    under = P.plan(service(), pods[:10], stored(plan.obj))
    assert P.OVER_CAPACITY not in (under.obj["metadata"].get("annotations") or {})


def test_over_capacity_with_too_many_ready_drops_all_not_ready():
    pods = [pod(f"p{i}", f"10.1.{i // 250}.{i % 250}", ready=i < 1100) for i in range(1150)]
    ss = P.plan(service(), pods, None).obj["subsets"]
    assert len(ips(ss)) == 1000 and ips(ss, "notReadyAddresses") == []


def test_trigger_time_is_earliest_change_since_last_sync():
    t = TriggerTimeTracker()
    svc = service()
    a, b = pod("a", ready_at="2026-01-01T00:00:05Z"), pod("b", ready_at="2026-01-01T00:00:07Z")
    assert t.compute("k", svc, [a, b]) == "2026-01-01T00:00:00Z"     # the Service is new
    assert t.compute("k", svc, [a, b]) == ""                         # nothing moved
    b2 = pod("b", ready=False, ready_at="2026-01-01T00:01:00Z")
    a2 = pod("a", ready=False, ready_at="2026-01-01T00:02:00Z")
    assert t.compute("k", svc, [a2, b2]) == "2026-01-01T00:01:00Z"


# -- property: every eligible pod exactly once, with the right readiness ---------------------------

pod_strategy = st.fixed_dictionaries({
    "ready": st.booleans(), "has_ip": st.booleans(), "deleting": st.booleans(),
    "phase": st.sampled_from(["Pending", "Running", "Running", "Succeeded", "Failed"]),
    "labelled": st.booleans(), "port": st.sampled_from([None, "web", "other"]),
    "hostname": st.booleans()})


@settings(max_examples=150, deadline=None)
@given(specs=st.lists(pod_strategy, max_size=25), publish=st.booleans(),
       named=st.booleans())
def test_every_eligible_pod_exactly_once(specs, publish, named):
    svc = service(publish=publish, ports=(("web", 80, "web" if named else 80),))
    pods = []
    for i, s in enumerate(specs):
        ports = (((s["port"], 80 + i),) if s["port"] else ())
        pods.append(pod(f"p{i}", f"10.0.1.{i}" if s["has_ip"] else None, ready=s["ready"],
                        deleting=s["deleting"], phase=s["phase"], ports=ports,
                        hostname="auto" if s["hostname"] else None,
                        labels={"app": "nginx"} if s["labelled"] else {"app": "x"}))
    # the controller hands the planner only selected pods
    selected = [p for p, s in zip(pods, specs) if s["labelled"]]
    ss = P.plan(svc, selected, None).obj["subsets"]
    seen: dict[str, bool] = {}
    for sub in ss:
        for field, ready in (("addresses", True), ("notReadyAddresses", False)):
            for a in sub.get(field) or ():
                name = a["targetRef"]["name"]
                assert name not in seen, "an address appears twice"
                seen[name] = ready
                assert a.get("hostname") in (None, name)
                if named:
                    i = int(name[1:])
                    assert sub["ports"] == [{"name": "web", "port": 80 + i, "protocol": "TCP"}]
    expected = {}
    for i, s in enumerate(specs):
        if not s["labelled"] or not s["has_ip"] or s["phase"] in ("Succeeded", "Failed"):
            continue
        if s["deleting"] and not publish:
            continue
        if named and s["port"] != "web":
            continue
        expected[f"p{i}"] = publish or s["ready"]
    assert seen == expected
    # planning again over what was written is a no-op
    cur = stored(P.plan(svc, selected, None).obj)
    assert P.plan(svc, list(reversed(selected)), cur) is None


@settings(max_examples=150, deadline=None)
@given(specs=st.lists(st.tuples(st.sets(st.sampled_from(["web", "admin", "metrics"])),
                                st.booleans()), max_size=15))
def test_repacked_subsets_list_each_pod_port_pair_exactly_once(specs):
    """Repacking is lossless: (pod, port) pairs in = (address, port) pairs out, readiness kept,
    and no two subsets could be merged (their address sets differ)."""
    svc = service(ports=(("web", 80, "web"), ("admin", 81, "admin"), ("metrics", 82, "metrics")))
    number = {"web": 80, "admin": 81, "metrics": 82}
    pods = [pod(f"p{i}", f"10.0.2.{i}", ready=ready,
                ports=tuple((n, number[n] + 1000) for n in sorted(names)))
            for i, (names, ready) in enumerate(specs)]
    got = P.desired_subsets(svc, pods)
    pairs = []
    for sub in got:
        assert sub.get("ports"), "every subset lists ports"
        for field, ready in (("addresses", True), ("notReadyAddresses", False)):
            for a in sub.get(field) or ():
                for p in sub["ports"]:
                    pairs.append((a["targetRef"]["name"], p["name"], p["port"], ready))
    want = [(f"p{i}", n, number[n] + 1000, ready)
            for i, (names, ready) in enumerate(specs) for n in names]
    assert sorted(pairs) == sorted(want)
    members = [frozenset((a["ip"], f) for f in ("addresses", "notReadyAddresses")
                         for a in sub.get(f) or ()) for sub in got]
    assert len(set(members)) == len(members)
