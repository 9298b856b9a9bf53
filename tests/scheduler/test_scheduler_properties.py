"""Properties of the scheduler's pure parts over random sequences of cluster changes:
the chosen node passes every filter, resources are never over-committed (assumed pods
included), and the incremental accounting always equals a recount from scratch."""

from __future__ import annotations

from hypothesis import given, strategies as st

from k1s.scheduler import volumes as V
from k1s.scheduler.cache import Cache
from k1s.scheduler.filters import run_filters
from k1s.scheduler.model import CPU, MEMORY, PodInfo
from k1s.scheduler.score import pick

NODES = ("n0", "n1", "n2")


def node(name, cpu_m, mem_mi, pods, tainted=False):
    return {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name,
                                                  "zone": "a" if name != "n2" else "b"}},
            "spec": {"taints": [{"key": "t", "effect": "NoSchedule"}] if tainted else []},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                       "allocatable": {"cpu": f"{cpu_m}m", "memory": f"{mem_mi}Mi",
                                       "pods": str(pods)}}}


def pod(i, cpu_m, mem_mi, zone, tolerate, owner):
    s = {"containers": [{"name": "c", "resources": {"requests": {
        "cpu": f"{cpu_m}m", "memory": f"{mem_mi}Mi"}}}]}
    if zone:
        s["nodeSelector"] = {"zone": zone}
    if tolerate:
        s["tolerations"] = [{"key": "t", "operator": "Exists"}]
    return {"metadata": {"name": f"p{i}", "namespace": "default", "uid": f"u{i}",
                         "ownerReferences": [{"uid": owner, "controller": True}]},
            "spec": s}


ops = st.lists(st.one_of(
    st.tuples(st.just("pod"), st.integers(0, 1500), st.integers(0, 900),
              st.sampled_from([None, "a", "b"]), st.booleans(), st.sampled_from(["o1", "o2"])),
    st.tuples(st.just("confirm"), st.integers(0, 50)),
    st.tuples(st.just("forget"), st.integers(0, 50)),
    st.tuples(st.just("delete"), st.integers(0, 50)),
    st.tuples(st.just("node"), st.sampled_from(NODES), st.integers(500, 4000),
              st.integers(256, 4096), st.integers(0, 6), st.booleans()),
    st.tuples(st.just("remove-node"), st.sampled_from(NODES)),
), max_size=60)


def check_invariants(cache: Cache, infos: dict):
    for ni in cache.nodes.values():
        want = {}
        for pi in ni.pods.values():
            for k, v in pi.requests.items():
                want[k] = want.get(k, 0) + v
            assert cache.pod_node[pi.key] == ni.name
        assert {k: v for k, v in ni.requested.items() if v} == want
        assert ni.nonzero_cpu == sum(p.nonzero_cpu for p in ni.pods.values())
        owners = {}
        for p in ni.pods.values():
            owners[p.owner] = owners.get(p.owner, 0) + 1
        assert dict(ni.owners) == owners
    counted = {k for ni in cache.nodes.values() for k in ni.pods}
    assert counted == set(cache.pod_node)
    assert cache.assumed <= counted


@given(ops)
def test_decisions_pass_filters_and_never_overcommit(seq):
    cache = Cache()
    infos: dict[str, PodInfo] = {}
    shrunk = set()          # nodes whose allocatable changed under their pods
    for n in NODES:
        cache.set_node(node(n, 2000, 2048, 4))
    for i, op in enumerate(seq):
        kind = op[0]
        if kind == "pod":
            pi = PodInfo.of(pod(i, *op[1:]))
            nodes = cache.schedulable_nodes()
            feasible = [n for n in nodes if run_filters(pi, n) is None]
            chosen = pick(pi, feasible)
            if chosen is None:
                assert all(run_filters(pi, n) is not None for n in nodes)
                continue
            ni = cache.nodes[chosen]
            assert run_filters(pi, ni) is None           # the chosen node passes every filter
            cache.assume(pi, chosen)
            infos[pi.key] = pi
            if chosen not in shrunk:
                assert ni.requested.get(CPU, 0) <= ni.allocatable[CPU]
                assert ni.requested.get(MEMORY, 0) <= ni.allocatable[MEMORY]
                assert len(ni.pods) <= ni.allocatable["pods"]
        elif kind in ("confirm", "forget", "delete"):
            keys = sorted(cache.pod_node)
            if not keys:
                continue
            key = keys[op[1] % len(keys)]
            if kind == "confirm":
                cache.pod_bound(infos[key], cache.pod_node[key])
            elif kind == "forget":
                cache.forget(key)
            else:
                cache.pod_gone(key)
        elif kind == "node":
            _, name, cpu, mem, pods, tainted = op
            cache.set_node(node(name, cpu, mem, pods, tainted))
            shrunk.add(name)
        else:
            cache.remove_node(op[1])
        check_invariants(cache, infos)


claims_st = st.lists(st.tuples(st.integers(1, 5), st.sampled_from(["local", "dyn"])),
                     min_size=1, max_size=3)
pvs_st = st.lists(st.tuples(st.sampled_from(NODES), st.integers(1, 5)), max_size=6)


@given(claims_st, pvs_st, st.sampled_from(NODES))
def test_volume_decisions_are_consistent(claims, pvs, where):
    classes = {"local": {"provisioner": "kubernetes.io/no-provisioner",
                         "volumeBindingMode": "WaitForFirstConsumer"},
               "dyn": {"provisioner": "k1s.io/local", "volumeBindingMode":
                       "WaitForFirstConsumer", "allowedTopologies": [
                           {"matchLabelExpressions": [{"key": "zone", "values": ["a"]}]}]}}
    cl = [{"metadata": {"name": f"c{i}", "namespace": "default", "uid": f"u{i}"},
           "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": cls,
                    "resources": {"requests": {"storage": f"{size}Gi"}}}}
          for i, (size, cls) in enumerate(claims)]
    vols = [{"metadata": {"name": f"v{i}"},
             "spec": {"capacity": {"storage": f"{size}Gi"}, "accessModes": ["ReadWriteOnce"],
                      "storageClassName": "local", "local": {"path": "/x"},
                      "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                          {"key": "kubernetes.io/hostname", "operator": "In",
                           "values": [n]}]}]}}},
             "status": {"phase": "Available"}} for i, (n, size) in enumerate(pvs)]
    by = {c["metadata"]["name"]: c for c in cl}
    pi = PodInfo.of({"metadata": {"name": "p", "namespace": "default"}, "spec": {
        "volumes": [{"name": n, "persistentVolumeClaim": {"claimName": n}} for n in by]}})
    state = V.classify(pi, lambda ns, n: by.get(n), classes.get)
    cands = {f"default/{c['metadata']['name']}": V.candidates(c, vols) for c in state.delayed}
    labels = {"kubernetes.io/hostname": where, "zone": "a" if where != "n2" else "b"}
    rej, dec = V.filter_node(state, where, labels, get_pv=lambda n: None, cands=cands,
                             get_class=classes.get)
    if rej is not None:
        return
    # every claim is handled exactly once; no volume is promised twice; each fits its claim
    # and admits the node; provisioned claims have a class that can provision here
    handled = [c["metadata"]["name"] for c, _ in dec.static] + [
        c["metadata"]["name"] for c in dec.provision]
    assert sorted(handled) == sorted(by)
    names = [v["metadata"]["name"] for _, v in dec.static]
    assert len(names) == len(set(names))
    for c, v in dec.static:
        assert V.P.mismatch(v, c, V.P.Node(where, labels), True) is None
    for c in dec.provision:
        assert V.can_provision(c, classes.get, labels)
