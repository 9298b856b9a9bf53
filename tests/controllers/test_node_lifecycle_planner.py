"""The node-lifecycle planner as tables (fresh and stale heartbeats, never-posted nodes,
taints from conditions, pods marked not ready, eviction times) and as a property over
generated sequences of heartbeats, silences and kubelet reports."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from k1s.controllers.node_lifecycle import planner as P

T0 = 1_800_000_000.0
NOW = P.rfc3339(T0)
UNREACH_NS = (P.TAINT_UNREACHABLE, P.NO_SCHEDULE)
UNREACH_NE = (P.TAINT_UNREACHABLE, P.NO_EXECUTE)
NOTREADY_NS = (P.TAINT_NOT_READY, P.NO_SCHEDULE)
NOTREADY_NE = (P.TAINT_NOT_READY, P.NO_EXECUTE)


def node(ready="True", taints=None, unschedulable=False, pressure=None, conditions=True):
    conds = []
    if conditions:
        for t, s in (("MemoryPressure", "False"), ("DiskPressure", "False"),
                     ("PIDPressure", "False"), ("Ready", ready)):
            if pressure and t == pressure:
                s = "True"
            conds.append({"type": t, "status": s, "reason": "Kubelet", "message": "m",
                          "lastHeartbeatTime": NOW, "lastTransitionTime": NOW})
    spec = {}
    if taints:
        spec["taints"] = taints
    if unschedulable:
        spec["unschedulable"] = True
    return {"metadata": {"name": "n1", "creationTimestamp": NOW}, "spec": spec,
            "status": {"conditions": conds}}


def keys(taints):
    return {(t["key"], t["effect"]) for t in taints or ()}


def cond(n, t):
    return P.condition(n, t)


# -- health ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("age,grace,stale", [(0, 50, False), (49, 50, False), (50, 50, True),
                                             (120, 50, True), (2, 1.5, True)])
def test_stale_heartbeat_marks_unknown(age, grace, stale):
    n = node()
    plan = P.plan_node(n, T0 + age, T0, grace=grace)
    if not stale:
        assert plan.conditions is None and plan.taints is None and not plan.became_not_ready
        return
    after = dict(n, status={"conditions": plan.conditions})
    for t in P.UNKNOWN_CONDITIONS:
        c = cond(after, t)
        assert c["status"] == "Unknown"
        assert c["reason"] == "NodeStatusUnknown"
        assert c["message"] == "Kubelet stopped posting node status."
        assert c["lastHeartbeatTime"] == NOW                 # kept
        assert c["lastTransitionTime"] == P.rfc3339(T0 + age)
    assert keys(plan.taints) == {UNREACH_NS, UNREACH_NE}
    assert plan.became_not_ready


def test_default_grace_periods_are_upstreams():
    assert P.GRACE_PERIOD == 50 and P.STARTUP_GRACE_PERIOD == 60 and P.MONITOR_PERIOD == 5


def test_never_posted_node_uses_startup_grace():
    n = node(conditions=False)
    assert P.plan_node(n, T0 + 55, T0).conditions is None          # 55 < 60
    plan = P.plan_node(n, T0 + 61, T0)
    after = dict(n, status={"conditions": plan.conditions})
    r = cond(after, "Ready")
    assert r["status"] == "Unknown" and r["reason"] == "NodeStatusNeverUpdated"
    assert r["message"] == "Kubelet never posted node status."
    assert keys(plan.taints) == {UNREACH_NS, UNREACH_NE}
    assert not plan.became_not_ready                                # it never was Ready


def test_already_unknown_is_left_alone():
    n = node(ready="Unknown", taints=[{"key": P.TAINT_UNREACHABLE, "effect": P.NO_SCHEDULE},
                                      {"key": P.TAINT_UNREACHABLE, "effect": P.NO_EXECUTE,
                                       "timeAdded": NOW}])
    for c in n["status"]["conditions"]:
        c["status"] = "Unknown"
    plan = P.plan_node(n, T0 + 500, T0)
    assert plan.conditions is None and plan.taints is None


# -- taints -------------------------------------------------------------------------------------------
OTHER = {"key": "dedicated", "value": "db", "effect": "NoSchedule"}


@pytest.mark.parametrize("name,n,expect", [
    ("ready: none", node(), set()),
    ("ready False: not-ready both", node(ready="False"), {NOTREADY_NS, NOTREADY_NE}),
    ("ready Unknown: unreachable both", node(ready="Unknown"), {UNREACH_NS, UNREACH_NE}),
    ("back to ready: removed", node(taints=[{"key": P.TAINT_UNREACHABLE, "effect": "NoSchedule"},
                                            {"key": P.TAINT_UNREACHABLE, "effect": "NoExecute"}]),
     set()),
    ("unreachable -> not-ready swaps",
     node(ready="False", taints=[{"key": P.TAINT_UNREACHABLE, "effect": "NoExecute"}]),
     {NOTREADY_NS, NOTREADY_NE}),
    ("memory pressure", node(pressure="MemoryPressure"),
     {("node.kubernetes.io/memory-pressure", "NoSchedule")}),
    ("cordoned", node(unschedulable=True), {(P.TAINT_UNSCHEDULABLE, "NoSchedule")}),
    ("others' taints stay", node(ready="False", taints=[OTHER]),
     {NOTREADY_NS, NOTREADY_NE, ("dedicated", "NoSchedule")}),
])
def test_taints_table(name, n, expect):
    got = P.wanted_taints(n, T0)
    final = n["spec"].get("taints") if got is None else got
    assert keys(final) == expect, name
    for t in final or ():
        if t["effect"] == P.NO_EXECUTE and t["key"] in P.MANAGED_NO_EXECUTE and got is not None \
                and t not in (n["spec"].get("taints") or ()):
            assert t["timeAdded"] == NOW
    if OTHER in (n["spec"].get("taints") or ()):
        assert OTHER in final


def test_taints_unchanged_gives_none():
    n = node(ready="False", taints=[{"key": P.TAINT_NOT_READY, "effect": "NoSchedule"},
                                    {"key": P.TAINT_NOT_READY, "effect": "NoExecute",
                                     "timeAdded": NOW}])
    assert P.wanted_taints(n, T0 + 100) is None


# -- pods -----------------------------------------------------------------------------------------------
def pod(ready="True", phase="Running", tolerations=None, deleting=False):
    p = {"metadata": {"name": "p", "namespace": "ns", "uid": "u"},
         "spec": {"nodeName": "n1"},
         "status": {"phase": phase, "conditions": [{"type": "Ready", "status": ready}]}}
    if tolerations is not None:
        p["spec"]["tolerations"] = tolerations
    if deleting:
        p["metadata"]["deletionTimestamp"] = NOW
    return p


@pytest.mark.parametrize("p,n,expect", [
    (pod(), node(ready="Unknown"), True),
    (pod(), node(ready="False"), True),
    (pod(), node(), False),
    (pod(ready="False"), node(ready="Unknown"), False),
    (pod(phase="Succeeded"), node(ready="Unknown"), False),
    (pod(), node(conditions=False), False),
    (pod(), None, False),
])
def test_needs_not_ready(p, n, expect):
    assert P.needs_not_ready(p, n) is expect


UNREACH_TAINTED = node(ready="Unknown", taints=[
    {"key": P.TAINT_UNREACHABLE, "effect": "NoSchedule"},
    {"key": P.TAINT_UNREACHABLE, "effect": "NoExecute", "timeAdded": NOW}])


@pytest.mark.parametrize("name,p,n,expect", [
    ("no NoExecute taint", pod(), node(), None),
    ("no toleration: the 300 s default", pod(), UNREACH_TAINTED, T0 + 300),
    ("tolerates 0 s", pod(tolerations=[{"key": P.TAINT_UNREACHABLE, "operator": "Exists",
                                        "effect": "NoExecute", "tolerationSeconds": 0}]),
     UNREACH_TAINTED, T0),
    ("tolerates 60 s", pod(tolerations=[{"key": P.TAINT_UNREACHABLE, "operator": "Exists",
                                         "effect": "NoExecute", "tolerationSeconds": 60}]),
     UNREACH_TAINTED, T0 + 60),
    ("tolerates forever", pod(tolerations=[{"key": P.TAINT_UNREACHABLE, "operator": "Exists",
                                            "effect": "NoExecute"}]), UNREACH_TAINTED, None),
    ("tolerates everything", pod(tolerations=[{"operator": "Exists"}]), UNREACH_TAINTED, None),
    ("a user's NoExecute taint not tolerated: at once", pod(),
     node(taints=[{"key": "maintenance", "effect": "NoExecute"}]), T0 + 7),
    ("already deleting", pod(deleting=True), UNREACH_TAINTED, None),
    ("finished pod", pod(phase="Failed"), UNREACH_TAINTED, None),
])
def test_eviction_time(name, p, n, expect):
    assert P.eviction_time(p, n, T0 + 7) == expect, name


# -- property ---------------------------------------------------------------------------------------------
EVENTS = st.lists(st.tuples(st.sampled_from(["beat", "silence", "report-false", "report-true",
                                             "cordon", "uncordon"]),
                            st.floats(0, 40)), max_size=30)


@given(EVENTS)
def test_lifecycle_invariants(events):
    """Apply each plan; after every step: Ready Unknown exactly when the heartbeat is older than
    the grace period (or was, and no report came since); the managed taints always match the
    conditions; other taints survive; planning twice at the same moment changes nothing."""
    n = node(taints=[OTHER])
    now = T0
    probe = T0
    for kind, dt in events:
        now += dt
        if kind == "beat":
            probe = now
        elif kind in ("report-false", "report-true"):
            probe = now
            s = "False" if kind == "report-false" else "True"
            conds = [dict(c, status=(s if c["type"] == "Ready" else "False"),
                          lastHeartbeatTime=P.rfc3339(now)) for c in n["status"]["conditions"]]
            n = dict(n, status={"conditions": conds})
        elif kind in ("cordon", "uncordon"):
            n = dict(n, spec=dict(n["spec"], unschedulable=kind == "cordon"))
        plan = P.plan_node(n, now, probe, grace=50)
        if plan.conditions is not None:
            n = dict(n, status={"conditions": plan.conditions})
        if plan.taints is not None:
            n = dict(n, spec=dict(n["spec"], taints=plan.taints))
        ready = P.ready_status(n)
        if now - probe >= 50:
            assert ready == "Unknown"
        t = keys(n["spec"].get("taints"))
        assert ("dedicated", "NoSchedule") in t
        assert (UNREACH_NE in t) == (ready == "Unknown") == (UNREACH_NS in t)
        assert (NOTREADY_NE in t) == (ready == "False") == (NOTREADY_NS in t)
        assert ((P.TAINT_UNSCHEDULABLE, "NoSchedule") in t) == bool(n["spec"].get("unschedulable"))
        again = P.plan_node(n, now, probe, grace=50)
        assert again.conditions is None and again.taints is None
