"""The volume index answers exactly what the plain scan (planner.find_best_match_linear)
answers, for random volumes and claims, after random updates and deletions; and its counts
explain every refused volume."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from k1s.controllers.pv_binder import planner as P
from k1s.controllers.pv_binder.index import VolumeIndex

MODES = ["ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany"]
modesets = st.lists(st.sampled_from(MODES), min_size=1, max_size=3, unique=True)
classes = st.sampled_from([None, "", "fast", "slow"])
vmodes = st.sampled_from([None, "Filesystem", "Block"])


@st.composite
def volumes(draw, name):
    s = {"capacity": {"storage": f"{draw(st.integers(1, 8))}Gi"},
         "accessModes": draw(modesets)}
    cls = draw(classes)
    if cls is not None:
        s["storageClassName"] = cls
    vm = draw(vmodes)
    if vm:
        s["volumeMode"] = vm
    if draw(st.booleans()):
        s["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In",
             "values": [draw(st.sampled_from(["a", "b"]))]}]}]}}
    claim = draw(st.sampled_from([None, None, None, "c", "other"]))
    if claim:
        s["claimRef"] = {"namespace": "default", "name": claim,
                         "uid": draw(st.sampled_from(["", "uc", "ux"]))}
    md = {"name": name, "labels": {"tier": draw(st.sampled_from(["db", "web"]))}}
    if draw(st.integers(0, 9)) == 0:
        md["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    return {"metadata": md, "spec": s,
            "status": {"phase": draw(st.sampled_from(["Available", "Available", "Pending",
                                                      "Bound", "Released"]))}}


@st.composite
def claims(draw):
    s = {"accessModes": draw(modesets),
         "resources": {"requests": {"storage": f"{draw(st.integers(1, 9))}Gi"}}}
    cls = draw(classes)
    if cls is not None:
        s["storageClassName"] = cls
    vm = draw(vmodes)
    if vm:
        s["volumeMode"] = vm
    if draw(st.booleans()):
        s["selector"] = {"matchLabels": {"tier": "db"}}
    return {"metadata": {"name": "c", "namespace": "default", "uid": "uc"}, "spec": s}


@st.composite
def scenario(draw):
    names = [f"v{i}" for i in range(draw(st.integers(0, 25)))]
    vols = {n: draw(volumes(n)) for n in names}
    updates = [draw(volumes(n)) for n in draw(st.lists(st.sampled_from(names), max_size=8))] \
        if names else []
    deletes = draw(st.lists(st.sampled_from(names), max_size=5)) if names else []
    return vols, updates, deletes


@settings(max_examples=300, deadline=None)
@given(scenario(), claims(), st.sampled_from([None, "a", "b"]), st.booleans())
def test_index_equals_linear_scan(sc, claim, node_name, delay):
    vols, updates, deletes = sc
    idx = VolumeIndex()
    for v in vols.values():
        idx.observe(v)
    for v in updates:
        idx.observe(v)
        vols[v["metadata"]["name"]] = v
    for n in deletes:
        idx.forget(n)
        vols.pop(n, None)
    node = P.Node(node_name, {"kubernetes.io/hostname": node_name}) if node_name else None
    want = P.find_best_match_linear(claim, list(vols.values()), node, delay)
    got = idx.find(claim, node, delay)
    assert (got and got["metadata"]["name"]) == (want and want["metadata"]["name"])
    assert len(idx) == len(vols)


@settings(max_examples=150, deadline=None)
@given(scenario(), claims())
def test_counts_cover_every_free_volume(sc, claim):
    vols, _, _ = sc
    idx = VolumeIndex()
    for v in vols.values():
        idx.observe(v)
    free = [v for v in vols.values() if v["status"]["phase"] == "Available"
            and not v["spec"].get("claimRef") and not v["metadata"].get("deletionTimestamp")]
    c = idx.counts(claim)
    assert c.considered == len(free)
    fitting = sum(1 for v in free if P.mismatch(v, claim) is None)
    assert sum(c.refused.values()) + fitting == len(free)


def test_reserved_volume_is_skipped_until_released():
    idx = VolumeIndex()
    for n, cap in (("a", "1Gi"), ("b", "2Gi")):
        idx.observe({"metadata": {"name": n}, "spec": {"capacity": {"storage": cap},
                                                       "accessModes": ["ReadWriteOnce"]},
                     "status": {"phase": "Available"}})
    claim = {"metadata": {"name": "c", "namespace": "default", "uid": "u"},
             "spec": {"accessModes": ["ReadWriteOnce"],
                      "resources": {"requests": {"storage": "1Gi"}}}}
    assert idx.find(claim)["metadata"]["name"] == "a"
    idx.reserve("a")
    assert idx.find(claim)["metadata"]["name"] == "b"
    idx.release("a")
    assert idx.find(claim)["metadata"]["name"] == "a"
