"""pvc-protection planner: which pods use a claim, which pod events re-check claims, and what
a sync decides (tables), plus invariants over generated pods and claims (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from k1s.controllers.pvc_protection.planner import (
    FINALIZER, Decision, claims_of_pod, is_deletion_candidate, needs_finalizer, plan,
    pod_claim_index, pod_is_shut_down, pod_is_terminated, pod_may_release_claims,
    pod_uses_claim, with_finalizer,
)

POD_UID = "pod-uid-1"


def claim(name="data", ns="default", deleting=False, finalizers=(FINALIZER,), owner_uid=None):
    md = {"name": name, "namespace": ns, "uid": f"uid-{name}",
          "finalizers": list(finalizers), "resourceVersion": "7"}
    if deleting:
        md["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    if owner_uid:
        md["ownerReferences"] = [{"apiVersion": "v1", "kind": "Pod", "name": "web",
                                  "uid": owner_uid, "controller": True}]
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": md}


def pod(claim_name="data", ns="default", node="n1", phase="Running", ephemeral=False,
        deletion_grace=None, name="web", uid=POD_UID, container_states=None):
    vol = ({"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}} if ephemeral
           else {"name": "v", "persistentVolumeClaim": {"claimName": claim_name}})
    md = {"name": name, "namespace": ns, "uid": uid}
    if deletion_grace is not None:
        md["deletionTimestamp"] = "2026-01-01T00:00:00Z"
        md["deletionGracePeriodSeconds"] = deletion_grace
    status = {"phase": phase}
    if container_states is not None:
        status["containerStatuses"] = [{"name": f"c{i}", "state": {s: {}}}
                                       for i, s in enumerate(container_states)]
    spec = {"containers": [{"name": "c"}], "volumes": [vol]}
    if node:
        spec["nodeName"] = node
    return {"metadata": md, "spec": spec, "status": status}


EPH = claim("web-scratch", owner_uid=POD_UID, deleting=True)

USES = [
    # (case, pod, claim, uses)
    ("running scheduled pod names it", pod(), claim(), True),
    ("unscheduled pod never uses it", pod(node=None), claim(), False),
    ("other claim name", pod(claim_name="other"), claim(), False),
    ("other namespace", pod(ns="other"), claim(), False),
    # upstream ignores the phase for persistentVolumeClaim volumes (kubernetes#123320 unmerged)
    ("succeeded pod still pins it", pod(phase="Succeeded"), claim(), True),
    ("failed pod still pins it", pod(phase="Failed"), claim(), True),
    ("pending scheduled pod", pod(phase="Pending"), claim(), True),
    ("gracefully deleting pod still uses it", pod(deletion_grace=30), claim(), True),
    ("shut-down pod still pins a plain claim", pod(deletion_grace=0), claim(), True),
    ("ephemeral claim owned by the pod", pod(ephemeral=True), EPH, True),
    ("ephemeral claim of a shut-down pod", pod(ephemeral=True, deletion_grace=0), EPH, False),
    ("ephemeral claim owned by another pod", pod(ephemeral=True, uid="other"), EPH, False),
    ("ephemeral claim without owner", pod(ephemeral=True),
     claim("web-scratch", deleting=True), False),
    ("ephemeral of an unscheduled pod", pod(ephemeral=True, node=None), EPH, False),
]


@pytest.mark.parametrize("case,p,c,uses", USES, ids=[u[0] for u in USES])
def test_pod_uses_claim(case, p, c, uses):
    assert pod_uses_claim(p, c) is uses


RELEASE = [
    # (case, pod, deleted, worth re-checking its claims)
    ("running scheduled pod", pod(), False, False),
    ("deleted pod", pod(), True, True),
    ("succeeded pod", pod(phase="Succeeded"), False, True),
    ("failed pod", pod(phase="Failed"), False, True),
    ("unscheduled pod", pod(node=None), False, True),
    ("shut-down pod", pod(deletion_grace=0), False, True),
    ("deleting, containers all stopped", pod(deletion_grace=30,
                                              container_states=["terminated", "waiting"]),
     False, True),
    ("deleting, a container running", pod(deletion_grace=30,
                                           container_states=["terminated", "running"]),
     False, False),
]


@pytest.mark.parametrize("case,p,deleted,want", RELEASE, ids=[r[0] for r in RELEASE])
def test_pod_may_release_claims(case, p, deleted, want):
    assert pod_may_release_claims(p, deleted) is want


def test_terminated_and_shut_down():
    assert pod_is_terminated(pod(phase="Succeeded"))
    assert not pod_is_terminated(pod())
    assert pod_is_shut_down(pod(deletion_grace=0))
    assert not pod_is_shut_down(pod(deletion_grace=30))


def test_claims_of_pod_and_index():
    p = pod()
    p["spec"]["volumes"] += [{"name": "cache", "ephemeral": {"volumeClaimTemplate": {}}},
                             {"name": "cfg", "configMap": {"name": "x"}},
                             {"name": "again", "persistentVolumeClaim": {"claimName": "data"}}]
    assert claims_of_pod(p) == ["data", "web-cache", "data"]
    assert pod_claim_index(p) == ["default/data", "default/web-cache"]
    assert claims_of_pod({"metadata": {"name": "bare"}}) == []


USED, UNUSED = pod(), pod(claim_name="other")
PLAN = [
    # (case, claim, cached pods, live pods or None, decision)
    ("P0 old claim without finalizer", claim(finalizers=()), [], None, Decision.ADD_FINALIZER),
    ("P0 keeps other finalizers", claim(finalizers=("x/y",)), [USED], None,
     Decision.ADD_FINALIZER),
    ("P0 finalizer present", claim(), [USED], None, Decision.NOTHING),
    ("P1 deleting without our finalizer", claim(deleting=True, finalizers=("x/y",)), [],
     None, Decision.NOTHING),
    ("P1 deleting, no finalizers at all", claim(deleting=True, finalizers=()), [], [],
     Decision.NOTHING),
    ("P2 the cache finds a user", claim(deleting=True), [USED], None, Decision.KEEP),
    ("P2 the cache finds none: ask live", claim(deleting=True), [UNUSED], None,
     Decision.CONFIRM_LIVE),
    ("P2 the live list finds the user the cache missed", claim(deleting=True), [],
     [UNUSED, USED], Decision.KEEP),
    ("P2 completed pod in the live list", claim(deleting=True), [],
     [pod(phase="Succeeded")], Decision.KEEP),
    ("P3 live list empty", claim(deleting=True), [], [], Decision.REMOVE_FINALIZER),
    ("P3 only unscheduled users", claim(deleting=True), [pod(node=None)],
     [pod(node=None)], Decision.REMOVE_FINALIZER),
    ("P3 stale cache user is gone live", claim(deleting=True), [UNUSED], [UNUSED],
     Decision.REMOVE_FINALIZER),
]


@pytest.mark.parametrize("case,c,cached,live,want", PLAN, ids=[p[0] for p in PLAN])
def test_plan(case, c, cached, live, want):
    assert plan(c, cached, live) is want


def test_with_finalizer():
    assert with_finalizer(["a"], True) == ["a", FINALIZER]
    assert with_finalizer(["a", FINALIZER], True) == ["a", FINALIZER]
    assert with_finalizer([FINALIZER, "a", FINALIZER], False) == ["a"]
    assert with_finalizer(None, False) == []
    assert with_finalizer(["k"], True, "other/f") == ["k", "other/f"]


# -- properties ---------------------------------------------------------------------------------

names = st.sampled_from(["data", "web-scratch", "other"])
pods = st.builds(pod, claim_name=names, ns=st.sampled_from(["default", "other"]),
                 node=st.sampled_from(["n1", None]),
                 phase=st.sampled_from(["Pending", "Running", "Succeeded", "Failed"]),
                 ephemeral=st.booleans(), deletion_grace=st.sampled_from([None, 0, 30]),
                 uid=st.sampled_from([POD_UID, "other"]))
claims = st.builds(claim, name=names, deleting=st.booleans(),
                   finalizers=st.lists(st.sampled_from([FINALIZER, "x/y"]), max_size=3),
                   owner_uid=st.sampled_from([None, POD_UID]))


@settings(max_examples=300, deadline=None)
@given(c=claims, cached=st.lists(pods, max_size=3), live=st.none() | st.lists(pods, max_size=3))
def test_plan_never_releases_a_used_claim(c, cached, live):
    d = plan(c, cached, live)
    if d is Decision.REMOVE_FINALIZER:
        assert live is not None, "a finalizer is never removed on the cache's word alone"
        assert is_deletion_candidate(c)
        assert not any(pod_uses_claim(p, c) for p in [*cached, *live])
    if d is Decision.ADD_FINALIZER:
        assert needs_finalizer(c)
    if d in (Decision.KEEP, Decision.CONFIRM_LIVE):
        assert is_deletion_candidate(c)
    if not is_deletion_candidate(c) and not needs_finalizer(c):
        assert d is Decision.NOTHING


@settings(max_examples=200, deadline=None)
@given(fs=st.lists(st.sampled_from([FINALIZER, "a", "b"]), max_size=5), add=st.booleans())
def test_with_finalizer_touches_only_ours(fs, add):
    out = with_finalizer(fs, add)
    assert [f for f in out if f != FINALIZER] == [f for f in fs if f != FINALIZER]
    assert out.count(FINALIZER) == (max(1, fs.count(FINALIZER)) if add else 0)
    assert with_finalizer(out, add) == out
