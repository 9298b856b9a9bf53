"""Volume topology decisions (volumes.py) as tables."""

from __future__ import annotations

import pytest

from k1s.scheduler import volumes as V
from k1s.scheduler.model import PodInfo

WFFC = {"metadata": {"name": "local"}, "provisioner": "kubernetes.io/no-provisioner",
        "volumeBindingMode": "WaitForFirstConsumer"}
DYN = {"metadata": {"name": "dyn"}, "provisioner": "k1s.io/local",
       "volumeBindingMode": "WaitForFirstConsumer",
       "allowedTopologies": [{"matchLabelExpressions": [{"key": "zone", "values": ["a"]}]}]}
IMM = {"metadata": {"name": "imm"}, "provisioner": "example.com/x",
       "volumeBindingMode": "Immediate"}
CLASSES = {"local": WFFC, "dyn": DYN, "imm": IMM}


def claim(name, cls="local", size="1Gi", volume=None, bound=False, selected=None,
          modes=("ReadWriteOnce",), deleting=False):
    ann = {}
    if bound:
        ann[V.ANN_BIND_COMPLETED] = "yes"
    if selected:
        ann[V.ANN_SELECTED_NODE] = selected
    md = {"name": name, "namespace": "default", "uid": f"uid-{name}", "annotations": ann,
          "resourceVersion": "5"}
    if deleting:
        md["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    s = {"accessModes": list(modes), "resources": {"requests": {"storage": size}},
         "storageClassName": cls}
    if volume:
        s["volumeName"] = volume
    return {"metadata": md, "spec": s, "status": {"phase": "Bound" if bound else "Pending"}}


def pv(name, node=None, size="1Gi", cls="local", claim_ref=None, phase="Available"):
    s = {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"],
         "storageClassName": cls, "local": {"path": "/x"}}
    if node:
        s["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}
    if claim_ref:
        s["claimRef"] = claim_ref
    return {"metadata": {"name": name}, "spec": s, "status": {"phase": phase}}


def pod(*claims):
    return PodInfo.of({"metadata": {"name": "p", "namespace": "default"}, "spec": {
        "containers": [{"name": "c"}],
        "volumes": [{"name": c, "persistentVolumeClaim": {"claimName": c}} for c in claims]}})


def classify(claims, *names):
    by = {c["metadata"]["name"]: c for c in claims}
    return V.classify(pod(*names), lambda ns, n: by.get(n), CLASSES.get)


def test_classify():
    assert classify([], "x") == 'persistentvolumeclaim "x" not found'
    assert classify([claim("x", deleting=True)], "x") == \
        'persistentvolumeclaim "x" is being deleted'
    assert classify([claim("x", cls="imm")], "x") == V.ERR_UNBOUND_IMMEDIATE
    assert classify([claim("x", cls="")], "x") == V.ERR_UNBOUND_IMMEDIATE
    assert classify([claim("x", volume="pv1")], "x") == V.ERR_UNBOUND_IMMEDIATE  # pre-bound
    got = classify([claim("a", volume="pv1", bound=True), claim("b")], "a", "b")
    assert [c["metadata"]["name"] for c, _ in got.bound] == ["a"]
    assert got.bound[0][1] == "pv1"
    assert [c["metadata"]["name"] for c in got.delayed] == ["b"]


def run_filter(claims, names, pvs, node="n1", labels=None, taken=()):
    state = classify(claims, *names)
    byname = {p["metadata"]["name"]: p for p in pvs}
    cands = {f"default/{c['metadata']['name']}": V.candidates(c, pvs) for c in state.delayed}
    labels = {"kubernetes.io/hostname": node, **(labels or {})}
    return V.filter_node(state, node, labels, get_pv=byname.get, cands=cands,
                         get_class=CLASSES.get, taken=lambda p, c: p in taken)


@pytest.mark.parametrize("name,claims,names,pvs,node,labels,taken,want", [
    ("bound volume on this node", [claim("a", volume="v", bound=True)], ["a"],
     [pv("v", "n1", phase="Bound")], "n1", None, (), "ok"),
    ("bound volume elsewhere", [claim("a", volume="v", bound=True)], ["a"],
     [pv("v", "n2", phase="Bound")], "n1", None, (), V.ERR_NODE_CONFLICT),
    ("bound volume gone", [claim("a", volume="v", bound=True)], ["a"], [], "n1", None, (),
     V.ERR_PV_NOT_EXIST),
    ("static match here", [claim("a")], ["a"], [pv("v", "n1")], "n1", None, (), "static v"),
    ("static match elsewhere, no provisioner", [claim("a")], ["a"], [pv("v", "n2")], "n1",
     None, (), V.ERR_BIND_CONFLICT),
    ("too small", [claim("a", size="2Gi")], ["a"], [pv("v", "n1")], "n1", None, (),
     V.ERR_BIND_CONFLICT),
    ("taken by a bind in flight", [claim("a")], ["a"], [pv("v", "n1")], "n1", None, ("v",),
     V.ERR_BIND_CONFLICT),
    ("smallest fit wins", [claim("a")], ["a"], [pv("big", "n1", "5Gi"), pv("v", "n1")], "n1",
     None, (), "static v"),
    ("two claims, two volumes", [claim("a"), claim("b")], ["a", "b"],
     [pv("v1", "n1"), pv("v2", "n1")], "n1", None, (), "static v1,v2"),
    ("two claims, one volume", [claim("a"), claim("b")], ["a", "b"], [pv("v1", "n1")], "n1",
     None, (), V.ERR_BIND_CONFLICT),
    ("provision in allowed zone", [claim("a", cls="dyn")], ["a"], [], "n1", {"zone": "a"}, (),
     "provision a"),
    ("provision outside allowed zone", [claim("a", cls="dyn")], ["a"], [], "n1",
     {"zone": "b"}, (), V.ERR_BIND_CONFLICT),
    ("selected for this node", [claim("a", cls="dyn", selected="n1")], ["a"], [], "n1",
     {"zone": "a"}, (), "provision a"),
    ("selected for another node", [claim("a", cls="dyn", selected="n2")], ["a"], [], "n1",
     {"zone": "a"}, (), V.ERR_BIND_CONFLICT),
])
def test_filter_node(name, claims, names, pvs, node, labels, taken, want):
    rej, dec = run_filter(claims, names, pvs, node, labels, taken)
    if want == "ok":
        assert rej is None and not dec.static and not dec.provision
    elif want.startswith("static "):
        assert rej is None
        assert [p["metadata"]["name"] for _, p in dec.static] == want[7:].split(",")
    elif want.startswith("provision "):
        assert rej is None and [c["metadata"]["name"] for c in dec.provision] == [want[10:]]
    else:
        assert rej is not None and rej.reasons == (want,) and rej.unresolvable


def test_volume_zone():
    v = pv("v", phase="Bound")
    v["metadata"]["labels"] = {"topology.kubernetes.io/zone": "a__b"}
    bound = [claim("x", volume="v", bound=True)]
    rej, _ = run_filter(bound, ["x"], [v], labels={"topology.kubernetes.io/zone": "c"})
    assert rej.reasons == (V.ERR_ZONE_CONFLICT,)
    rej, _ = run_filter(bound, ["x"], [v], labels={"topology.kubernetes.io/zone": "b"})
    assert rej is None


def test_prebind_writes_and_wait_states():
    c = claim("a")
    v = V.volume_prebound(pv("v", "n1"), c)
    assert v["spec"]["claimRef"]["uid"] == "uid-a" and v["spec"]["claimRef"]["name"] == "a"
    assert v["metadata"]["annotations"][V.ANN_BOUND_BY_CONTROLLER] == "yes"
    assert "claimRef" not in pv("v", "n1")["spec"]          # inputs untouched
    sel = V.claim_selected(c, "n1")
    assert sel["metadata"]["annotations"][V.ANN_SELECTED_NODE] == "n1"
    assert V.ANN_SELECTED_NODE not in c["metadata"]["annotations"]
    labels = {"kubernetes.io/hostname": "n1"}
    assert V.wait_state(c, v, "n1", labels, provisioned=False) == "wait"
    assert "reset" in V.wait_state(c, pv("v", "n1"), "n1", labels, provisioned=False)
    assert "reset" in V.wait_state(c, None, "n1", labels, provisioned=True)
    assert V.wait_state(sel, None, "n1", labels, provisioned=True) == "wait"
    done = claim("a", volume="v", bound=True)
    assert V.wait_state(done, pv("v", "n1"), "n1", labels, provisioned=True) == "bound"
    assert "affinity" in V.wait_state(done, pv("v", "n2"), "n1", labels, provisioned=True)
    assert V.wait_state(None, None, "n1", labels, provisioned=True) != "wait"


def test_read_write_once_pod_conflict():
    c = claim("a", modes=("ReadWriteOncePod",))
    state = classify([c], "a")
    assert V.rwop_conflict(pod("a"), state, lambda k: {"default/other"})
    assert not V.rwop_conflict(pod("a"), state, lambda k: {"default/p"})
    assert not V.rwop_conflict(pod("a"), classify([claim("a")], "a"), lambda k: {"x/y"})
