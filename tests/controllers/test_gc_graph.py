"""The garbage collector's ownership graph: which UIDs each change wakes, and that the reverse
index always matches the owners the nodes name."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from k1s.controllers.garbage_collector.graph import (
    FOREGROUND, ORPHAN, Graph, Node, ObjectRef, OwnerRef, node_from_object,
)


def n(name, *owners, ns="default", deleting=False, finalizers=(), kind="ConfigMap") -> Node:
    return Node(ObjectRef("v1", kind, ns, name, name), tuple(owners), deleting, tuple(finalizers))


def o(name, block=False, kind="ConfigMap") -> OwnerRef:
    return OwnerRef("v1", kind, name, name, False, block)


def test_node_from_object_reads_metadata():
    obj = {"metadata": {"name": "web-0", "namespace": "prod", "uid": "u1",
                        "deletionTimestamp": "2025-01-01T00:00:00Z",
                        "finalizers": [FOREGROUND],
                        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet",
                                             "name": "web", "uid": "u0", "controller": True,
                                             "blockOwnerDeletion": True}]}}
    node = node_from_object(obj, "v1", "Pod")
    assert node.ref == ObjectRef("v1", "Pod", "prod", "web-0", "u1")
    assert node.owners == (OwnerRef("apps/v1", "StatefulSet", "web", "u0", True, True),)
    assert node.deleting_dependents and not node.orphaning
    assert node.blocks("u0") and not node.blocks("other")


def test_new_dependent_of_a_live_owner_wakes_nothing():
    g = Graph()
    assert g.observe(n("owner")) == set()
    assert g.observe(n("dep", o("owner"))) == set()
    assert [d.uid for d in g.dependents("owner")] == ["dep"]


def test_new_dependent_of_an_unseen_owner_is_checked():
    g = Graph()
    assert g.observe(n("dep", o("ghost"))) == {"dep"}


def test_dependent_of_an_owner_being_deleted_is_checked():
    g = Graph()
    g.observe(n("owner", deleting=True, finalizers=["x.io/f"]))
    assert g.observe(n("dep", o("owner"))) == {"dep"}


def test_owner_entering_foreground_or_orphan_deletion_is_checked():
    g = Graph()
    g.observe(n("owner"))
    g.observe(n("dep", o("owner", block=True)))
    assert g.observe(n("owner", deleting=True, finalizers=[FOREGROUND])) == {"owner"}
    g2 = Graph()
    g2.observe(n("owner"))
    assert g2.observe(n("owner", deleting=True, finalizers=[ORPHAN])) == {"owner"}


def test_removed_owner_wakes_its_dependents():
    g = Graph()
    g.observe(n("owner"))
    g.observe(n("a", o("owner")))
    g.observe(n("b", o("owner")))
    assert g.forget("owner") == {"a", "b"}
    assert g.forget("owner") == set()                   # idempotent


def test_removed_dependent_wakes_only_owners_waiting_in_foreground():
    g = Graph()
    g.observe(n("waiting", deleting=True, finalizers=[FOREGROUND]))
    g.observe(n("alive"))
    g.observe(n("dep", o("waiting", block=True), o("alive")))
    assert g.forget("dep") == {"waiting"}
    assert g.dependents("waiting") == [] and g.dependents("alive") == []


def test_dependent_dropping_its_reference_wakes_the_waiting_owner():
    g = Graph()
    g.observe(n("waiting", deleting=True, finalizers=[FOREGROUND]))
    g.observe(n("dep", o("waiting", block=True)))
    assert "waiting" in g.observe(n("dep"))
    assert g.dependents("waiting") == []


def test_cross_namespace_and_scope_checks():
    g = Graph()
    g.observe(n("owner", ns="a"))
    g.observe(n("node1", ns="", kind="Node"))
    dep = n("dep", o("owner"), ns="b")
    assert g.cross_namespace(dep, o("owner"))
    assert not g.cross_namespace(n("dep2", o("owner"), ns="a"), o("owner"))
    assert not g.cross_namespace(dep, o("node1", kind="Node"))   # cluster-scoped owner: fine
    assert g.observe(dep) == {"dep"}
    # a cluster-scoped object naming a namespaced owner is checked (and reported) too
    assert g.observe(n("pv", o("owner"), ns="", kind="PersistentVolume")) == {"pv"}


uids = st.sampled_from(list("abcdef"))
ops = st.lists(st.one_of(
    st.tuples(st.just("observe"), uids, st.lists(uids, max_size=3, unique=True), st.booleans()),
    st.tuples(st.just("forget"), uids, st.just([]), st.just(False))), max_size=40)


@settings(max_examples=200, deadline=None)
@given(ops)
def test_reverse_index_matches_the_nodes(steps):
    g = Graph()
    live: dict[str, Node] = {}
    for op, uid, owners, fg in steps:
        if op == "observe":
            node = n(uid, *(o(x, block=True) for x in owners if x != uid),
                     deleting=fg, finalizers=[FOREGROUND] if fg else [])
            g.observe(node)
            live[uid] = node
        else:
            woken = g.forget(uid)
            gone = live.pop(uid, None)
            if gone is not None:
                # everything still naming the removed object is woken
                assert {d for d, dn in live.items() if dn.owner(uid)} <= woken
        for owner in "abcdef":
            expect = sorted(d for d, dn in live.items() if dn.owner(owner))
            assert [d.uid for d in g.dependents(owner)] == expect
    assert len(g) == len(live)
