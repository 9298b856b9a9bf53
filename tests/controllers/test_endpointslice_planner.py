"""EndpointSlice planner: endpoint content and conditions, labels and owner, packing at most
`max` endpoints per slice, and churn: slices that did not change are never rewritten."""

from __future__ import annotations

import copy
import itertools

import pytest
from hypothesis import given, settings, strategies as st

from k1s.controllers.endpointslice import planner as P
from k1s.controllers.endpoints.pods import TRIGGER_TIME
from test_endpoints_planner import pod, ref, service

_names = itertools.count()


def apply(existing: list[dict], plan: P.Plan) -> list[dict]:
    """The slices after the API carried out `plan` (names and resourceVersions assigned)."""
    gone = {s["metadata"]["name"] for s in plan.delete}
    updated = {s["metadata"]["name"]: s for s in plan.update}
    out = []
    for s in existing:
        name = s["metadata"]["name"]
        if name in gone:
            continue
        s = copy.deepcopy(updated.get(name, s))
        if name in updated:
            s["metadata"]["resourceVersion"] = str(next(_names))
        out.append(s)
    for s in plan.create:
        s = copy.deepcopy(s)
        s["metadata"]["name"] = s["metadata"].pop("generateName") + f"x{next(_names)}"
        s["metadata"]["resourceVersion"] = str(next(_names))
        out.append(s)
    return out


def converge(svc, pods, existing=(), **kw):
    world = apply(list(existing), P.plan(svc, pods, list(existing), **kw))
    return world


def all_endpoints(world):
    return [e for s in world for e in s["endpoints"]]


def many(n, start=0, **kw):
    return [pod(f"web-{i}", f"10.0.{i // 200}.{i % 200 + 1}", **kw) for i in range(start, n)]


# -- content --------------------------------------------------------------------------------------

def test_seed_service_one_slice():
    svc = service()
    world = converge(svc, [pod("web-0", "10.0.0.1"), pod("web-1", "10.0.0.2")],
                     zone_of=lambda n: "zone-a" if n == "node-1" else None)
    assert len(world) == 1
    s = world[0]
    assert s["addressType"] == "IPv4"
    assert s["metadata"]["name"].startswith("nginx-")
    assert s["metadata"]["labels"] == {
        "app": "nginx", "kubernetes.io/service-name": "nginx",
        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
        "service.kubernetes.io/headless": ""}
    assert s["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Service", "name": "nginx", "uid": "uid-nginx",
         "controller": True, "blockOwnerDeletion": True}]
    assert s["ports"] == [{"name": "web", "port": 80, "protocol": "TCP"}]
    assert sorted(s["endpoints"], key=lambda e: e["addresses"]) == [
        {"addresses": ["10.0.0.1"], "conditions": {"ready": True, "serving": True,
                                                   "terminating": False},
         "hostname": "web-0", "targetRef": ref("web-0"), "nodeName": "node-1", "zone": "zone-a"},
        {"addresses": ["10.0.0.2"], "conditions": {"ready": True, "serving": True,
                                                   "terminating": False},
         "hostname": "web-1", "targetRef": ref("web-1"), "nodeName": "node-1", "zone": "zone-a"}]


CONDITIONS = [
    # (case, publish, pod kwargs, (ready, serving, terminating) or None when left out)
    ("ready", False, {}, (True, True, False)),
    ("not ready", False, {"ready": False}, (False, False, False)),
    ("not ready, publish", True, {"ready": False}, (True, False, False)),
    ("terminating ready", False, {"deleting": True}, (False, True, True)),
    ("terminating not ready", False, {"deleting": True, "ready": False}, (False, False, True)),
    ("terminating, publish", True, {"deleting": True}, (True, True, True)),
    ("terminal Succeeded", False, {"phase": "Succeeded", "ready": False}, None),
    ("terminal Failed, publish", True, {"phase": "Failed"}, None),
    ("no IP", False, {"ip": None}, None),
]


@pytest.mark.parametrize("case,publish,pkw,want", CONDITIONS, ids=[c[0] for c in CONDITIONS])
def test_conditions(case, publish, pkw, want):
    eps = all_endpoints(converge(service(publish=publish), [pod(**pkw)]))
    if want is None:
        assert eps == []
    else:
        c = eps[0]["conditions"]
        assert (c["ready"], c["serving"], c["terminating"]) == want


def test_hostname_only_under_governing_service():
    pods = [pod("web-0", "10.0.0.1"), pod("web-1", "10.0.0.2")]
    other = all_endpoints(converge(service("nginx-other"), pods))
    assert len(other) == 2 and all("hostname" not in e for e in other)
    other_labels = converge(service("nginx-other"), pods)[0]["metadata"]["labels"]
    assert other_labels["kubernetes.io/service-name"] == "nginx-other"


def test_no_zone_label_no_zone_and_non_headless_has_no_headless_label():
    world = converge(service(headless=False), [pod()])
    assert "zone" not in world[0]["endpoints"][0]
    assert "service.kubernetes.io/headless" not in world[0]["metadata"]["labels"]


def test_pods_grouped_by_resolved_ports():
    svc = service(ports=(("http", 80, "web"),))
    pods = [pod("a", "10.0.0.1", ports=(("web", 8080),)),
            pod("b", "10.0.0.2", ports=(("web", 9090),)),
            pod("c", "10.0.0.3", ports=(("web", 8080),)), pod("d", "10.0.0.4", ports=())]
    world = converge(svc, pods)
    shape = sorted((tuple(p["port"] for p in s["ports"]),
                    tuple(sorted(e["targetRef"]["name"] for e in s["endpoints"]))) for s in world)
    # upstream keeps a pod with no resolvable port, in a slice without ports
    assert shape == [((), ("d",)), ((8080,), ("a", "c")), ((9090,), ("b",))]


def test_placeholder_slice_when_no_endpoints_and_kept():
    svc = service()
    world = converge(svc, [])
    assert len(world) == 1 and world[0]["endpoints"] == [] and world[0]["ports"] == []
    assert P.plan(svc, [], world).empty()
    # the first endpoint reuses the placeholder rather than create + delete
    plan = P.plan(svc, [pod()], world)
    assert not plan.create and not plan.delete and len(plan.update) == 1
    assert plan.update[0]["metadata"]["name"] == world[0]["metadata"]["name"]
    # all endpoints gone: back to a placeholder, again in place
    world = apply(world, plan)
    plan = P.plan(svc, [], world)
    assert not plan.create and not plan.delete and plan.update[0]["endpoints"] == []


def test_slices_of_another_service_incarnation_are_replaced():
    old = converge(service(uid="old"), [pod()])
    plan = P.plan(service(uid="new"), [pod()], old)
    assert [s["metadata"]["name"] for s in plan.delete] == [old[0]["metadata"]["name"]]
    assert len(plan.create) == 1
    assert plan.create[0]["metadata"]["ownerReferences"][0]["uid"] == "new"


def test_trigger_time_on_written_slices_only():
    svc = service()
    world = converge(svc, many(150), trigger_time="2026-01-01T00:00:05Z")
    assert all(s["metadata"]["annotations"][TRIGGER_TIME] == "2026-01-01T00:00:05Z" for s in world)
    pods = many(150)
    pods[149] = pod("web-149", pods[149]["status"]["podIP"], ready=False)
    plan = P.plan(svc, pods, world, trigger_time="2026-01-01T00:09:00Z")
    assert len(plan.update) == 1 and not plan.create and not plan.delete
    assert plan.update[0]["metadata"]["annotations"][TRIGGER_TIME] == "2026-01-01T00:09:00Z"


def test_label_change_rewrites_every_slice():
    world = converge(service(), many(150))
    plan = P.plan(service(labels={"app": "nginx", "v": "2"}), many(150), world)
    assert len(plan.update) == 2 and not plan.create and not plan.delete
    assert all(s["metadata"]["labels"]["v"] == "2" for s in plan.update)


# -- packing and churn ----------------------------------------------------------------------------

def test_packing_at_most_max_per_slice():
    world = converge(service(), many(1000))
    assert len(world) == 10 and all(len(s["endpoints"]) == 100 for s in world)
    small = converge(service(), many(30), max_per_slice=7)
    assert sorted(len(s["endpoints"]) for s in small) == [2, 7, 7, 7, 7]


def test_one_pod_turning_ready_rewrites_one_slice():
    svc = service()
    world = converge(svc, many(1000, ready=False))
    pods = many(1000, ready=False)
    pods[437] = pod("web-437", pods[437]["status"]["podIP"])
    plan = P.plan(svc, pods, world)
    assert len(plan.update) == 1 and not plan.create and not plan.delete
    assert any(e["targetRef"]["name"] == "web-437" for e in plan.update[0]["endpoints"])


def test_new_pod_fills_the_partly_full_slice_without_touching_full_ones():
    svc = service()
    world = converge(svc, many(250))       # 100 + 100 + 50
    plan = P.plan(svc, many(251), world)
    assert not plan.create and not plan.delete and len(plan.update) == 1
    assert len(plan.update[0]["endpoints"]) == 51


def test_removed_pod_rewrites_only_its_slice_and_empty_slice_is_deleted():
    svc = service()
    world = converge(svc, many(101))       # 100 + 1
    lone = next(s for s in world if len(s["endpoints"]) == 1)
    plan = P.plan(svc, many(100), world)
    assert not plan.create and not plan.update
    assert [s["metadata"]["name"] for s in plan.delete] == [lone["metadata"]["name"]]


def test_replanning_converged_state_writes_nothing():
    svc = service()
    world = converge(svc, many(333))
    assert P.plan(svc, list(reversed(many(333))), world).empty()


def test_stored_defaults_compare_equal():
    svc = service()
    world = converge(svc, many(3))
    for s in world:
        for e in s["endpoints"]:
            e["conditions"]["extra"] = None
            e["targetRef"]["resourceVersion"] = ""
    assert P.plan(svc, many(3), world).empty()


# -- property: random pod churn, invariants after every step ---------------------------------------

step = st.tuples(st.integers(0, 59), st.sampled_from(["add", "ready", "unready", "delete",
                                                      "terminate", "fail", "noip"]))


@settings(max_examples=60, deadline=None)
@given(steps=st.lists(step, min_size=1, max_size=40), publish=st.booleans(),
       max_per_slice=st.sampled_from([1, 3, 10, 100]))
def test_every_eligible_pod_exactly_once(steps, publish, max_per_slice):
    svc = service(publish=publish)
    pods: dict[int, dict] = {}
    world: list[dict] = []
    for i, action in steps:
        name, ip = f"web-{i}", f"10.0.0.{i + 1}"
        if action == "add":
            pods[i] = pod(name, ip, ready=False)
        elif i not in pods:
            continue
        elif action == "ready":
            pods[i] = pod(name, ip)
        elif action == "unready":
            pods[i] = pod(name, ip, ready=False)
        elif action == "delete":
            del pods[i]
        elif action == "terminate":
            was_ready = pods[i]["status"]["conditions"][0]["status"] == "True"
            pods[i] = pod(name, ip, deleting=True, ready=was_ready)
        elif action == "fail":
            pods[i] = pod(name, ip, phase="Failed", ready=False)
        elif action == "noip":
            pods[i] = pod(name, None, ready=False)
        before = {s["metadata"]["name"]: s for s in world}
        plan = P.plan(svc, list(pods.values()), world, max_per_slice=max_per_slice)
        world = apply(world, plan)
        # every update changes its slice (no rewrite of a slice that did not change)
        for u in plan.update:
            old = before[u["metadata"]["name"]]
            assert (u["endpoints"], u["ports"], u["metadata"]["labels"]) != \
                (old["endpoints"], old["ports"], old["metadata"]["labels"])
        # untouched slices are exactly what they were
        touched = {s["metadata"]["name"] for s in plan.update + plan.delete}
        for s in world:
            n = s["metadata"]["name"]
            if n in before and n not in touched:
                assert s is not None and s == before[n]
        # every eligible pod exactly once, with upstream's conditions
        seen = {}
        for s in world:
            assert len(s["endpoints"]) <= max_per_slice
            for e in s["endpoints"]:
                n = e["targetRef"]["name"]
                assert n not in seen
                seen[n] = (e["conditions"]["ready"], e["conditions"]["serving"],
                           e["conditions"]["terminating"])
        want = {}
        for p in pods.values():
            st_ = p["status"]
            if not st_.get("podIP") or st_["phase"] in ("Succeeded", "Failed"):
                continue
            serving = st_["conditions"][0]["status"] == "True"
            term = "deletionTimestamp" in p["metadata"]
            want[p["metadata"]["name"]] = (publish or (serving and not term), serving, term)
        assert seen == want
        # at most one slice has room to spare per port set would be upstream's ideal; we
        # only require no empty slice unless it is the single placeholder
        empties = [s for s in world if not s["endpoints"]]
        assert not empties or (len(world) == 1 and not want)
        assert world, "a Service always has at least one slice"
        assert P.plan(svc, list(pods.values()), world, max_per_slice=max_per_slice).empty()
