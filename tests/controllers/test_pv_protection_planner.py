"""pv-protection planner: the phase alone decides whether a deleted volume is kept."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from k1s.controllers.pv_protection.planner import FINALIZER, Decision, plan, wants_sync


def pv(phase="Available", deleting=False, finalizers=(FINALIZER,)):
    md = {"name": "pv1", "finalizers": list(finalizers), "resourceVersion": "3"}
    if deleting:
        md["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    out = {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": md, "spec": {}}
    if phase is not None:
        out["status"] = {"phase": phase}
    return out


PLAN = [
    ("V0 old volume without finalizer", pv(finalizers=()), Decision.ADD_FINALIZER),
    ("V0 bound old volume without finalizer", pv("Bound", finalizers=("x/y",)),
     Decision.ADD_FINALIZER),
    ("V0 finalizer present", pv("Bound"), Decision.NOTHING),
    ("V1 deleting without our finalizer", pv("Bound", True, ("x/y",)), Decision.NOTHING),
    ("V2 deleting while Bound", pv("Bound", True), Decision.KEEP),
    ("V3 deleting, Released", pv("Released", True), Decision.REMOVE_FINALIZER),
    ("V3 deleting, Available", pv("Available", True), Decision.REMOVE_FINALIZER),
    ("V3 deleting, Failed", pv("Failed", True), Decision.REMOVE_FINALIZER),
    ("V3 deleting, Pending", pv("Pending", True), Decision.REMOVE_FINALIZER),
    ("V3 deleting, no status yet", pv(None, True), Decision.REMOVE_FINALIZER),
]


@pytest.mark.parametrize("case,v,want", PLAN, ids=[p[0] for p in PLAN])
def test_plan(case, v, want):
    assert plan(v) is want


@given(phase=st.sampled_from([None, "Pending", "Available", "Bound", "Released", "Failed"]),
       deleting=st.booleans(),
       finalizers=st.lists(st.sampled_from([FINALIZER, "x/y"]), max_size=3))
def test_plan_invariants(phase, deleting, finalizers):
    v = pv(phase, deleting, finalizers)
    d = plan(v)
    assert (d is not Decision.NOTHING) == wants_sync(v)
    if d is Decision.REMOVE_FINALIZER:
        assert deleting and phase != "Bound" and FINALIZER in finalizers
    if d is Decision.KEEP:
        assert deleting and phase == "Bound"
    if d is Decision.ADD_FINALIZER:
        assert not deleting and FINALIZER not in finalizers
