"""The StatefulSet planner, revisions, status and retention rules: tables for each rule, and
hypothesis-driven event sequences (syncs with random write failures, kubelet, garbage
collector and user steps) with the invariants checked after every step."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from k1s.controllers.statefulset import planner as P
from k1s.controllers.statefulset import retention as R
from k1s.controllers.statefulset import revisions as RV
from k1s.controllers.statefulset import podstate as S
from k1s.controllers.statefulset.identity import (identity_matches, meta, new_claims,
                                                  ordinal_of, parent_and_ordinal,
                                                  revision_of, storage_matches)
from test_statefulset_world import World, make_set


def ops_of(plan):
    return [(op.kind, meta(op.obj)["name"]) for op in plan.ops()]


# -- identity --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,want", [
    ("web-0", ("web", 0)), ("web-12", ("web", 12)), ("my-web-3", ("my-web", 3)),
    ("web", ("", -1)), ("web-", ("", -1)), ("web-x", ("", -1)),
    ("web-99999999999", ("", -1)),
])
def test_parent_and_ordinal(name, want):
    assert parent_and_ordinal(name) == want


def test_first_sync_creates_claims_then_web_0_with_identity():
    w = World(make_set(replicas=2))
    plan = w.sync()
    assert ops_of(plan) == [("create-claim", "www-web-0"), ("create-pod", "web-0")]
    pod = w.pods["web-0"]
    labels = pod["metadata"]["labels"]
    cr = next(iter(w.revisions))
    assert labels == {"app": "nginx", "statefulset.kubernetes.io/pod-name": "web-0",
                      "apps.kubernetes.io/pod-index": "0", "controller-revision-hash": cr}
    assert pod["spec"]["hostname"] == "web-0" and pod["spec"]["subdomain"] == "nginx"
    assert pod["spec"]["volumes"] == [{"name": "www",
                                       "persistentVolumeClaim": {"claimName": "www-web-0"}}]
    assert pod["metadata"]["ownerReferences"] == [{
        "apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": "set-uid",
        "controller": True, "blockOwnerDeletion": True}]
    claim = w.claims["www-web-0"]
    assert claim["metadata"]["labels"] == {"app": "nginx"}
    assert "ownerReferences" not in claim["metadata"]
    assert identity_matches(w.sts, pod) and storage_matches(w.sts, pod)


def test_claim_labels_overlay_selector_match_labels():
    sts = make_set()
    sts["spec"]["volumeClaimTemplates"][0]["metadata"]["labels"] = {"tier": "db", "app": "x"}
    assert new_claims(sts, 3)[0]["metadata"]["labels"] == {"tier": "db", "app": "nginx"}


def test_template_volume_of_claim_name_is_replaced():
    sts = make_set()
    sts["spec"]["template"]["spec"]["volumes"] = [{"name": "www", "emptyDir": {}},
                                                  {"name": "cfg", "emptyDir": {}}]
    w = World(sts)
    w.sync()
    assert w.pods["web-0"]["spec"]["volumes"] == [
        {"name": "cfg", "emptyDir": {}},
        {"name": "www", "persistentVolumeClaim": {"claimName": "www-web-0"}}]


# -- OrderedReady ---------------------------------------------------------------------------------

def test_ordered_ready_waits_for_ready_before_next():
    w = World(make_set(replicas=3))
    w.sync()
    assert ops_of(w.sync()) == []                    # web-0 pending: wait
    w.make_ready("web-0")
    assert ops_of(w.sync()) == [("create-claim", "www-web-1"), ("create-pod", "web-1")]
    w.make_ready("web-1")
    w.fail("web-0")
    plan = w.sync()                                  # web-0 failed: delete it, nothing else
    assert ops_of(plan) == [("delete-pod", "web-0")]
    assert plan.slots[0].decision == P.REPLACE
    w.finish_termination("web-0")
    assert ops_of(w.sync()) == [("create-pod", "web-0")]   # same name, claim reused


def test_ordered_ready_scale_down_highest_first_one_at_a_time():
    w = World(make_set(replicas=3))
    w.converge(20)
    w.scale(1)
    assert ops_of(w.sync()) == [("delete-pod", "web-2")]
    assert ops_of(w.sync()) == []                    # web-2 terminating: wait
    w.finish_termination("web-2")
    assert ops_of(w.sync()) == [("delete-pod", "web-1")]
    w.finish_termination("web-1")
    assert ops_of(w.sync()) == []
    assert sorted(w.pods) == ["web-0"] and set(w.claims) == {f"www-web-{i}" for i in range(3)}


def test_ordered_ready_scale_down_waits_for_unhealthy_in_range_pod():
    w = World(make_set(replicas=3))
    w.converge(20)
    w.scale(2)
    w.pods["web-0"]["status"] = {"phase": "Running"}      # not ready
    assert ops_of(w.sync()) == []


def test_ordered_ready_scale_down_waits_for_condemned_pod_to_be_available():
    w = World(make_set(replicas=3, min_ready=30))
    w.converge(20)
    w.scale(2)
    w.pods["web-2"]["status"]["conditions"][0]["lastTransitionTime"] = "2027-01-15T08:00:00Z"
    plan = w.sync()                     # ready, not yet available: not deleted yet
    assert ops_of(plan) == [] and plan.condemned[0].decision == P.WAIT
    w.make_ready("web-2")
    assert ops_of(w.sync()) == [("delete-pod", "web-2")]


def test_min_ready_seconds_blocks_until_available():
    w = World(make_set(replicas=2, min_ready=30))
    w.sync()
    w.pods["web-0"]["status"] = {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True",
         "lastTransitionTime": "2027-01-15T08:00:00Z"}]}     # after NOW: not yet available
    plan = w.sync()
    assert ops_of(plan) == [] and plan.requeue_after == 30.0
    assert plan.status.readyReplicas == 1 and plan.status.availableReplicas == 0
    w.make_ready("web-0")                                   # ready since 2020
    assert ("create-pod", "web-1") in ops_of(w.sync())


# -- Parallel ----------------------------------------------------------------------------------

def test_parallel_creates_all_in_slow_start_batches():
    w = World(make_set(replicas=10, policy="Parallel"))
    plan = w.sync()
    assert [len(b) for b in plan.batches] == [1, 2, 4, 3]
    assert sorted(w.pods) == sorted(f"web-{i}" for i in range(10))


def test_parallel_scale_down_deletes_all_condemned_at_once():
    w = World(make_set(replicas=5, policy="Parallel"))
    w.converge(5)
    w.scale(2)
    assert sorted(n for k, n in ops_of(w.sync())) == ["web-2", "web-3", "web-4"]


def test_parallel_unhealthy_pod_does_not_block_others():
    w = World(make_set(replicas=3, policy="Parallel"))
    w.sync()
    w.fail("web-1")
    ops = ops_of(w.sync())
    assert ops == [("delete-pod", "web-1")]


# -- start ordinal ---------------------------------------------------------------------------------

def test_start_ordinal_names_and_condemns_below_start():
    w = World(make_set(replicas=2, start=5))
    w.converge(10)
    assert sorted(w.pods) == ["web-5", "web-6"]
    w.sts["spec"]["ordinals"]["start"] = 6
    w.converge(10)
    assert sorted(w.pods) == ["web-6", "web-7"]


# -- updates ---------------------------------------------------------------------------------------

def test_rolling_update_highest_first_honours_partition():
    w = World(make_set(replicas=3, partition=1))
    w.converge(20)
    old = revision_of(w.pods["web-0"])
    w.set_image("nginx:2")
    plan = w.sync()
    assert ops_of(plan) == [("delete-pod", "web-2")]
    w.converge(30)
    revs = {n: revision_of(p) for n, p in w.pods.items()}
    assert revs["web-0"] == old and revs["web-1"] != old and revs["web-2"] != old
    assert w.sts["status"]["currentRevision"] == old          # partitioned: not complete
    assert w.sts["status"]["updatedReplicas"] == 2
    # a deleted pod below the partition comes back at the current revision
    w.pods["web-0"]["metadata"]["deletionTimestamp"] = "x"
    w.finish_termination("web-0")
    w.converge(5)
    assert revision_of(w.pods["web-0"]) == old


def test_rolling_update_completes_and_moves_current_revision():
    w = World(make_set(replicas=2))
    w.converge(10)
    w.set_image("nginx:2")
    w.converge(30)
    s = w.sts["status"]
    assert s["currentRevision"] == s["updateRevision"] != ""
    assert s["currentReplicas"] == s["updatedReplicas"] == s["readyReplicas"] == 2


def test_max_unavailable_deletes_a_batch():
    w = World(make_set(replicas=10, policy="Parallel", max_unavailable=3))
    w.converge(5)
    w.set_image("nginx:2")
    plan = w.sync()
    assert sorted(n for _, n in ops_of(plan)) == ["web-7", "web-8", "web-9"]


def test_max_unavailable_percent_rounds_down_at_least_one():
    assert P.max_unavailable(make_set(replicas=10, max_unavailable="25%")) == 2
    assert P.max_unavailable(make_set(replicas=3, max_unavailable="10%")) == 1
    assert P.max_unavailable(make_set(replicas=3)) == 1


def test_on_delete_never_deletes_for_update_and_recreates_at_update_revision():
    w = World(make_set(replicas=2, strategy="OnDelete"))
    w.converge(10)
    first = revision_of(w.pods["web-1"])
    w.set_image("nginx:2")
    assert ops_of(w.sync()) == []
    w.pods["web-1"]["metadata"]["deletionTimestamp"] = "x"
    w.finish_termination("web-1")
    w.converge(5)
    assert revision_of(w.pods["web-1"]) != first
    assert revision_of(w.pods["web-0"]) == first
    assert w.sts["status"]["currentRevision"] == first       # never advances under OnDelete


def test_rollback_reuses_revision_and_bumps_its_number():
    w = World(make_set(replicas=1))
    w.converge(5)
    r1 = next(iter(w.revisions))
    w.set_image("nginx:2")
    w.converge(10)
    assert len(w.revisions) == 2
    w.set_image("nginx:1.9.1")
    w.converge(10)
    assert len(w.revisions) == 2
    assert w.revisions[r1]["revision"] == 3
    assert revision_of(w.pods["web-0"]) == r1 == w.sts["status"]["updateRevision"]


def test_scale_before_update():
    w = World(make_set(replicas=3))
    w.converge(20)
    w.scale(2)
    w.set_image("nginx:2")
    assert ops_of(w.sync()) == [("delete-pod", "web-2")]   # the condemned pod, not an update


def test_set_being_deleted_only_writes_status():
    w = World(make_set(replicas=2))
    w.sync()
    w.sts["metadata"]["deletionTimestamp"] = "x"
    plan = w.sync()
    assert plan.batches == [] and plan.status.replicas == 1


# -- revisions -------------------------------------------------------------------------------------

def test_revision_data_hash_and_name():
    sts = make_set()
    cr = RV.new_revision(sts, 1, 0)
    assert cr["data"]["spec"]["template"]["$patch"] == "replace"
    assert cr["data"]["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.9.1"
    h = cr["metadata"]["labels"][RV.HASH_LABEL]
    assert cr["metadata"]["name"] == f"web-{h}"
    assert set(h) <= set("bcdfghjklmnpqrstvwxz2456789")
    assert RV.new_revision(sts, 7, 0)["metadata"]["name"] == cr["metadata"]["name"]
    assert RV.new_revision(sts, 1, 1)["metadata"]["name"] != cr["metadata"]["name"]
    want = sts["spec"]["template"]
    want["spec"]["containers"][0]["resources"] = {}      # as Go encodes it
    assert RV.template_of(cr) == want


def test_fnv1_known_vectors():
    assert RV.fnv1_32(b"") == 0x811C9DC5
    assert RV.fnv1_32(b"a") == 0x050C5D7E


def test_history_keeps_live_and_limit():
    revs = [{"metadata": {"name": f"r{i}"}, "revision": i} for i in range(1, 7)]
    pods = [{"metadata": {"labels": {"controller-revision-hash": "r1"}}}]
    doomed = RV.history_to_delete(revs, pods, "r5", "r6", 2)
    assert [r["metadata"]["name"] for r in doomed] == ["r2"]
    assert RV.history_to_delete(revs, pods, "r5", "r6", -1) == []


# -- status ----------------------------------------------------------------------------------------

def test_status_counts_terminating_and_condemned():
    w = World(make_set(replicas=3, policy="Parallel"))
    w.converge(3)
    w.pods["web-1"]["metadata"]["deletionTimestamp"] = "x"
    w.scale(2)
    plan = w.sync()
    s = plan.status
    assert (s.replicas, s.readyReplicas, s.availableReplicas) == (3, 3, 3)
    assert s.currentReplicas == s.updatedReplicas == 2        # terminating not counted


# -- retention ------------------------------------------------------------------------------------

@pytest.mark.parametrize("scaled,deleted,in_range_refs,condemned_refs", [
    ("Retain", "Retain", set(), set()),
    ("Retain", "Delete", {"StatefulSet"}, {"StatefulSet"}),
    ("Delete", "Retain", set(), {"Pod"}),
    ("Delete", "Delete", {"StatefulSet"}, {"Pod"}),
])
def test_retention_refs(scaled, deleted, in_range_refs, condemned_refs):
    w = World(make_set(replicas=2, when_scaled=scaled, when_deleted=deleted))
    w.converge(10)
    kinds = lambda c: {r["kind"] for r in c["metadata"].get("ownerReferences") or []}
    assert kinds(w.claims["www-web-0"]) == in_range_refs == kinds(w.claims["www-web-1"])
    w.scale(1)
    w.sync()                                        # fixes claim refs, deletes web-1
    assert kinds(w.claims["www-web-1"]) == condemned_refs
    assert kinds(w.claims["www-web-0"]) == in_range_refs
    w.finish_termination("web-1")
    assert ("www-web-1" in w.claims) == (scaled == "Retain")


def test_stale_claim_blocks_recreation_until_collected():
    w = World(make_set(replicas=2, when_scaled="Delete"))
    w.converge(10)
    w.scale(1)
    w.sync()
    w.scale(2)
    # web-1 is terminating and its claim owned by it: no new web-1 before the claim is gone
    assert ("create-pod", "web-1") not in ops_of(w.sync())
    del w.pods["web-1"]                     # gone, but the GC has not run yet
    plan = w.sync()
    assert ops_of(plan) == [] and plan.slots[1].decision == P.WAIT
    w.collect_garbage()
    assert ops_of(w.sync()) == [("create-claim", "www-web-1"), ("create-pod", "web-1")]


def test_terminating_claim_blocks_its_pod():
    w = World(make_set(replicas=1))
    w.claims["www-web-0"] = {"metadata": {"name": "www-web-0", "deletionTimestamp": "x"}}
    plan = w.sync()
    assert ops_of(plan) == [("claim-terminating", "www-web-0"), ("create-pod", "web-0")]
    assert "web-0" not in w.pods


def test_foreign_controller_on_claim_is_respected():
    sts = make_set(when_deleted="Delete")
    pod = {"metadata": {"name": "web-0", "uid": "p", "namespace": "default"}}
    claim = {"metadata": {"name": "www-web-0", "ownerReferences": [
        {"apiVersion": "v1", "kind": "Other", "name": "x", "uid": "o", "controller": True}]}}
    assert R.updated_refs(sts, pod, claim) is None
    assert R.claim_refs_up_to_date(sts, pod, claim)


# -- adoption -------------------------------------------------------------------------------------

def test_claim_pods_adopts_releases_and_ignores():
    from test_statefulset_world import selector_of
    sts = make_set()
    mine = {"metadata": {"name": "web-0", "namespace": "default", "labels": {"app": "nginx"},
                         "ownerReferences": [{"uid": "set-uid", "controller": True}]}}
    orphan = {"metadata": {"name": "web-1", "namespace": "default", "labels": {"app": "nginx"}}}
    wrong_name = {"metadata": {"name": "db-1", "namespace": "default",
                               "labels": {"app": "nginx"}}}
    relabelled = {"metadata": {"name": "web-2", "namespace": "default", "labels": {"app": "x"},
                               "ownerReferences": [{"uid": "set-uid", "controller": True}]}}
    foreign = {"metadata": {"name": "web-3", "namespace": "default", "labels": {"app": "nginx"},
                            "ownerReferences": [{"uid": "other", "controller": True}]}}
    got = P.claim_pods(sts, [mine, orphan, wrong_name, relabelled, foreign], selector_of(sts))
    assert got.owned == [mine] and got.adopt == [orphan] and got.release == [relabelled]
    sts["metadata"]["deletionTimestamp"] = "x"
    got = P.claim_pods(sts, [mine, orphan, relabelled], selector_of(sts))
    assert got.adopt == [] and got.release == []


# -- properties ---------------------------------------------------------------------------------

STEP = st.one_of(
    st.tuples(st.just("sync")),
    st.tuples(st.just("ready"), st.integers(0, 7)),
    st.tuples(st.just("fail"), st.integers(0, 7)),
    st.tuples(st.just("finish"), st.integers(0, 7)),
    st.tuples(st.just("gc")),
    st.tuples(st.just("scale"), st.integers(0, 6)),
    st.tuples(st.just("image"), st.sampled_from(["a", "b", "c"])),
    st.tuples(st.just("retention"), st.sampled_from(["Retain", "Delete"]),
              st.sampled_from(["Retain", "Delete"])),
)


def check_plan_invariants(obs: P.Observed, plan: P.Plan) -> None:
    sts = obs.sts
    monotonic = sts["spec"]["podManagementPolicy"] != "Parallel"
    start = sts["spec"].get("ordinals", {}).get("start", 0)
    existing = {ordinal_of(p): p for p in obs.pods}
    creates = [ordinal_of(op.obj) for op in plan.ops() if op.kind == "create-pod"]
    for o in creates:
        assert o not in existing, "a second pod for one identity"
    if monotonic:
        assert len(creates) <= 1
        for o in creates:
            for lower in range(start, o):
                assert S.is_healthy(existing.get(lower)), \
                    f"web-{o} created before web-{lower} was Running and Ready"
        deletes = [op for op in plan.ops() if op.kind == "delete-pod"]
        condemned_deletes = [op for op in deletes
                             if not (start <= ordinal_of(op.obj) < start +
                                     sts["spec"]["replicas"])]
        assert len(condemned_deletes) <= 1


def check_world_invariants(w: World) -> None:
    sts = w.sts
    for name, p in w.pods.items():
        o = ordinal_of(p)
        assert o >= 0 and name == f"web-{o}"
        claims = {v["persistentVolumeClaim"]["claimName"] for v in p["spec"]["volumes"]
                  if "persistentVolumeClaim" in v}
        assert claims == {f"{t['metadata']['name']}-web-{o}"
                          for t in sts["spec"]["volumeClaimTemplates"]}
    for c in w.claims.values():
        if "labels" in c["metadata"]:
            assert c["metadata"]["labels"]["app"] == "nginx"
    s = sts.get("status") or {}
    for k in ("readyReplicas", "currentReplicas", "updatedReplicas", "availableReplicas"):
        assert s.get(k, 0) <= s.get("replicas", 0)


def run_steps(w: World, steps) -> None:
    start = w.sts["spec"].get("ordinals", {}).get("start", 0)
    for step in steps:
        kind = step[0]
        if kind == "sync":
            w.sync()
            if w.plans:
                check_plan_invariants(*w.plans[-1])
        elif kind == "ready":
            w.make_ready(f"web-{start + step[1]}")
        elif kind == "fail":
            w.fail(f"web-{start + step[1]}")
        elif kind == "finish":
            w.finish_termination(f"web-{start + step[1]}")
        elif kind == "gc":
            w.collect_garbage()
        elif kind == "scale":
            w.scale(step[1])
        elif kind == "image":
            w.set_image(f"nginx:{step[1]}")
        elif kind == "retention":
            w.sts["spec"]["persistentVolumeClaimRetentionPolicy"] = {
                "whenScaled": step[1], "whenDeleted": step[2]}
        check_world_invariants(w)


def check_converged(w: World) -> None:
    w.fail_rate = 0.0
    for _ in range(200):
        w.sync()
        check_plan_invariants(*w.plans[-1])
        w.kubelet_round()
        w.collect_garbage()
    sts = w.sts
    start = sts["spec"].get("ordinals", {}).get("start", 0)
    n = sts["spec"]["replicas"]
    assert w.ordinals() == list(range(start, start + n))
    s = sts["status"]
    assert s["replicas"] == s.get("readyReplicas", 0) == n
    if sts["spec"]["updateStrategy"]["type"] == "RollingUpdate":
        assert {revision_of(p) for p in w.pods.values()} <= {s.get("updateRevision")}
        assert s.get("currentRevision") == s.get("updateRevision")
    when_scaled, when_deleted = R.policy(sts)
    for o in range(start, start + n):
        refs = {r["kind"] for r in w.claims[f"www-web-{o}"]["metadata"].get("ownerReferences")
                or []}
        assert refs == ({"StatefulSet"} if when_deleted == "Delete" else set())


@settings(max_examples=150)
@given(policy=st.sampled_from(["OrderedReady", "Parallel"]),
       scaled=st.sampled_from(["Retain", "Delete"]),
       deleted=st.sampled_from(["Retain", "Delete"]),
       start=st.sampled_from([None, 0, 3]),
       replicas=st.integers(0, 5),
       strategy=st.sampled_from(["RollingUpdate", "OnDelete"]),
       fail_rate=st.sampled_from([0.0, 0.2]),
       seed=st.integers(0, 1000),
       steps=st.lists(STEP, max_size=40))
def test_property_invariants_hold_and_set_converges(policy, scaled, deleted, start, replicas,
                                                     strategy, fail_rate, seed, steps):
    w = World(make_set(replicas=replicas, policy=policy, start=start, when_scaled=scaled,
                       when_deleted=deleted, strategy=strategy), fail_rate=fail_rate, seed=seed)
    run_steps(w, steps)
    check_converged(w)


@settings(max_examples=30)
@given(replicas=st.integers(1, 5), partition=st.integers(0, 5),
       policy=st.sampled_from(["OrderedReady", "Parallel"]),
       steps=st.lists(st.sampled_from(["sync", "kubelet"]), max_size=60))
def test_property_partition_is_never_crossed(replicas, partition, policy, steps):
    w = World(make_set(replicas=replicas, partition=partition, policy=policy))
    w.converge(30)
    old = {n: revision_of(p) for n, p in w.pods.items()}
    w.set_image("nginx:new")
    for s in steps + ["sync", "kubelet"] * 40:
        if s == "sync":
            w.sync()
        else:
            w.kubelet_round()
        for n, p in w.pods.items():
            if ordinal_of(p) < partition:
                assert revision_of(p) == old[n]
    upd = w.sts["status"]["updateRevision"]
    for n, p in w.pods.items():
        assert (revision_of(p) == upd) == (ordinal_of(p) >= partition)
