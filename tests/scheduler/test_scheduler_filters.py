"""The pure parts of the scheduler as tables: pod requests, each filter, scoring, messages."""

from __future__ import annotations

import pytest

from k1s.scheduler import filters as F
from k1s.scheduler import messages as M
from k1s.scheduler.model import NodeInfo, PodInfo, pod_requests, wants_scheduling
from k1s.scheduler.score import pick


def mk_pod(name="p", cpu=None, mem=None, node_selector=None, affinity=None, tolerations=None,
           ports=(), owner=None, init=None, **spec):
    res = {}
    if cpu:
        res["cpu"] = cpu
    if mem:
        res["memory"] = mem
    c = {"name": "c", "image": "busybox", "resources": {"requests": res}}
    if ports:
        c["ports"] = [{"containerPort": p, "hostPort": p} for p in ports]
    s = {"containers": [c], **spec}
    if init:
        s["initContainers"] = init
    if node_selector:
        s["nodeSelector"] = node_selector
    if affinity:
        s["affinity"] = {"nodeAffinity": affinity}
    if tolerations:
        s["tolerations"] = tolerations
    md = {"name": name, "namespace": "default", "uid": f"uid-{name}"}
    if owner:
        md["ownerReferences"] = [{"uid": owner, "controller": True, "kind": "StatefulSet",
                                  "name": "o", "apiVersion": "apps/v1"}]
    return {"metadata": md, "spec": s, "status": {"phase": "Pending"}}


def mk_node(name="n1", cpu="2", mem="4Gi", pods="110", labels=None, taints=None, ready="True",
            unschedulable=False):
    ni = NodeInfo(name)
    ni.set_node({"metadata": {"name": name, "labels": labels or {}},
                 "spec": {"taints": taints or [], "unschedulable": unschedulable},
                 "status": {"conditions": [{"type": "Ready", "status": ready}],
                            "allocatable": {"cpu": cpu, "memory": mem, "pods": pods}}})
    return ni


def expr(key, op, *values):
    return {"key": key, "operator": op, "values": list(values)}


def required(*terms):
    return {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": list(terms)}}


def test_pod_requests_follow_upstream_rules():
    p = mk_pod(cpu="500m", mem="1Gi", init=[
        {"name": "i", "resources": {"requests": {"cpu": "2"}}},               # init peak
        {"name": "s", "restartPolicy": "Always", "resources": {"requests": {"memory": "1Gi"}}},
    ], overhead={"cpu": "100m"})
    assert pod_requests(p) == {"cpu": 2100, "memory": 2 << 30}
    only_limits = mk_pod()
    only_limits["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "1"}}
    assert pod_requests(only_limits) == {"cpu": 1000}


@pytest.mark.parametrize("pod,ok", [
    (mk_pod(), True),
    (mk_pod(schedulerName="default-scheduler"), True),
    (mk_pod(schedulerName="other"), False),
    (mk_pod(nodeName="n1"), False),
    (mk_pod(schedulingGates=[{"name": "wait"}]), False),
])
def test_wants_scheduling(pod, ok):
    assert wants_scheduling(pod) == ok


TAINT_DB = {"key": "dedicated", "value": "db", "effect": "NoSchedule"}

FILTER_CASES = [
    # name, pod, node, expected reasons (None: passes), unresolvable
    ("fits", mk_pod(cpu="1"), mk_node(), None, None),
    ("cordoned", mk_pod(), mk_node(unschedulable=True), (F.ERR_UNSCHEDULABLE,), True),
    ("cordoned, tolerated", mk_pod(tolerations=[
        {"key": "node.kubernetes.io/unschedulable", "operator": "Exists",
         "effect": "NoSchedule"}]), mk_node(unschedulable=True), None, None),
    ("selector mismatch", mk_pod(node_selector={"disk": "ssd"}), mk_node(),
     (F.ERR_AFFINITY,), True),
    ("selector match", mk_pod(node_selector={"disk": "ssd"}), mk_node(labels={"disk": "ssd"}),
     None, None),
    ("required affinity In", mk_pod(affinity=required({"matchExpressions": [
        expr("zone", "In", "a", "b")]})), mk_node(labels={"zone": "b"}), None, None),
    ("required affinity NotIn", mk_pod(affinity=required({"matchExpressions": [
        expr("zone", "NotIn", "b")]})), mk_node(labels={"zone": "b"}), (F.ERR_AFFINITY,), True),
    ("terms are ORed", mk_pod(affinity=required(
        {"matchExpressions": [expr("zone", "In", "x")]},
        {"matchFields": [expr("metadata.name", "In", "n1")]})), mk_node(), None, None),
    ("empty term matches nothing", mk_pod(affinity=required({})), mk_node(),
     (F.ERR_AFFINITY,), True),
    ("Gt", mk_pod(affinity=required({"matchExpressions": [expr("gen", "Gt", "3")]})),
     mk_node(labels={"gen": "4"}), None, None),
    ("untolerated taint", mk_pod(), mk_node(taints=[TAINT_DB]), (F.ERR_TAINT % ("dedicated", "db"),), True),
    ("tolerated taint", mk_pod(tolerations=[{"key": "dedicated", "value": "db"}]),
     mk_node(taints=[TAINT_DB]), None, None),
    ("wrong value", mk_pod(tolerations=[{"key": "dedicated", "value": "web"}]),
     mk_node(taints=[TAINT_DB]), (F.ERR_TAINT % ("dedicated", "db"),), True),
    ("tolerate everything", mk_pod(tolerations=[{"operator": "Exists"}]),
     mk_node(taints=[TAINT_DB]), None, None),
    ("PreferNoSchedule does not filter", mk_pod(),
     mk_node(taints=[{"key": "k", "effect": "PreferNoSchedule"}]), None, None),
    ("not ready implies a taint", mk_pod(), mk_node(ready="False"), (F.ERR_TAINT % ("node.kubernetes.io/not-ready", ""),), True),
    ("not ready, tolerated", mk_pod(tolerations=[
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists"}]),
     mk_node(ready="False"), None, None),
    ("insufficient cpu and memory", mk_pod(cpu="3", mem="5Gi"), mk_node(),
     ("Insufficient cpu", "Insufficient memory"), False),
    ("too many pods", mk_pod(), mk_node(pods="0"), (F.ERR_TOO_MANY_PODS,), False),
    ("extended resource", mk_pod(**{"containers": [{"name": "c", "resources": {
        "requests": {"example.com/gpu": "1"}}}]}), mk_node(), ("Insufficient example.com/gpu",),
     False),
]


@pytest.mark.parametrize("name,pod,node,reasons,unresolvable", FILTER_CASES,
                         ids=[c[0] for c in FILTER_CASES])
def test_filters(name, pod, node, reasons, unresolvable):
    r = F.run_filters(PodInfo.of(pod), node)
    if reasons is None:
        assert r is None
    else:
        assert r == F.Reject(reasons, unresolvable)


def test_resources_count_the_pods_already_there_and_ports():
    ni = mk_node(cpu="1", pods="2")
    ni.add_pod(PodInfo.of(mk_pod("a", cpu="600m", ports=[8080])))
    assert F.run_filters(PodInfo.of(mk_pod("b", cpu="400m")), ni) is None
    assert F.run_filters(PodInfo.of(mk_pod("c", cpu="500m")), ni).reasons == ("Insufficient cpu",)
    assert F.run_filters(PodInfo.of(mk_pod("d", ports=[8080])), ni).reasons == (F.ERR_PORTS,)
    ni.add_pod(PodInfo.of(mk_pod("e")))
    assert F.run_filters(PodInfo.of(mk_pod("f")), ni).reasons == (F.ERR_TOO_MANY_PODS,)
    ni.remove_pod("default/a")
    ni.remove_pod("default/e")
    assert ni.requested == {} and not ni.ports and not ni.pods


def test_message_histogram_sorted_as_strings():
    rejects = {"a": F.Reject((F.ERR_TAINT % ("dedicated", "db"),), True),
               "b": F.Reject(("Insufficient cpu",), False),
               "c": F.Reject(("Insufficient cpu", "Insufficient memory"), False)}
    assert M.fit_error(3, rejects=rejects) == (
        "0/3 nodes are available: 1 Insufficient memory, 1 node(s) had untolerated taint "
        "{dedicated: db}, 2 Insufficient cpu. preemption: 0/3 nodes are available: "
        "1 Preemption is not helpful for scheduling, "
        "2 No preemption victims found for incoming pod.")
    assert M.fit_error(2, prefilter="pod has unbound immediate PersistentVolumeClaims") == (
        "0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims. "
        "preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.")
    assert M.fit_error(0) == "no nodes available to schedule pods"
    assert M.scheduled("default", "web-0", "node-1") == \
        "Successfully assigned default/web-0 to node-1"


def test_scoring_prefers_free_nodes_and_spreads_an_owner():
    busy, idle = mk_node("a", cpu="4"), mk_node("b", cpu="4")
    busy.add_pod(PodInfo.of(mk_pod("x", cpu="2")))
    assert pick(PodInfo.of(mk_pod("p")), [busy, idle]) == "b"
    one, two = mk_node("a"), mk_node("b")
    one.add_pod(PodInfo.of(mk_pod("s0", owner="sts")))
    two.add_pod(PodInfo.of(mk_pod("other")))        # same load, another owner
    assert pick(PodInfo.of(mk_pod("s1", owner="sts")), [one, two]) == "b"
    # equal nodes: the smallest name
    assert pick(PodInfo.of(mk_pod("p")), [mk_node("z"), mk_node("m")]) == "m"


def test_scoring_honours_preferred_affinity_and_prefer_no_schedule():
    a = mk_node("a", labels={"disk": "ssd"})
    b = mk_node("b")
    pref = {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 50, "preference": {"matchExpressions": [expr("disk", "In", "ssd")]}}]}
    assert pick(PodInfo.of(mk_pod(affinity=pref)), [b, a]) == "a"
    soft = mk_node("a", taints=[{"key": "k", "effect": "PreferNoSchedule"}])
    assert pick(PodInfo.of(mk_pod()), [soft, mk_node("b")]) == "b"
