"""The binder's pure planner: every matching rule, every claim and volume transition, the bind's
write order, and the explanation sentence — as tables."""

from __future__ import annotations

import pytest

from k1s.controllers.pv_binder import planner as P
from k1s.controllers.pv_binder.explain import MatchCounts
from k1s.controllers.pv_binder.selected_node import unscheduled_users


def pv(name="pv1", cap="10Gi", modes=("ReadWriteOnce",), cls=None, phase="Available",
       claim_ref=None, labels=None, mode=None, deleting=False, affinity=None, ann=None,
       policy="Retain"):
    s = {"capacity": {"storage": cap}, "accessModes": list(modes),
         "persistentVolumeReclaimPolicy": policy}
    if cls is not None:
        s["storageClassName"] = cls
    if claim_ref is not None:
        s["claimRef"] = claim_ref
    if mode:
        s["volumeMode"] = mode
    if affinity:
        s["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": [affinity]}]}]}}
    md = {"name": name, "resourceVersion": "1", "labels": labels or {}, "annotations": ann or {}}
    if deleting:
        md["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    return {"metadata": md, "spec": s, "status": {"phase": phase}}


def pvc(name="c1", req="1Gi", modes=("ReadWriteOnce",), cls=None, uid="u1", volume_name=None,
        selector=None, mode=None, ann=None, phase="Pending", ns="default"):
    s = {"accessModes": list(modes), "resources": {"requests": {"storage": req}}}
    if cls is not None:
        s["storageClassName"] = cls
    if volume_name:
        s["volumeName"] = volume_name
    if selector:
        s["selector"] = selector
    if mode:
        s["volumeMode"] = mode
    return {"metadata": {"name": name, "namespace": ns, "uid": uid, "resourceVersion": "1",
                         "annotations": ann or {}},
            "spec": s, "status": {"phase": phase}}


def ref(name="c1", uid="u1", ns="default"):
    r = {"kind": "PersistentVolumeClaim", "namespace": ns, "name": name}
    if uid:
        r["uid"] = uid
    return r


NODE_A = P.Node("a", {"kubernetes.io/hostname": "a"})

# -- matching: one rule per row ----------------------------------------------------------------------
MATCH_CASES = [
    ("fits", pv(), pvc(), None, False, None),
    ("too small", pv(cap="1Gi"), pvc(req="2Gi"), None, False, P.TOO_SMALL),
    ("exact size fits", pv(cap="2Gi"), pvc(req="2Gi"), None, False, None),
    ("access modes superset", pv(modes=("ReadWriteOnce", "ReadOnlyMany")),
     pvc(modes=("ReadOnlyMany",)), None, False, None),
    ("access modes not superset", pv(modes=("ReadWriteOnce",)),
     pvc(modes=("ReadWriteMany",)), None, False, P.ACCESS_MODES),
    ("class equal", pv(cls="fast"), pvc(cls="fast"), None, False, None),
    ("class differs", pv(cls="fast"), pvc(cls="slow"), None, False, P.OTHER_CLASS),
    ("unset class claim vs class-less pv", pv(), pvc(), None, False, None),
    ("empty class claim vs class-less pv", pv(cls=""), pvc(cls=""), None, False, None),
    ("class-less claim vs classed pv", pv(cls="fast"), pvc(cls=""), None, False, P.OTHER_CLASS),
    ("beta class annotation wins", pv(cls="x", ann={P.ANN_BETA_CLASS: "fast"}), pvc(cls="fast"),
     None, False, None),
    ("selector matches", pv(labels={"tier": "db"}),
     pvc(selector={"matchLabels": {"tier": "db"}}), None, False, None),
    ("selector refuses", pv(labels={"tier": "web"}),
     pvc(selector={"matchLabels": {"tier": "db"}}), None, False, P.SELECTOR),
    ("volumeMode both default", pv(), pvc(mode="Filesystem"), None, False, None),
    ("volumeMode pv unset, claim Block", pv(), pvc(mode="Block"), None, False, P.VOLUME_MODE),
    ("volumeMode pv Block, claim unset", pv(mode="Block"), pvc(), None, False, P.VOLUME_MODE),
    ("volumeMode Block both", pv(mode="Block"), pvc(mode="Block"), None, False, None),
    ("pv not Available", pv(phase="Pending"), pvc(), None, False, P.NOT_AVAILABLE),
    ("pv Released", pv(phase="Released", claim_ref=ref("old", "u0")), pvc(), None, False,
     P.CLAIMED),
    ("pv being deleted", pv(deleting=True), pvc(), None, False, P.DELETING),
    ("claimed by another", pv(claim_ref=ref("other", "u9")), pvc(), None, False, P.CLAIMED),
    ("pre-bound by claimRef without uid", pv(phase="Pending", cls="x", claim_ref=ref(uid="")),
     pvc(cls="y"), None, False, None),
    ("pre-bound but too small", pv(cap="1Mi", claim_ref=ref(uid="")), pvc(), None, False,
     P.TOO_SMALL),
    ("node affinity matches", pv(affinity="a"), pvc(), NODE_A, False, None),
    ("node affinity refuses", pv(affinity="b"), pvc(), NODE_A, False, P.AFFINITY),
    ("affinity ignored without node", pv(affinity="b"), pvc(), None, False, None),
    ("delay binding without node", pv(), pvc(), None, True, P.NOT_AVAILABLE),
    ("delay binding pre-bound", pv(claim_ref=ref(uid="")), pvc(), None, True, None),
]


@pytest.mark.parametrize("name,v,c,node,delay,want", MATCH_CASES, ids=[c[0] for c in MATCH_CASES])
def test_matching_rules(name, v, c, node, delay, want):
    assert P.mismatch(v, c, node, delay) == want
    found = P.find_best_match_linear(c, [v], node, delay)
    assert (found is v) == (want is None)


def test_smallest_fit_wins_and_ties_break_by_name():
    vols = [pv("big", "100Gi"), pv("b", "5Gi"), pv("a", "5Gi"), pv("small", "1Gi")]
    assert P.meta(P.find_best_match_linear(pvc(req="2Gi"), vols))["name"] == "a"


def test_fewest_access_modes_group_first():
    vols = [pv("rwo-rox", "1Gi", modes=("ReadWriteOnce", "ReadOnlyMany")),
            pv("rwo", "5Gi", modes=("ReadWriteOnce",))]
    assert P.meta(P.find_best_match_linear(pvc(), vols))["name"] == "rwo"


def test_prebound_volume_wins_over_smaller():
    vols = [pv("small", "2Gi"), pv("reserved", "50Gi", claim_ref=ref(uid=""))]
    assert P.meta(P.find_best_match_linear(pvc(), vols))["name"] == "reserved"


# -- claim transitions -------------------------------------------------------------------------------
STD_WFFC = {"metadata": {"name": "standard"}, "provisioner": "k1s.io/local",
            "volumeBindingMode": "WaitForFirstConsumer"}
FAST = {"metadata": {"name": "fast"}, "provisioner": "example.com/fast",
        "volumeBindingMode": "Immediate"}
NOPROV = {"metadata": {"name": "local"}, "provisioner": P.NO_PROVISIONER,
          "volumeBindingMode": "Immediate"}
BOUND = {P.ANN_BIND_COMPLETED: "yes"}

CLAIM_CASES = [
    ("match binds by controller", P.ClaimInputs(pvc(), match=pv("v")),
     [P.Bind("v", True)]),
    ("no match, no class", P.ClaimInputs(pvc()),
     [P.Event("Normal", "FailedBinding", P.MSG_NO_CLASS), P.ClaimPending("FailedBinding",
                                                                        P.MSG_NO_CLASS)]),
    ("retroactive default class", P.ClaimInputs(pvc(), default_class="standard"),
     [P.SetClaimClass("standard")]),
    ("explicit empty class never defaulted", P.ClaimInputs(pvc(cls=""), default_class="std"),
     [P.Event("Normal", "FailedBinding", P.MSG_NO_CLASS), P.ClaimPending("FailedBinding",
                                                                        P.MSG_NO_CLASS)]),
    ("WFFC no consumer", P.ClaimInputs(pvc(cls="standard"), storage_class=STD_WFFC),
     [P.Event("Normal", "WaitForFirstConsumer", P.MSG_WFFC),
      P.ClaimPending("WaitForFirstConsumer", P.MSG_WFFC)]),
    ("WFFC pods waiting", P.ClaimInputs(pvc(cls="standard"), storage_class=STD_WFFC,
                                        waiting_pods=("p1", "p2")),
     [P.Event("Normal", "WaitForPodScheduled", "waiting for pods p1,p2 to be scheduled"),
      P.ClaimPending("WaitForPodScheduled", "waiting for pods p1,p2 to be scheduled")]),
    ("WFFC selected: provision", P.ClaimInputs(
        pvc(cls="standard", ann={P.ANN_SELECTED_NODE: "n1"}), storage_class=STD_WFFC),
     [P.SetProvisioner("k1s.io/local"),
      P.Event("Normal", "ExternalProvisioning", P.external_provisioning_message("k1s.io/local")),
      P.ClaimPending("ExternalProvisioning",
                     "waiting for a volume to be created by the provisioner 'k1s.io/local'")]),
    ("immediate external provisioner, annotated already", P.ClaimInputs(
        pvc(cls="fast", ann={P.ANN_STORAGE_PROVISIONER: "example.com/fast",
                             P.ANN_BETA_STORAGE_PROVISIONER: "example.com/fast"}),
        storage_class=FAST),
     [P.Event("Normal", "ExternalProvisioning",
              P.external_provisioning_message("example.com/fast")),
      P.ClaimPending("ExternalProvisioning",
                     "waiting for a volume to be created by the provisioner 'example.com/fast'")]),
    ("class missing", P.ClaimInputs(pvc(cls="gold")),
     [P.Event("Warning", "ProvisioningFailed", 'storageclass.storage.k8s.io "gold" not found'),
      P.ClaimPending("ProvisioningFailed", 'storageclass.storage.k8s.io "gold" not found')]),
    ("no-provisioner immediate", P.ClaimInputs(pvc(cls="local"), storage_class=NOPROV),
     [P.Event("Warning", "ProvisioningFailed",
              "no volume plugin matched name: kubernetes.io/no-provisioner"),
      P.ClaimPending("ProvisioningFailed",
                     "no volume plugin matched name: kubernetes.io/no-provisioner")]),
    ("volumeName: pv missing", P.ClaimInputs(pvc(volume_name="v")),
     [P.ClaimPending("VolumeNotFound", 'the requested volume "v" does not exist')]),
    ("volumeName: free pv fits", P.ClaimInputs(pvc(volume_name="v"), volume=pv("v")),
     [P.Bind("v", False)]),
    ("volumeName: too small", P.ClaimInputs(pvc(volume_name="v", req="20Gi"), volume=pv("v")),
     [P.Event("Warning", "VolumeMismatch",
              'Cannot bind to requested volume "v": requested PV is too small'),
      P.ClaimPending("VolumeMismatch",
                     'Cannot bind to requested volume "v": requested PV is too small')]),
    ("volumeName: class", P.ClaimInputs(pvc(volume_name="v", cls="a"), volume=pv("v", cls="b")),
     [P.Event("Warning", "VolumeMismatch",
              'Cannot bind to requested volume "v": storageClassName does not match'),
      P.ClaimPending("VolumeMismatch",
                     'Cannot bind to requested volume "v": storageClassName does not match')]),
    ("volumeName: access", P.ClaimInputs(pvc(volume_name="v", modes=("ReadWriteMany",)),
                                         volume=pv("v")),
     [P.Event("Warning", "VolumeMismatch",
              'Cannot bind to requested volume "v": incompatible accessMode'),
      P.ClaimPending("VolumeMismatch",
                     'Cannot bind to requested volume "v": incompatible accessMode')]),
    ("volumeName: bound elsewhere", P.ClaimInputs(
        pvc(volume_name="v"), volume=pv("v", claim_ref=ref("other", "u9"))),
     [P.Event("Warning", "FailedBinding", 'volume "v" already bound to a different claim.'),
      P.ClaimPending("FailedBinding", 'volume "v" already bound to a different claim.')]),
    ("volumeName: pre-bound both ways", P.ClaimInputs(
        pvc(volume_name="v"), volume=pv("v", claim_ref=ref(uid=""))), [P.Bind("v", False)]),
    ("bound: lost reference", P.ClaimInputs(pvc(ann=BOUND, phase="Bound")),
     [P.ClaimLost(), P.Event("Warning", "ClaimLost", P.MSG_LOST_REF)]),
    ("bound: pv gone", P.ClaimInputs(pvc(ann=BOUND, volume_name="v", phase="Bound")),
     [P.ClaimLost(), P.Event("Warning", "ClaimLost", P.MSG_LOST_PV)]),
    ("bound: already Lost, no event", P.ClaimInputs(pvc(ann=BOUND, volume_name="v",
                                                        phase="Lost")), []),
    ("bound: misbound", P.ClaimInputs(pvc(ann=BOUND, volume_name="v", phase="Bound"),
                                      volume=pv("v", claim_ref=ref("x", "u9"))),
     [P.ClaimLost(), P.Event("Warning", "ClaimMisbound", P.MSG_MISBOUND)]),
    ("bound: pv claimRef cleared -> re-bind", P.ClaimInputs(
        pvc(ann=BOUND, volume_name="v", phase="Bound"), volume=pv("v")), [P.Bind("v", False)]),
    ("bound: consistent -> idempotent bind", P.ClaimInputs(
        pvc(ann=BOUND, volume_name="v", phase="Bound"), volume=pv("v", claim_ref=ref())),
     [P.Bind("v", False)]),
    ("Lost recovers when pv points back", P.ClaimInputs(
        pvc(ann=BOUND, volume_name="v", phase="Lost"), volume=pv("v", claim_ref=ref())),
     [P.Bind("v", False)]),
]


@pytest.mark.parametrize("name,inp,want", CLAIM_CASES, ids=[c[0] for c in CLAIM_CASES])
def test_claim_plans(name, inp, want):
    assert P.plan_claim(inp) == want


def test_pending_explanation_carries_counts():
    counts = MatchCounts(12, {"too small": 7, "wrong access modes": 4, "other class": 1})
    acts = P.plan_claim(P.ClaimInputs(pvc(cls=""), counts=counts))
    sentence = "12 volumes considered: 7 too small, 4 wrong access modes, 1 other class"
    assert acts[1] == P.ClaimPending("FailedBinding", f"{P.MSG_NO_CLASS}; {sentence}")
    assert acts[0].message.endswith(sentence)


# -- volume transitions ------------------------------------------------------------------------------
C = pvc()
C_BOUND_V = pvc(volume_name="v", ann=BOUND, phase="Bound")
C_BOUND_OTHER = pvc(volume_name="other", ann=BOUND, phase="Bound")
VOLUME_CASES = [
    ("new pv becomes Available", pv("v", phase="Pending"), None, [P.SetVolumePhase("Available")]),
    ("Available stays", pv("v"), None, []),
    ("reserved (no uid) is Available", pv("v", phase="Pending", claim_ref=ref(uid="")), None,
     [P.SetVolumePhase("Available")]),
    ("Released with claimRef cleared -> Available", pv("v", phase="Released"), None,
     [P.SetVolumePhase("Available")]),
    ("claim gone, Retain -> Released", pv("v", phase="Bound", claim_ref=ref()), None,
     [P.SetVolumePhase("Released")]),
    ("Released Retain stays", pv("v", phase="Released", claim_ref=ref()), None, []),
    ("claim gone, Delete provisioned -> Released (provisioner deletes)",
     pv("v", phase="Bound", claim_ref=ref(), policy="Delete",
        ann={P.ANN_PROVISIONED_BY: "k1s.io/local"}), None, [P.SetVolumePhase("Released")]),
    ("claim gone, Delete static -> Failed", pv("v", phase="Bound", claim_ref=ref(),
                                               policy="Delete"), None,
     [P.SetVolumePhase("Released"), P.SetVolumePhase(
         "Failed", 'error getting deleter volume plugin for volume "v": no deletable volume '
                   'plugin matched'),
      P.Event("Warning", "VolumeFailedDelete", 'error getting deleter volume plugin for volume '
              '"v": no deletable volume plugin matched', on="volume")]),
    ("claim gone, Recycle -> Failed", pv("v", phase="Bound", claim_ref=ref(), policy="Recycle"),
     None, [P.SetVolumePhase("Released"),
            P.SetVolumePhase("Failed", "No recycler plugin found for the volume!"),
            P.Event("Warning", "VolumeFailedRecycle", "No recycler plugin found for the volume!",
                    on="volume")]),
    ("claim unbound yet -> enqueue claim", pv("v", claim_ref=ref()), C,
     [P.EnqueueClaim("default/c1")]),
    ("claim unbound, volumeMode differs", pv("v", claim_ref=ref(), mode="Block"), C,
     [P.Event("Warning", "VolumeMismatch", 'Cannot bind PersistentVolume to requested '
              'PersistentVolumeClaim "c1" due to incompatible volumeMode.', on="volume"),
      P.Event("Warning", "VolumeMismatch", 'Cannot bind PersistentVolume "v" to requested '
              'PersistentVolumeClaim due to incompatible volumeMode.')]),
    ("claim bound here -> Bound", pv("v", claim_ref=ref()), C_BOUND_V,
     [P.SetVolumePhase("Bound")]),
    ("claim elsewhere, controller-bound -> unbind", pv(
        "v", phase="Bound", claim_ref=ref(), ann={P.ANN_BOUND_BY_CONTROLLER: "yes"}),
     C_BOUND_OTHER, [P.UnbindVolume(full=True)]),
    ("claim elsewhere, user pre-bound -> drop uid", pv("v", phase="Bound", claim_ref=ref()),
     C_BOUND_OTHER, [P.UnbindVolume(full=False)]),
    ("claim elsewhere, provisioned Delete -> Released", pv(
        "v", phase="Bound", claim_ref=ref(), policy="Delete",
        ann={P.ANN_PROVISIONED_BY: "k1s.io/local"}), C_BOUND_OTHER,
     [P.SetVolumePhase("Released")]),
]


@pytest.mark.parametrize("name,v,c,want", VOLUME_CASES, ids=[c[0] for c in VOLUME_CASES])
def test_volume_plans(name, v, c, want):
    assert P.plan_volume(v, c) == want


# -- the bind's write order --------------------------------------------------------------------------
def test_bind_write_order_and_contents():
    v, c = pv("v", "10Gi"), pvc(req="1Gi")
    steps = []
    while (step := P.next_bind_write(v, c, True)) is not None:
        which, part, obj = step
        steps.append((which, part))
        if which == "volume":
            v = obj
        else:
            c = obj
    assert steps == [("volume", "spec"), ("volume", "status"), ("claim", "spec"),
                     ("claim", "status")]
    assert v["spec"]["claimRef"]["uid"] == "u1"
    assert v["metadata"]["annotations"][P.ANN_BOUND_BY_CONTROLLER] == "yes"
    assert v["status"]["phase"] == "Bound" and v["status"]["lastPhaseTransitionTime"]
    assert c["spec"]["volumeName"] == "v"
    assert c["metadata"]["annotations"] == {P.ANN_BIND_COMPLETED: "yes",
                                            P.ANN_BOUND_BY_CONTROLLER: "yes"}
    assert c["status"] == {"phase": "Bound", "capacity": {"storage": "10Gi"},
                           "accessModes": ["ReadWriteOnce"]}


def test_user_prebound_bind_adds_no_bound_by_controller():
    v, c = pv("v", claim_ref=ref(uid="")), pvc(volume_name="v")
    which, part, obj = P.next_bind_write(v, c, False)
    assert (which, part) == ("volume", "spec")
    assert P.ANN_BOUND_BY_CONTROLLER not in obj["metadata"]["annotations"]
    assert obj["spec"]["claimRef"]["uid"] == "u1"


def test_pending_write_is_idempotent():
    c = P.claim_with_pending(pvc(), "FailedBinding", "why")
    assert c["status"]["conditions"][0]["type"] == P.CONDITION_BINDABLE
    assert P.claim_with_pending(c, "FailedBinding", "why") is None


def test_default_class_newest_wins():
    scs = [{"metadata": {"name": n, "creationTimestamp": t, "annotations": a}}
           for n, t, a in [("old", "2024-01-01T00:00:00Z", {P.ANN_DEFAULT_CLASS: "true"}),
                           ("new", "2024-06-01T00:00:00Z", {P.ANN_BETA_DEFAULT_CLASS: "true"}),
                           ("newest-not-default", "2025-01-01T00:00:00Z", {})]]
    assert P.newest_default_class(scs) == "new"
    assert P.newest_default_class(scs[2:]) is None


# -- pods waiting on a claim (the scheduler chooses the node) ------------------------------------
def _pod(name, claim, node=None, phase="Pending", sched=None):
    return {"metadata": {"name": name}, "spec": {
        "nodeName": node, "schedulerName": sched, "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": claim}}]},
        "status": {"phase": phase}}


def test_unscheduled_users():
    assert unscheduled_users("c1", [_pod("b", "c1"), _pod("a", "c1"), _pod("x", "c1", "n"),
                                    _pod("done", "c1", phase="Succeeded"),
                                    _pod("o", "other")]) == ["a", "b"]


def test_writers_never_mutate_their_inputs():
    import copy
    v, c = pv("v", claim_ref=None, ann={"a": "b"}), pvc(ann={"x": "y"})
    v0, c0 = copy.deepcopy(v), copy.deepcopy(c)
    P.next_bind_write(v, c, True)
    P.claim_with_volume(c, "v", True)
    P.claim_with_bound_status(c, v)
    P.claim_with_pending(c, "r", "m")
    P.claim_with_lost(c)
    P.volume_with_phase(v, "Bound")
    P.with_spec(c, storageClassName="x")
    bound = pv("v", claim_ref=ref(), ann={P.ANN_BOUND_BY_CONTROLLER: "yes"})
    b0 = copy.deepcopy(bound)
    assert "claimRef" not in P.volume_unbound(bound, True)["spec"]
    assert "uid" not in P.volume_unbound(bound, False)["spec"]["claimRef"]
    assert (v, c, bound) == (v0, c0, b0)
