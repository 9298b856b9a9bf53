"""The garbage collector's pure planner: one table row per rule, and a simulated cluster.

The simulation plays the API server's deletion semantics (propagation finalizers, removal when
the last finalizer goes) against the planner on random ownership forests and random deletion
orders, checking the collector's safety invariants after every step and the final state once
nothing changes any more.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import pytest
from hypothesis import example, given, settings, strategies as st

from k1s.controllers.garbage_collector.graph import FOREGROUND, ORPHAN, Node, ObjectRef, OwnerRef
from k1s.controllers.garbage_collector.planner import (
    DeleteObject, DependentView, OwnerStatus, RemoveFinalizer, RemoveOwnerRef, UnblockOwnerRefs,
    Wait, Warn, plan,
)

P, A, W = OwnerStatus.PRESENT, OwnerStatus.ABSENT, OwnerStatus.WAITING


def ref(name: str, ns: str = "default", kind: str = "ConfigMap") -> ObjectRef:
    return ObjectRef("v1", kind, ns, name, "uid-" + name)


def oref(name: str, block: bool = False, kind: str = "ConfigMap", api: str = "v1") -> OwnerRef:
    return OwnerRef(api, kind, name, "uid-" + name, controller=False, block_owner_deletion=block)


def node(name: str, owners=(), deleting=False, finalizers=(), ns="default") -> Node:
    return Node(ref(name, ns), tuple(owners), deleting, tuple(finalizers))


def dep(name: str, blocks=False, deleting=False, deleting_dependents=False) -> DependentView:
    return DependentView(ref(name), blocks, deleting, deleting_dependents)


# -- the table ---------------------------------------------------------------------------------
CASES = [
    # (id, item, dependents, owner statuses, expected actions)
    ("O1 orphan strips refs then finalizer",
     node("o", deleting=True, finalizers=[ORPHAN]), [dep("a"), dep("b", blocks=True)], {},
     [RemoveOwnerRef(ref("a"), "uid-o"), RemoveOwnerRef(ref("b"), "uid-o"),
      RemoveFinalizer(ref("o"), ORPHAN)]),
    ("O1 orphan without dependents",
     node("o", deleting=True, finalizers=["x.io/keep", ORPHAN]), [], {},
     [RemoveFinalizer(ref("o"), ORPHAN)]),
    ("F1 no dependents",
     node("o", deleting=True, finalizers=[FOREGROUND]), [], {},
     [RemoveFinalizer(ref("o"), FOREGROUND)]),
    ("F1 only non-blocking dependents",
     node("o", deleting=True, finalizers=[FOREGROUND]), [dep("a"), dep("b")], {},
     [RemoveFinalizer(ref("o"), FOREGROUND)]),
    ("F2 blocking dependents: wait, recheck the ones not yet deleting",
     node("o", deleting=True, finalizers=[FOREGROUND]),
     [dep("a", blocks=True), dep("b", blocks=True, deleting=True), dep("c")], {},
     [Wait("waiting for dependents to be deleted", (ref("a"), ref("c")))]),
    ("D0 deleting with other finalizers only",
     node("o", [oref("gone")], deleting=True, finalizers=["x.io/keep"]), [dep("a")],
     {"uid-gone": A}, []),
    ("N0 no owners", node("x"), [dep("a")], {}, []),
    ("N2 solid owner keeps it", node("x", [oref("p")]), [], {"uid-p": P}, []),
    ("N2 solid + dangling + waiting: strip the others",
     node("x", [oref("p"), oref("gone"), oref("fg")]), [],
     {"uid-p": P, "uid-gone": A, "uid-fg": W},
     [RemoveOwnerRef(ref("x"), "uid-gone"), RemoveOwnerRef(ref("x"), "uid-fg")]),
    ("N3 waiting owner, has dependents: foreground",
     node("x", [oref("fg", block=True)]), [dep("c", blocks=True)], {"uid-fg": W},
     [DeleteObject(ref("x"), "Foreground")]),
    ("N3 with a dependent itself deleting in foreground: unblock first",
     node("x", [oref("fg", block=True)]), [dep("c", deleting=True, deleting_dependents=True)],
     {"uid-fg": W}, [UnblockOwnerRefs(ref("x")), DeleteObject(ref("x"), "Foreground")]),
    ("N4 waiting owner, leaf: background",
     node("x", [oref("fg", block=True)]), [], {"uid-fg": W}, [DeleteObject(ref("x"), "Background")]),
    ("N4 all owners absent: background",
     node("x", [oref("a1"), oref("a2")]), [dep("c")], {"uid-a1": A, "uid-a2": A},
     [DeleteObject(ref("x"), "Background")]),
    ("N4 absent + waiting, no dependents: background",
     node("x", [oref("a1"), oref("fg")]), [], {"uid-a1": A, "uid-fg": W},
     [DeleteObject(ref("x"), "Background")]),
    ("N4 honours an orphan finalizer already present",
     node("x", [oref("a1")], finalizers=[ORPHAN]), [], {"uid-a1": A},
     [DeleteObject(ref("x"), "Orphan")]),
    ("N4 honours a foreground finalizer already present",
     node("x", [oref("a1")], finalizers=[FOREGROUND]), [], {"uid-a1": A},
     [DeleteObject(ref("x"), "Foreground")]),
    ("N1 unknown kind: never collected",
     node("x", [oref("a1"), oref("w", kind="Widget", api="example.com/v1")]), [],
     {"uid-a1": A, "uid-w": OwnerStatus.UNKNOWN_KIND}, []),
    ("missing status is treated as present (never delete on missing facts)",
     node("x", [oref("a1"), oref("p")]), [], {"uid-a1": A},
     [RemoveOwnerRef(ref("x"), "uid-a1")]),
]


@pytest.mark.parametrize("item,dependents,owners,expected",
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_plan_table(item, dependents, owners, expected):
    assert plan(item, dependents, owners) == expected


def test_invalid_scope_reported_and_kept():
    item = Node(ObjectRef("v1", "PersistentVolume", "", "pv1", "uid-pv1"),
                (oref("cm"),), False, ())
    actions = plan(item, [], {"uid-cm": OwnerStatus.INVALID_SCOPE})
    assert actions == [Warn(item.ref, "OwnerRefInvalidNamespace",
                            'ownerRef [v1/ConfigMap, namespace: , name: cm, uid: uid-cm] '
                            'does not exist in namespace ""')]


def test_cross_namespace_owner_is_absent_and_reported():
    item = node("x", [oref("elsewhere")], ns="team-a")
    actions = plan(item, [], {"uid-elsewhere": OwnerStatus.INVALID_NAMESPACE})
    assert actions == [
        Warn(item.ref, "OwnerRefInvalidNamespace",
             'ownerRef [v1/ConfigMap, namespace: team-a, name: elsewhere, uid: uid-elsewhere] '
             'does not exist in namespace "team-a"'),
        DeleteObject(item.ref, "Background"),
    ]


def test_cross_namespace_ref_stripped_when_a_valid_owner_exists():
    item = node("x", [oref("p"), oref("elsewhere")], ns="team-a")
    actions = plan(item, [], {"uid-p": P, "uid-elsewhere": OwnerStatus.INVALID_NAMESPACE})
    assert [type(a) for a in actions] == [Warn, RemoveOwnerRef]
    assert actions[1] == RemoveOwnerRef(item.ref, "uid-elsewhere")


# -- the simulation ----------------------------------------------------------------------------
HOLD = "example.com/hold"      # a finalizer some other controller owns


@dataclass
class SimObj:
    uid: str
    owners: list[OwnerRef]
    finalizers: list[str] = field(default_factory=list)
    deleting: bool = False


class Violation(AssertionError):
    pass


class Cluster:
    """The API server's deletion semantics on a dict, with the collector's invariants checked."""

    def __init__(self, objs: list[SimObj]):
        self.objs = {o.uid: o for o in objs}
        self.first_policy: dict[str, str] = {}
        self.user_deleted: set[str] = set()
        # the owner each object started with (forests only: used to walk a subtree's chains)
        self.parent = {o.uid: o.owners[0].uid for o in objs if len(o.owners) == 1}
        # objects whose references the collector's cycle guard made non-blocking (upstream
        # attemptToDeleteItem: a live object with a waiting owner and a dependent that is itself
        # deleting in foreground -- any dependent, blocking or not, a false positive upstream
        # accepts). From then on its owners no longer wait for it, nor for what hangs below it.
        self.unblocked: set[str] = set()
        # owner uid -> the objects reachable from it through blockOwnerDeletion references when
        # the user deleted it in Foreground
        self.foreground_subtree: dict[str, set[str]] = {}

    def blocking_subtree(self, uid: str) -> set[str]:
        out: set[str] = set()
        todo = [uid]
        while todo:
            u = todo.pop()
            for d in self.objs.values():
                if d.uid not in out and any(r.uid == u and r.block_owner_deletion for r in d.owners):
                    out.add(d.uid)
                    todo.append(d.uid)
        return out

    def cut_off(self, uid: str, top: str) -> bool:
        """Whether the owner `top` stopped waiting for `uid` (a member of its blocking subtree):
        some object on the chain from uid up to top was deleted by a user (Background removes it
        at once, Orphan strips its dependents' references) or had its references unblocked by
        the collector's cycle guard."""
        u: str | None = uid
        while u is not None and u != top:
            if u in self.user_deleted or u in self.unblocked:
                return True
            u = self.parent.get(u)
        return False

    # what the collector observes (the truth: the simulation has no informer lag)
    def node(self, uid: str) -> Node:
        o = self.objs[uid]
        return Node(ObjectRef("v1", "ConfigMap", "ns", uid, uid), tuple(o.owners), o.deleting,
                    tuple(o.finalizers))

    def dependents(self, uid: str) -> list[DependentView]:
        return [DependentView.of(self.node(d.uid), uid) for d in self.objs.values()
                if any(r.uid == uid for r in d.owners)]

    def status(self, owner_uid: str) -> OwnerStatus:
        o = self.objs.get(owner_uid)
        if o is None:
            return OwnerStatus.ABSENT
        if o.deleting and FOREGROUND in o.finalizers:
            return OwnerStatus.WAITING
        return OwnerStatus.PRESENT

    # API server behaviour
    def delete(self, uid: str, policy: str) -> None:
        o = self.objs.get(uid)
        if o is None or o.deleting:
            return
        self.first_policy[uid] = policy
        if policy == "Foreground":
            o.finalizers.append(FOREGROUND)
        elif policy == "Orphan":
            o.finalizers.append(ORPHAN)
        if o.finalizers:
            o.deleting = True
        else:
            self._remove(uid)

    def _remove(self, uid: str) -> None:
        del self.objs[uid]

    def remove_finalizer(self, uid: str, finalizer: str) -> None:
        o = self.objs.get(uid)
        if o is None or finalizer not in o.finalizers:
            return
        o.finalizers.remove(finalizer)
        if o.deleting and not o.finalizers:
            self._remove(uid)

    # the collector
    def gc_step(self, uid: str) -> bool:
        if uid not in self.objs:
            return False
        item = self.node(uid)
        actions = plan(item, self.dependents(uid), {r.uid: self.status(r.uid) for r in item.owners})
        changed = False
        for a in actions:
            changed |= self.apply(a)
        return changed

    def apply(self, a) -> bool:
        if isinstance(a, DeleteObject):
            o = self.objs.get(a.ref.uid)
            if o is None or o.deleting:
                return False
            for r in o.owners:
                if self.status(r.uid) is OwnerStatus.PRESENT:
                    raise Violation(f"{a.ref.uid} deleted while owner {r.uid} is present")
            self.delete(a.ref.uid, a.propagation)
            return True
        if isinstance(a, RemoveOwnerRef):
            o = self.objs.get(a.dependent.uid)
            if o is None or not any(r.uid == a.owner_uid for r in o.owners):
                return False
            o.owners = [r for r in o.owners if r.uid != a.owner_uid]
            return True
        if isinstance(a, UnblockOwnerRefs):
            o = self.objs[a.ref.uid]
            fg = [d.uid for d in self.objs.values() if d.deleting and FOREGROUND in d.finalizers
                  and any(r.uid == o.uid for r in d.owners)]
            if not fg:
                raise Violation(f"{o.uid} unblocked without a dependent deleting in foreground")
            before = list(o.owners)
            o.owners = [OwnerRef(r.api_version, r.kind, r.name, r.uid, r.controller, False)
                        for r in o.owners]
            if before != o.owners:
                self.unblocked.add(o.uid)
            return before != o.owners
        if isinstance(a, RemoveFinalizer):
            o = self.objs.get(a.owner.uid)
            if o is None or a.finalizer not in o.finalizers:
                return False
            if a.finalizer == FOREGROUND:
                blocking = [d for d in self.objs.values()
                            if any(r.uid == o.uid and r.block_owner_deletion for r in d.owners)]
                if blocking:
                    raise Violation(f"{o.uid} released while {blocking[0].uid} blocks it")
                subtree = self.foreground_subtree.get(o.uid, set())
                left = sorted(u for u in subtree & self.objs.keys() if not self.cut_off(u, o.uid))
                if left:
                    raise Violation(f"{o.uid} released before its blocking subtree {left}")
            if a.finalizer == ORPHAN:
                still = [d.uid for d in self.objs.values() if any(r.uid == o.uid for r in d.owners)]
                if still:
                    raise Violation(f"{o.uid} orphaned but {still} still reference it")
            self.remove_finalizer(o.uid, a.finalizer)
            return True
        return False   # Wait / Warn change nothing

    def quiesce(self, order: list[str], max_rounds: int = 200) -> None:
        """Run the collector over every object, in the given order, until nothing changes."""
        for _ in range(max_rounds):
            if not any([self.gc_step(u) for u in order if u in self.objs]):
                return
        raise Violation("the collector did not converge")


POLICIES = st.sampled_from(["Background", "Foreground", "Orphan"])


@st.composite
def clusters(draw, max_owners: int):
    n = draw(st.integers(1, 8))
    objs = []
    for i in range(n):
        candidates = list(range(i))
        k = draw(st.integers(0, min(max_owners, len(candidates))))
        owners = draw(st.lists(st.sampled_from(candidates), min_size=k, max_size=k, unique=True)) \
            if candidates and k else []
        refs = [OwnerRef("v1", "ConfigMap", f"o{j}", f"o{j}", False, draw(st.booleans()))
                for j in owners]
        held = draw(st.booleans()) and draw(st.booleans())   # about one in four
        objs.append(SimObj(f"o{i}", refs, [HOLD] if held else []))
    steps = draw(st.lists(st.tuples(st.sampled_from(["delete", "gc", "release"]),
                                    st.integers(0, n - 1), POLICIES), max_size=25))
    order = draw(st.permutations([o.uid for o in objs]))   # the collector's work order
    return objs, steps, order


def run(objs, steps, order, *, track_foreground: bool) -> tuple[Cluster, dict[str, list[str]]]:
    """Play the steps, then let the collector (and the holder of HOLD) finish.

    track_foreground: check that a Foreground-deleted owner outlives its whole blocking subtree,
    except the parts a user's own deletion or the collector's cycle guard cut off (see
    Cluster.cut_off); true in forests; with shared ownership a dependent with another live
    owner is released from the foreground owner instead, as upstream does."""
    objs = copy.deepcopy(objs)      # the cluster mutates them; explicit examples are reused
    original_owners = {o.uid: [r.uid for r in o.owners] for o in objs}
    c = Cluster(objs)
    for kind, i, policy in steps:
        uid = f"o{i}"
        if kind == "delete" and uid in c.objs and not c.objs[uid].deleting:
            c.user_deleted.add(uid)
            if policy == "Foreground" and track_foreground:
                c.foreground_subtree[uid] = c.blocking_subtree(uid)
            c.delete(uid, policy)
        elif kind == "gc":
            c.gc_step(uid)
        elif kind == "release":
            c.remove_finalizer(uid, HOLD)
    c.quiesce(order)
    for uid in list(c.objs):            # the other controller finishes its work too
        c.remove_finalizer(uid, HOLD)
    c.quiesce(order)
    return c, original_owners


def test_cycle_guard_releases_the_owner_before_an_unblocked_dependent():
    """Upstream's cycle guard has false positives: o1 (blocking o0) has a dependent o2, only
    non-blocking, that a user deletes in Foreground. Deciding o1 while its owner o0 waits, the
    collector makes o1's references non-blocking before deleting it in Foreground, so o0 is
    released without waiting for o1; everything is still collected in the end."""
    objs = [SimObj("o0", []),
            SimObj("o1", [OwnerRef("v1", "ConfigMap", "o0", "o0", False, True)]),
            SimObj("o2", [OwnerRef("v1", "ConfigMap", "o1", "o1", False, False)], [HOLD])]
    c = Cluster(objs)
    for uid in ("o0", "o2"):
        c.user_deleted.add(uid)
        c.delete(uid, "Foreground")
    c.foreground_subtree["o0"] = {"o1"}
    assert c.gc_step("o1")                      # unblocked, then deleted in Foreground
    assert c.unblocked == {"o1"}
    assert [r.block_owner_deletion for r in c.objs["o1"].owners] == [False]
    assert c.objs["o1"].deleting
    assert c.gc_step("o0")                      # no blocking dependent any more: released
    assert "o0" not in c.objs and "o1" in c.objs
    c.remove_finalizer("o2", HOLD)
    c.quiesce(["o0", "o1", "o2"])
    assert c.objs == {}


def check_settled(c: Cluster) -> None:
    for o in c.objs.values():
        assert not o.deleting, f"{o.uid} still terminating"
        for r in o.owners:
            assert r.uid in c.objs, f"{o.uid} keeps a dangling reference to {r.uid}"


@settings(max_examples=300, deadline=None)
@given(clusters(max_owners=1))
# o4 (a non-blocking dependent of o1) deleted in Foreground trips the cycle guard while o1 is
# decided: o1 is unblocked, so o0 is released before o1 is gone, as upstream does
@example(
    case=([SimObj(uid='o0', owners=[], finalizers=[], deleting=False),
      SimObj(uid='o1',
       owners=[OwnerRef(api_version='v1',
         kind='ConfigMap',
         name='o0',
         uid='o0',
         controller=False,
         block_owner_deletion=True)],
       finalizers=[],
       deleting=False),
      SimObj(uid='o2', owners=[], finalizers=[], deleting=False),
      SimObj(uid='o3', owners=[], finalizers=[], deleting=False),
      SimObj(uid='o4',
       owners=[OwnerRef(api_version='v1',
         kind='ConfigMap',
         name='o1',
         uid='o1',
         controller=False,
         block_owner_deletion=False)],
       finalizers=[],
       deleting=False)],
     [('delete', 0, 'Foreground'), ('delete', 4, 'Foreground')],
     ['o0', 'o1', 'o2', 'o3', 'o4']),
).via('discovered failure')
def test_forests_end_in_the_state_upstream_defines(case):
    objs, steps, order = case
    c, owners = run(objs, steps, order, track_foreground=True)
    check_settled(c)

    gone_memo: dict[str, bool] = {}

    def gone(uid: str) -> bool:
        # deleted by the user, or its owner went with a cascading (non-orphan) policy
        if uid not in gone_memo:
            own = owners[uid]
            gone_memo[uid] = uid in c.user_deleted or bool(
                own and gone(own[0]) and c.first_policy.get(own[0]) != "Orphan")
        return gone_memo[uid]

    for uid in owners:
        assert (uid not in c.objs) == gone(uid), uid
        if uid not in c.user_deleted and uid in c.first_policy:
            # the collector cascades; only a user's request orphans
            assert c.first_policy[uid] != "Orphan", uid
        if uid in c.objs and owners[uid] and gone(owners[uid][0]):
            assert c.first_policy[owners[uid][0]] == "Orphan"
            assert c.objs[uid].owners == []      # orphaned dependents lose the reference


@settings(max_examples=300, deadline=None)
@given(clusters(max_owners=3))
def test_shared_ownership_is_safe_and_settles(case):
    objs, steps, order = case
    c, owners = run(objs, steps, order, track_foreground=False)  # Violation is raised inside on any unsafe action
    check_settled(c)
    for uid, own in owners.items():
        # never deleted by the collector while an owner was untouched by any deletion
        if uid not in c.user_deleted and any(o not in c.first_policy for o in own):
            assert uid in c.objs, uid
