"""EndpointSlice mirroring: the planner's rules (what is mirrored, ready/not-ready, address
types, labels/annotations/owner, reuse of slices, truncation, no placeholder), then the
controller against the real API server with the garbage collector: a selector-less Service's
hand-written Endpoints appear as slices, follow edits, leave when a selector is added, and go
with the Endpoints object."""

from __future__ import annotations

import pytest

from k1s.api import registry
from k1s.controllers.endpointslicemirroring import planner as P
from k1s.controllers.endpointslicemirroring.controller import EndpointSliceMirroringController
from k1s.controllers.garbage_collector.controller import GarbageCollector
from ctrl_util import eventually, running_controllers

NS = "default"
SVC = registry.core("services")
EP = registry.core("endpoints")
SLICE = registry.get("endpointslices.discovery.k8s.io")


def endpoints(subsets, labels=None, annotations=None, uid="ep-uid", name="db"):
    md = {"name": name, "namespace": NS, "uid": uid}
    if labels:
        md["labels"] = labels
    if annotations:
        md["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Endpoints", "metadata": md, "subsets": subsets}


def service(selector=None, name="db"):
    spec = {"ports": [{"port": 5432}]}
    if selector:
        spec["selector"] = selector
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": NS},
            "spec": spec}


SUBSET = {"addresses": [{"ip": "192.0.2.7", "hostname": "db-a"}, {"ip": "2001:db8::7"}],
          "notReadyAddresses": [{"ip": "192.0.2.8", "nodeName": "n1"}, {"ip": "not-an-ip"}],
          "ports": [{"name": "pg", "port": 5432}]}


# -- planner -----------------------------------------------------------------------------------
def test_what_is_mirrored():
    assert P.should_mirror(endpoints([SUBSET]), service())
    assert not P.should_mirror(endpoints([SUBSET]), service(selector={"app": "db"}))
    assert not P.should_mirror(endpoints([SUBSET]), None)
    assert not P.should_mirror(endpoints([SUBSET], labels={P.SKIP_MIRROR_LABEL: "true"}),
                               service())
    assert not P.should_mirror(endpoints([SUBSET], annotations={P.LEADER_ANNOTATION: "{}"}),
                               service())


def test_a_subset_becomes_one_slice_per_address_type_with_ready_and_not_ready():
    plan = P.plan(endpoints([SUBSET], labels={"team": "a"},
                            annotations={"note": "x", P.LAST_APPLIED: "{}"}), service(), [])
    assert not plan.update and not plan.delete
    by_type = {sl["addressType"]: sl for sl in plan.create}
    assert set(by_type) == {"IPv4", "IPv6"}
    v4 = by_type["IPv4"]
    assert v4["ports"] == [{"name": "pg", "port": 5432, "protocol": "TCP"}]
    assert v4["endpoints"] == [
        {"addresses": ["192.0.2.7"], "conditions": {"ready": True}, "hostname": "db-a"},
        {"addresses": ["192.0.2.8"], "conditions": {"ready": False}, "nodeName": "n1"}]
    assert by_type["IPv6"]["endpoints"] == [{"addresses": ["2001:db8::7"],
                                             "conditions": {"ready": True}}]
    md = v4["metadata"]
    assert md["generateName"] == "db-"
    assert md["labels"] == {"team": "a", "kubernetes.io/service-name": "db",
                            "endpointslice.kubernetes.io/managed-by":
                                "endpointslicemirroring-controller.k8s.io"}
    assert md["annotations"] == {"note": "x"}
    assert md["ownerReferences"] == [{"apiVersion": "v1", "kind": "Endpoints", "name": "db",
                                      "uid": "ep-uid", "controller": True,
                                      "blockOwnerDeletion": True}]


def _stored(plan, start=0):
    out = []
    for i, sl in enumerate(plan.create):
        sl = dict(sl)
        sl["metadata"] = dict(sl["metadata"], name=f"db-{start + i}")
        out.append(sl)
    return out


def test_an_edit_updates_in_place_and_an_unchanged_object_writes_nothing():
    ep = endpoints([{"addresses": [{"ip": "192.0.2.7"}], "ports": [{"port": 5432}]}])
    stored = _stored(P.plan(ep, service(), []))
    assert P.plan(ep, service(), stored).empty()
    ep2 = endpoints([{"addresses": [{"ip": "192.0.2.9"}], "ports": [{"port": 5432}]}])
    plan = P.plan(ep2, service(), stored)
    # the old address's slice is emptied and the new one's created: merged into one update
    assert not plan.create and not plan.delete
    assert [e["addresses"] for e in plan.update[0]["endpoints"]] == [["192.0.2.9"]]
    assert plan.update[0]["metadata"]["name"] == "db-0"


def test_no_addresses_no_slices_and_selector_added_deletes_them():
    ep = endpoints([{"addresses": [{"ip": "192.0.2.7"}], "ports": [{"port": 5432}]}])
    stored = _stored(P.plan(ep, service(), []))
    assert P.plan(endpoints([]), service(), []).empty()          # no placeholder
    assert P.plan(ep, service(selector={"app": "x"}), stored).delete == stored
    assert P.plan(None, service(), stored).delete == stored
    # a slice of an older Endpoints object of the same name goes; the new one gets its own
    plan = P.plan(endpoints(ep["subsets"], uid="new-uid"), service(), stored)
    assert plan.delete == stored and not plan.update
    assert [sl["metadata"]["ownerReferences"][0]["uid"] for sl in plan.create] == ["new-uid"]


def test_target_refs_are_copied_whole_and_a_stored_copy_is_not_rewritten():
    ref = {"kind": "Pod", "namespace": NS, "name": "db-0", "uid": "p1",
           "resourceVersion": "42", "fieldPath": "spec.containers{db}"}
    ep = endpoints([{"addresses": [{"ip": "192.0.2.7", "targetRef": ref}],
                     "ports": [{"port": 5432}]}])
    (sl,) = P.plan(ep, service(), []).create
    assert sl["endpoints"][0]["targetRef"] == ref
    assert P.plan(ep, service(), _stored(P.plan(ep, service(), []))).empty()


def test_invalid_addresses_do_not_count_towards_the_cap():
    addrs = [{"ip": "not-an-ip"}] * 5 + [{"ip": f"10.1.{i // 250}.{i % 250 + 1}"}
                                         for i in range(P.MAX_PER_SUBSET)]
    plan = P.plan(endpoints([{"addresses": addrs, "ports": [{"port": 80}]}]), service(), [])
    assert sum(len(sl["endpoints"]) for sl in plan.create) == P.MAX_PER_SUBSET


def test_a_subset_is_truncated_at_the_mirroring_maximum_ready_first():
    ready = [{"ip": f"10.1.{i // 250}.{i % 250 + 1}"} for i in range(990)]
    not_ready = [{"ip": f"10.2.{i // 250}.{i % 250 + 1}"} for i in range(30)]
    plan = P.plan(endpoints([{"addresses": ready, "notReadyAddresses": not_ready,
                              "ports": [{"port": 80}]}]), service(), [])
    eps = [e for sl in plan.create for e in sl["endpoints"]]
    assert len(eps) == P.MAX_PER_SUBSET
    assert sum(e["conditions"]["ready"] for e in eps) == 990
    assert all(len(sl["endpoints"]) <= 100 for sl in plan.create)


# -- controller --------------------------------------------------------------------------------
@pytest.fixture
async def client(api_server):
    async with running_controllers(api_server.url, EndpointSliceMirroringController,
                                   GarbageCollector) as c:
        yield c


async def mirrored(c, pred, name="db"):
    async def check():
        items = (await c.list(SLICE, NS, label_selector=f"kubernetes.io/service-name={name}"))[
            "items"]
        return (items,) if pred(items) else None
    return (await eventually(check, timeout=20))[0]


def ips(items):
    return sorted((e["addresses"][0], e["conditions"]["ready"])
                  for sl in items for e in sl.get("endpoints") or ())


async def test_hand_written_endpoints_are_mirrored_and_followed(client):
    await client.create(SVC, service(), NS)
    valid = dict(SUBSET, notReadyAddresses=SUBSET["notReadyAddresses"][:1])
    ep = await client.create(EP, endpoints([valid]), NS)
    items = await mirrored(client, lambda it: len(it) == 2)
    assert ips(items) == [("192.0.2.7", True), ("192.0.2.8", False), ("2001:db8::7", True)]
    assert all(sl["metadata"]["ownerReferences"][0]["uid"] == ep["metadata"]["uid"]
               for sl in items)
    ep["subsets"] = [{"addresses": [{"ip": "192.0.2.9"}], "ports": [{"port": 5432}]}]
    await client.update(EP, ep)
    items = await mirrored(client, lambda it: ips(it) == [("192.0.2.9", True)])
    assert len(items) == 1


async def test_a_slice_edited_by_someone_else_is_set_right(client):
    await client.create(SVC, service(), NS)
    await client.create(EP, endpoints([{"addresses": [{"ip": "192.0.2.7"}],
                                        "ports": [{"port": 5432}]}]), NS)
    (sl,) = await mirrored(client, lambda it: len(it) == 1)
    sl["endpoints"] = []
    await client.update(SLICE, sl)
    await mirrored(client, lambda it: ips(it) == [("192.0.2.7", True)])


async def test_a_selector_ends_mirroring_and_deleting_endpoints_takes_the_slices(client):
    await client.create(SVC, service(), NS)
    await client.create(EP, endpoints([{"addresses": [{"ip": "192.0.2.7"}],
                                        "ports": [{"port": 5432}]}]), NS)
    await mirrored(client, lambda it: len(it) == 1)
    svc = await client.get(SVC, "db", NS)
    svc["spec"]["selector"] = {"app": "db"}
    await client.update(SVC, svc)
    await mirrored(client, lambda it: it == [])
    await client.create(SVC, service(name="other"), NS)
    await client.create(EP, endpoints([{"addresses": [{"ip": "192.0.2.5"}],
                                        "ports": [{"port": 1}]}], name="other"), NS)
    await mirrored(client, lambda it: len(it) == 1, name="other")
    await client.delete(EP, "other", NS)
    await mirrored(client, lambda it: it == [], name="other")
