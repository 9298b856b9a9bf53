"""The namespace controller's pure planner: which content to delete, the deletion conditions
(upstream's reasons and messages), and when to finalize."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from k1s.controllers.namespace.planner import (
    CONDITION_TYPES, DeleteContent, Finalize, Item, Requeue, UpdateStatus, conditions_for,
    desired_status, merge_conditions, needs_cleanup, plan, plan_deletions,
)

T0, T1 = "2025-01-01T00:00:00Z", "2025-01-01T00:01:00Z"


def ns(finalizers=("kubernetes",), deleting=True, status=None) -> dict:
    md = {"name": "n"}
    if deleting:
        md["deletionTimestamp"] = T0
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": md,
            "spec": {"finalizers": list(finalizers)}, "status": status or {"phase": "Active"}}


def by_type(conds):
    return {c["type"]: c for c in conds}


@pytest.mark.parametrize("obj,expected", [
    (ns(), True),
    (ns(deleting=False), False),                       # not being deleted
    (ns(finalizers=()), False),                        # already finalized by us
    (ns(finalizers=("example.com/other",)), False),    # another party's turn
    (ns(finalizers=("example.com/other", "kubernetes")), True),
])
def test_needs_cleanup(obj, expected):
    assert needs_cleanup(obj) is expected


def test_plan_deletions_skips_objects_already_terminating():
    content = [Item("", "pods", "a"), Item("", "pods", "b", deleting=True),
               Item("apps", "statefulsets", "db", finalizers=("x",))]
    assert plan_deletions(content) == [DeleteContent("", "pods", "a"),
                                       DeleteContent("apps", "statefulsets", "db")]


def test_conditions_when_everything_is_gone():
    conds = conditions_for([], [])
    assert [c["type"] for c in conds] == list(CONDITION_TYPES)
    assert all(c["status"] == "False" for c in conds)
    got = {c["type"]: (c["reason"], c["message"]) for c in conds}
    assert got == {
        "NamespaceDeletionDiscoveryFailure": ("ResourcesDiscovered",
                                              "All resources successfully discovered"),
        "NamespaceDeletionGroupVersionParsingFailure": (
            "ParsedGroupVersions", "All legacy kube types successfully parsed"),
        "NamespaceDeletionContentFailure": (
            "ContentDeleted", "All content successfully deleted, may be waiting on finalization"),
        "NamespaceContentRemaining": ("ContentRemoved", "All content successfully removed"),
        "NamespaceFinalizersRemaining": ("ContentRemoved", "All content successfully removed"),
    }


def test_conditions_name_what_remains_like_upstream():
    remaining = [Item("", "pods", "a", deleting=True),
                 Item("", "persistentvolumeclaims", "data", True, ("kubernetes.io/pvc-protection",)),
                 Item("", "persistentvolumeclaims", "logs", True, ("kubernetes.io/pvc-protection",)),
                 Item("apps", "statefulsets", "db", True, ("foregroundDeletion",))]
    c = by_type(conditions_for(remaining, []))
    assert c["NamespaceContentRemaining"] == {
        "type": "NamespaceContentRemaining", "status": "True", "reason": "SomeResourcesRemain",
        "message": "Some resources are remaining: persistentvolumeclaims. has 2 resource "
                   "instances, pods. has 1 resource instances, statefulsets.apps has 1 resource "
                   "instances"}
    assert c["NamespaceFinalizersRemaining"]["reason"] == "SomeFinalizerRemain"
    assert c["NamespaceFinalizersRemaining"]["message"] == (
        "Some finalizers are remaining: foregroundDeletion in 1 resource instances, "
        "kubernetes.io/pvc-protection in 2 resource instances")
    assert c["NamespaceDeletionContentFailure"]["status"] == "False"


def test_remaining_without_finalizers_leaves_the_finalizer_condition_false():
    c = by_type(conditions_for([Item("", "pods", "a", deleting=True)], []))
    assert c["NamespaceContentRemaining"]["status"] == "True"
    assert c["NamespaceFinalizersRemaining"]["status"] == "False"


def test_delete_errors_make_a_content_failure():
    c = by_type(conditions_for([], ["secrets.: boom", "pods.: denied"]))
    assert c["NamespaceDeletionContentFailure"] == {
        "type": "NamespaceDeletionContentFailure", "status": "True",
        "reason": "ContentDeletionFailed",
        "message": "Failed to delete all resource types, 2 remaining: pods.: denied, "
                   "secrets.: boom"}


def test_merge_conditions_moves_transition_time_only_on_flips():
    old = [{"type": "NamespaceContentRemaining", "status": "True", "reason": "SomeResourcesRemain",
            "message": "old", "lastTransitionTime": T0},
           {"type": "NamespaceFinalizersRemaining", "status": "True",
            "reason": "SomeFinalizerRemain", "message": "x", "lastTransitionTime": T0},
           {"type": "SomethingElse", "status": "True", "lastTransitionTime": T0}]
    new = [{"type": "NamespaceContentRemaining", "status": "True",
            "reason": "SomeResourcesRemain", "message": "new"},
           {"type": "NamespaceFinalizersRemaining", "status": "False", "reason": "ContentRemoved",
            "message": "All content successfully removed"},
           {"type": "NamespaceDeletionContentFailure", "status": "False",
            "reason": "ContentDeleted", "message": "m"}]
    got = by_type(merge_conditions(old, new, T1))
    assert got["NamespaceContentRemaining"]["lastTransitionTime"] == T0     # same status
    assert got["NamespaceContentRemaining"]["message"] == "new"
    assert got["NamespaceFinalizersRemaining"]["lastTransitionTime"] == T1  # flipped
    assert got["NamespaceDeletionContentFailure"]["lastTransitionTime"] == T1  # new
    assert got["SomethingElse"] == old[2]                                   # not ours: kept


def test_plan_finalizes_when_empty_keeping_other_finalizers():
    actions = plan(ns(finalizers=("example.com/other", "kubernetes")), [], [], T1)
    assert isinstance(actions[0], UpdateStatus)
    assert actions[0].status["phase"] == "Terminating"
    assert actions[1] == Finalize(("example.com/other",))


def test_plan_waits_while_content_remains():
    actions = plan(ns(), [Item("", "pods", "a", deleting=True)], [], T1)
    assert [type(a) for a in actions] == [UpdateStatus, Requeue]
    slow = plan(ns(), [Item("", "configmaps", "a", True, ("x.io/f",))], [], T1)
    assert slow[-1].after > actions[-1].after     # finalizers take longer than pod grace


def test_plan_does_not_finalize_after_delete_errors():
    actions = plan(ns(), [], ["pods.: boom"], T1)
    assert [type(a) for a in actions] == [UpdateStatus, Requeue]


def test_plan_nothing_for_a_namespace_not_ours_to_clean():
    assert plan(ns(deleting=False), [], [], T1) == []
    assert plan(ns(finalizers=()), [], [], T1) == []


def test_status_already_right_is_not_rewritten():
    status = desired_status(ns(), [], [], T0)
    assert status is not None
    assert desired_status(ns(status=status), [], [], T1) is None
    assert [type(a) for a in plan(ns(status=status), [], [], T1)] == [Finalize]


items = st.builds(Item, st.sampled_from(["", "apps"]), st.sampled_from(["pods", "configmaps"]),
                  st.text("abc", min_size=1, max_size=3), st.booleans(),
                  st.lists(st.sampled_from(["f1", "f2"]), max_size=2, unique=True).map(tuple))


@settings(max_examples=200, deadline=None)
@given(st.lists(items, max_size=6), st.lists(st.text("xyz", min_size=1), max_size=2))
def test_plan_properties(remaining, errors):
    actions = plan(ns(), remaining, errors, T1)
    finalizes = any(isinstance(a, Finalize) for a in actions)
    requeues = any(isinstance(a, Requeue) for a in actions)
    # finalize exactly when nothing remains and nothing failed; otherwise look again
    assert finalizes == (not remaining and not errors)
    assert requeues != finalizes
    status = next(a.status for a in actions if isinstance(a, UpdateStatus))
    conds = status["conditions"]
    assert [c["type"] for c in conds] == list(CONDITION_TYPES)
    truth = {c["type"]: c["status"] == "True" for c in conds}
    assert truth["NamespaceContentRemaining"] == bool(remaining)
    assert truth["NamespaceFinalizersRemaining"] == any(i.finalizers for i in remaining)
    assert truth["NamespaceDeletionContentFailure"] == bool(errors)
    # writing the status makes the next plan leave it alone (no write loops)
    assert desired_status(ns(status=status), remaining, errors, T1) is None
