"""StatefulSet updates as a user of real kubectl drives them on `k1s up --simulated-nodes 3`.

`set image` + `rollout status` (upstream's messages), the update order (highest ordinal first,
one at a time), `rollout history` / `rollout undo` (the old revision reused and renumbered),
`rollout restart`, a partitioned (canary, then phased) rollout, and OnDelete, which updates
only the pods a user deletes (shared/spec/k8s-semantics.md §1.5–§1.7, kubectl-wire.md §8).
"""

from __future__ import annotations

import json
import re

from e2e_util import lines, row, wait_until
from sim_cluster import (apply_seed, image, kubectl, ns, parse_watch, pods,  # noqa: F401
                         revision_hash, rollout_status, seed_sts, sim_cluster, sts_obj,
                         wait_pods_ready, wait_sts, watch_pods)

COMPLETE = "partitioned roll out complete: {n} new pods have been updated..."


def _history(k, ns: str) -> list[str]:
    """REVISION column of `kubectl rollout history sts/web`."""
    out = k.ok("rollout", "history", "sts/web", "-n", ns)
    ls = lines(out)
    assert ls[0] == "statefulset.apps/web", out
    assert ls[1].split() == ["REVISION", "CHANGE-CAUSE"], out
    return [ln.split()[0] for ln in ls[2:]]


def _revisions(k, ns: str) -> dict[str, int]:
    """ControllerRevision name -> revision number."""
    return {c["metadata"]["name"]: c["revision"]
            for c in k.json("get", "controllerrevisions", "-n", ns)["items"]}


def _complete(k, ns: str, n: int) -> str:
    out = rollout_status(k, ns)
    assert out.returncode == 0, out.stdout + out.stderr
    assert lines(out.stdout)[-1] == COMPLETE.format(n=n), out.stdout
    return out.stdout


def test_rolling_update_history_undo_restart(kubectl, ns):
    apply_seed(kubectl, ns, seed_sts(replicas=3))
    _complete(kubectl, ns, 3)
    first = wait_pods_ready(kubectl, ns, ["web-0", "web-1", "web-2"])
    rev1 = sts_obj(kubectl, ns)["status"]["updateRevision"]
    assert {revision_hash(p) for p in first.values()} == {rev1}
    assert _history(kubectl, ns) == ["1"]
    old = {n: p["metadata"]["uid"] for n, p in first.items()}

    w = watch_pods(kubectl, ns)
    try:
        assert w.read_until(lambda ln: ln.startswith("ADDED|web-2"), timeout=15)
        out = kubectl.ok("set", "image", "sts/web", "nginx=nginx:1.26", "-n", ns)
        assert out.strip() == "statefulset.apps/web image updated"
        status = _complete(kubectl, ns, 3)
        after = wait_pods_ready(kubectl, ns, ["web-0", "web-1", "web-2"], not_uids=old)
        w.read_until(lambda ln: False, timeout=1.0)
    finally:
        text, _ = w.stop()
    # what kubectl printed on the way: only upstream's messages
    allowed = ("Waiting for statefulset spec update to be observed...",
               "Waiting for partitioned roll out to finish: ", "Waiting for 1 pods to be ready...",
               "partitioned roll out complete: ")
    assert all(ln.startswith(allowed) for ln in lines(status)), status

    o = sts_obj(kubectl, ns)
    rev2 = o["status"]["updateRevision"]
    assert rev2 != rev1 and o["status"]["currentRevision"] == rev2
    assert (o["status"]["updatedReplicas"], o["status"]["currentReplicas"]) == (3, 3)
    assert all(image(p) == "nginx:1.26" and revision_hash(p) == rev2 for p in after.values())
    # highest ordinal first, and each one's replacement Ready before the next goes
    events = parse_watch(text)
    deleting = []
    for e in events:
        if e["deleting"] and e["uid"] == old.get(e["name"]) and e["name"] not in deleting:
            deleting.append(e["name"])
    assert deleting == ["web-2", "web-1", "web-0"], text
    idx_ready_new2 = next(i for i, e in enumerate(events)
                          if e["name"] == "web-2" and e["uid"] != old["web-2"] and e["ready"])
    idx_del1 = next(i for i, e in enumerate(events)
                    if e["name"] == "web-1" and e["deleting"])
    assert idx_ready_new2 < idx_del1, text
    assert _history(kubectl, ns) == ["1", "2"]
    shown = kubectl.ok("rollout", "history", "sts/web", "-n", ns, "--revision=2")
    assert re.search(r"Image:\s+nginx:1\.26\n", shown), shown
    shown = kubectl.ok("rollout", "history", "sts/web", "-n", ns, "--revision=1")
    assert re.search(r"Image:\s+nginx:1\.9\.1\n", shown), shown

    out = kubectl.ok("rollout", "undo", "sts/web", "-n", ns)
    assert out.strip() == "statefulset.apps/web rolled back"
    _complete(kubectl, ns, 3)
    back = wait_pods_ready(kubectl, ns, ["web-0", "web-1", "web-2"])
    o = sts_obj(kubectl, ns)
    # the old revision object is reused, renumbered 3; no new revision is made
    assert o["status"]["updateRevision"] == rev1 == o["status"]["currentRevision"]
    assert _revisions(kubectl, ns) == {rev2: 2, rev1: 3}
    assert _history(kubectl, ns) == ["2", "3"]
    assert all(image(p) == "nginx:1.9.1" and revision_hash(p) == rev1 for p in back.values())

    # undoing to the revision the set already runs is skipped, as upstream
    p = kubectl("rollout", "undo", "sts/web", "-n", ns, "--to-revision=3")
    assert p.returncode == 0, p.stderr
    assert "skipped rollback (current template already matches revision 3)" in p.stdout

    old = {n: p["metadata"]["uid"] for n, p in back.items()}
    out = kubectl.ok("rollout", "restart", "sts/web", "-n", ns)
    assert out.strip() == "statefulset.apps/web restarted"
    _complete(kubectl, ns, 3)
    restarted = wait_pods_ready(kubectl, ns, ["web-0", "web-1", "web-2"], not_uids=old)
    rev4 = sts_obj(kubectl, ns)["status"]["updateRevision"]
    assert rev4 not in (rev1, rev2)
    for p in restarted.values():
        assert revision_hash(p) == rev4 and image(p) == "nginx:1.9.1"
        assert "kubectl.kubernetes.io/restartedAt" in p["metadata"].get("annotations", {})
    assert _history(kubectl, ns) == ["2", "3", "4"]


def test_partition_canary_then_phased(kubectl, ns):
    sts = seed_sts(replicas=3, updateStrategy={"type": "RollingUpdate",
                                               "rollingUpdate": {"partition": 2}})
    apply_seed(kubectl, ns, sts)
    # at creation every pod is at the update revision, whatever the partition
    _complete(kubectl, ns, 3)
    first = wait_pods_ready(kubectl, ns, ["web-0", "web-1", "web-2"])
    rev1 = sts_obj(kubectl, ns)["status"]["updateRevision"]
    old = {n: p["metadata"]["uid"] for n, p in first.items()}

    kubectl.ok("set", "image", "sts/web", "nginx=nginx:1.26", "-n", ns)
    _complete(kubectl, ns, 1)
    ps = wait_pods_ready(kubectl, ns, ["web-0", "web-1", "web-2"],
                         not_uids={"web-2": old["web-2"]})
    o = wait_sts(kubectl, ns, lambda o: o["status"].get("updatedReplicas") == 1)
    rev2 = o["status"]["updateRevision"]
    # only the canary moved; the others keep their revision (and stay the same pods)
    assert revision_hash(ps["web-2"]) == rev2 and image(ps["web-2"]) == "nginx:1.26"
    for n in ("web-0", "web-1"):
        assert ps[n]["metadata"]["uid"] == old[n]
        assert revision_hash(ps[n]) == rev1 and image(ps[n]) == "nginx:1.9.1"
    assert o["status"]["currentRevision"] == rev1
    assert (o["status"]["currentReplicas"], o["status"]["updatedReplicas"]) == (2, 1)

    # a pod below the partition that is deleted comes back at the current revision
    kubectl.ok("delete", "pod", "web-0", "-n", ns)
    ps = wait_pods_ready(kubectl, ns, ["web-0", "web-1", "web-2"],
                         not_uids={"web-0": old["web-0"]})
    assert revision_hash(ps["web-0"]) == rev1 and image(ps["web-0"]) == "nginx:1.9.1"

    # phased: lower the partition and the rest follow
    kubectl.ok("patch", "sts", "web", "-n", ns, "--type=merge",
               "-p", '{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}')
    _complete(kubectl, ns, 3)
    o = wait_sts(kubectl, ns, lambda o: o["status"].get("currentRevision") == rev2)
    ps = wait_pods_ready(kubectl, ns, ["web-0", "web-1", "web-2"])
    assert all(revision_hash(p) == rev2 and image(p) == "nginx:1.26" for p in ps.values())
    assert o["status"]["updatedReplicas"] == 3


def test_on_delete_updates_only_deleted_pods(kubectl, ns):
    sts = seed_sts(replicas=2, updateStrategy={"type": "OnDelete"})
    apply_seed(kubectl, ns, sts)
    first = wait_pods_ready(kubectl, ns, ["web-0", "web-1"])
    rev1 = wait_sts(kubectl, ns, lambda o: o["status"].get("readyReplicas") == 2)[
        "status"]["updateRevision"]
    p = rollout_status(kubectl, ns)
    assert p.returncode == 1
    assert "rollout status is only available for RollingUpdate strategy type" in p.stderr

    kubectl.ok("set", "image", "sts/web", "nginx=nginx:1.26", "-n", ns)
    o = wait_sts(kubectl, ns, lambda o: o["status"].get("updateRevision") not in (None, rev1))
    rev2 = o["status"]["updateRevision"]
    # the controller has seen the new template (observedGeneration) and changed no pod
    ps = pods(kubectl, ns)
    assert {n: p["metadata"]["uid"] for n, p in ps.items()} == \
        {n: p["metadata"]["uid"] for n, p in first.items()}
    assert all(revision_hash(p) == rev1 and image(p) == "nginx:1.9.1" for p in ps.values())
    assert o["status"].get("updatedReplicas", 0) == 0
    assert row(kubectl.ok("get", "sts", "web", "-n", ns), "web")["READY"] == "2/2"

    kubectl.ok("delete", "pod", "web-0", "-n", ns)
    ps = wait_pods_ready(kubectl, ns, ["web-0", "web-1"],
                         not_uids={"web-0": first["web-0"]["metadata"]["uid"]})
    assert revision_hash(ps["web-0"]) == rev2 and image(ps["web-0"]) == "nginx:1.26"
    assert ps["web-1"]["metadata"]["uid"] == first["web-1"]["metadata"]["uid"]
    assert revision_hash(ps["web-1"]) == rev1 and image(ps["web-1"]) == "nginx:1.9.1"
    o = wait_sts(kubectl, ns, lambda o: o["status"].get("updatedReplicas") == 1)
    assert o["status"].get("currentReplicas") == 1, json.dumps(o["status"])
    # scale-up under OnDelete also uses the newest template
    kubectl.ok("scale", "sts", "web", "-n", ns, "--replicas=3")
    ps = wait_pods_ready(kubectl, ns, ["web-0", "web-1", "web-2"])
    assert revision_hash(ps["web-2"]) == rev2
    assert wait_until(lambda: sts_obj(kubectl, ns)["status"].get("updatedReplicas") == 2,
                      timeout=15, interval=0.2)


def test_max_unavailable_updates_several_pods_at_once(kubectl, ns):
    # maxUnavailable is on by default from 1.37: up to 3 pods of the old revision go at once
    names = [f"web-{i}" for i in range(6)]
    sts = seed_sts(replicas=6, podManagementPolicy="Parallel",
                   updateStrategy={"type": "RollingUpdate",
                                   "rollingUpdate": {"maxUnavailable": 3}})
    apply_seed(kubectl, ns, sts)
    _complete(kubectl, ns, 6)
    first = wait_pods_ready(kubectl, ns, names)
    assert sts_obj(kubectl, ns)["spec"]["updateStrategy"]["rollingUpdate"] == \
        {"maxUnavailable": 3, "partition": 0}
    old = {n: p["metadata"]["uid"] for n, p in first.items()}

    w = watch_pods(kubectl, ns)
    try:
        assert w.read_until(lambda ln: ln.startswith("ADDED|web-5"), timeout=15)
        kubectl.ok("set", "image", "sts/web", "nginx=nginx:1.26", "-n", ns)
        _complete(kubectl, ns, 6)
        after = wait_pods_ready(kubectl, ns, names, not_uids=old)
        w.read_until(lambda ln: False, timeout=1.0)
    finally:
        text, _ = w.stop()
    rev = sts_obj(kubectl, ns)["status"]["updateRevision"]
    assert all(revision_hash(p) == rev and image(p) == "nginx:1.26" for p in after.values())
    events = parse_watch(text)
    first_new_ready = next(i for i, e in enumerate(events)
                           if e["uid"] != old.get(e["name"]) and e["ready"])
    deleting_before = {e["name"] for e in events[:first_new_ready]
                       if e["deleting"] and e["uid"] == old.get(e["name"])}
    # the three highest ordinals are taken down together, before any replacement is Ready
    assert deleting_before == {"web-5", "web-4", "web-3"}, text


BROKEN = '{"spec":{"template":{"spec":{"nodeSelector":{"e2e.k1s.io/no-such-node":"x"}}}}}'
NO_NODE = "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."


def _unschedulable(k, ns: str, pod: str) -> bool:
    ev = k.json("get", "events", "-n", ns, "--field-selector", f"involvedObject.name={pod}")
    return any(e["reason"] == "FailedScheduling" and e["message"].startswith(NO_NODE)
               for e in ev["items"])


def test_stuck_rollout_needs_revert_and_pod_delete_when_ordered(kubectl, ns):
    # upstream's "forced rollback" (kubernetes/kubernetes#67250): a template whose pod never
    # becomes Ready halts the rollout at the highest ordinal; reverting the template does not
    # replace the broken pod (the ordered pass waits for it); deleting it does
    apply_seed(kubectl, ns, seed_sts(replicas=3))
    _complete(kubectl, ns, 3)
    first = wait_pods_ready(kubectl, ns, ["web-0", "web-1", "web-2"])
    rev1 = sts_obj(kubectl, ns)["status"]["updateRevision"]
    kubectl.ok("patch", "sts", "web", "-n", ns, "--type=strategic", "-p", BROKEN)
    assert wait_until(lambda: _unschedulable(kubectl, ns, "web-2"), timeout=30, interval=0.3), \
        kubectl.ok("get", "events", "-n", ns)
    p = kubectl("rollout", "status", "sts/web", "-n", ns, "--timeout=2s", timeout=60)
    assert p.returncode == 1 and "timed out waiting for the condition" in p.stderr, p.stderr
    broken = pods(kubectl, ns)
    assert broken["web-2"]["status"]["phase"] == "Pending"
    for n in ("web-0", "web-1"):     # the rollout stopped at the broken pod
        assert broken[n]["metadata"]["uid"] == first[n]["metadata"]["uid"]

    kubectl.ok("rollout", "undo", "sts/web", "-n", ns)
    wait_sts(kubectl, ns, lambda o: o["status"].get("updateRevision") == rev1)
    p = kubectl("rollout", "status", "sts/web", "-n", ns, "--timeout=2s", timeout=60)
    assert p.returncode == 1, p.stdout
    still = pods(kubectl, ns)["web-2"]
    assert still["metadata"]["uid"] == broken["web-2"]["metadata"]["uid"]
    assert still["status"]["phase"] == "Pending"

    kubectl.ok("delete", "pod", "web-2", "-n", ns)
    _complete(kubectl, ns, 3)
    ps = wait_pods_ready(kubectl, ns, ["web-0", "web-1", "web-2"])
    assert all(revision_hash(p) == rev1 and not p["spec"].get("nodeSelector")
               for p in ps.values())


def test_stuck_rollout_heals_on_revert_when_parallel(kubectl, ns):
    apply_seed(kubectl, ns, seed_sts(replicas=3, podManagementPolicy="Parallel"))
    _complete(kubectl, ns, 3)
    wait_pods_ready(kubectl, ns, ["web-0", "web-1", "web-2"])
    rev1 = sts_obj(kubectl, ns)["status"]["updateRevision"]
    kubectl.ok("patch", "sts", "web", "-n", ns, "--type=strategic", "-p", BROKEN)
    assert wait_until(lambda: _unschedulable(kubectl, ns, "web-2"), timeout=30, interval=0.3)
    kubectl.ok("rollout", "undo", "sts/web", "-n", ns)
    _complete(kubectl, ns, 3)
    ps = wait_pods_ready(kubectl, ns, ["web-0", "web-1", "web-2"])
    assert all(revision_hash(p) == rev1 and not p["spec"].get("nodeSelector")
               for p in ps.values())


def test_revision_history_limit_keeps_the_newest(kubectl, ns):
    apply_seed(kubectl, ns, seed_sts(replicas=1, revisionHistoryLimit=1))
    _complete(kubectl, ns, 1)
    for tag in ("1.25", "1.26", "1.27"):
        kubectl.ok("set", "image", "sts/web", f"nginx=nginx:{tag}", "-n", ns)
        _complete(kubectl, ns, 1)
    # the live revision (4) and one old one; the oldest are deleted
    assert wait_until(lambda: _history(kubectl, ns) == ["3", "4"], timeout=15, interval=0.3), \
        kubectl.ok("rollout", "history", "sts/web", "-n", ns)
    live = sts_obj(kubectl, ns)["status"]["updateRevision"]
    assert _revisions(kubectl, ns)[live] == 4
    p = kubectl("rollout", "undo", "sts/web", "-n", ns, "--to-revision=1")
    assert p.returncode == 1, p.stdout
    assert "error: unable to find specified revision 1 in history" in p.stderr, p.stderr
    out = kubectl.ok("rollout", "undo", "sts/web", "-n", ns, "--to-revision=3")
    assert out.strip() == "statefulset.apps/web rolled back"
    _complete(kubectl, ns, 1)
    [p] = wait_pods_ready(kubectl, ns, ["web-0"]).values()
    assert image(p) == "nginx:1.26"
    assert wait_until(lambda: _history(kubectl, ns) == ["4", "5"], timeout=15, interval=0.3), \
        kubectl.ok("rollout", "history", "sts/web", "-n", ns)


def test_parallel_rolling_update_still_goes_one_pod_at_a_time(kubectl, ns):
    names = ["web-0", "web-1", "web-2"]
    apply_seed(kubectl, ns, seed_sts(replicas=3, podManagementPolicy="Parallel"))
    _complete(kubectl, ns, 3)
    old = {n: p["metadata"]["uid"] for n, p in wait_pods_ready(kubectl, ns, names).items()}
    w = watch_pods(kubectl, ns)
    try:
        assert w.read_until(lambda ln: ln.startswith("ADDED|web-2"), timeout=15)
        kubectl.ok("set", "image", "sts/web", "nginx=nginx:1.26", "-n", ns)
        _complete(kubectl, ns, 3)
        wait_pods_ready(kubectl, ns, names, not_uids=old)
        w.read_until(lambda ln: False, timeout=1.0)
    finally:
        text, _ = w.stop()
    events = parse_watch(text)

    def first(pred):
        return next(i for i, e in enumerate(events) if pred(e))
    for hi, lo in (("web-2", "web-1"), ("web-1", "web-0")):
        new_ready = first(lambda e: e["name"] == hi and e["uid"] != old[hi] and e["ready"])
        lo_deleting = first(lambda e: e["name"] == lo and e["deleting"])
        assert new_ready < lo_deleting, text
