"""The seed StatefulSet as a user of real kubectl sees it on `k1s up --simulated-nodes 3`.

Identity (names, hostnames, labels, claims bound to the same volumes across pod deletion),
OrderedReady creation and scale-down order, Parallel creation and start ordinals, the claim
retention policy, the three delete cascades, the controller's and scheduler's events, a pod
whose claim can never bind, and the API's refusals of invalid sets — each checked against
upstream's behaviour (shared/spec/k8s-semantics.md §1, §4; kubectl-wire.md).
"""

from __future__ import annotations

import json

import pytest

from e2e_util import lines, manifest, row, wait_until
from sim_cluster import (apply, apply_seed, claims, kubectl, ns, parse_watch, pods,  # noqa: F401
                         ready, rollout_status, seed_sts, sim_cluster, sts_obj, wait_pods_ready,
                         wait_sts, watch_pods)


def _added_order(events: list[dict], names: list[str], old: dict[str, str]) -> list[str]:
    """Names in the order their new incarnation (uid not in `old`) was first seen."""
    seen: list[str] = []
    for e in events:
        if e["name"] in names and e["uid"] != old.get(e["name"]) and e["name"] not in seen:
            seen.append(e["name"])
    return seen


def _ready_before_added(events: list[dict], first: str, second: str,
                        old: dict[str, str]) -> bool:
    """Whether the new `first` was seen Ready before the new `second` appeared at all."""
    first_ready = False
    for e in events:
        new = e["uid"] != old.get(e["name"])
        if e["name"] == first and new and e["ready"]:
            first_ready = True
        if e["name"] == second and new and e["event"] in ("ADDED", "MODIFIED"):
            return first_ready
    return False


def test_seed_pods_claims_and_identity(kubectl, ns):
    apply_seed(kubectl, ns)
    out = rollout_status(kubectl, ns)
    assert out.returncode == 0, out.stdout + out.stderr
    ps = wait_pods_ready(kubectl, ns, ["web-0", "web-1"])

    table = kubectl.ok("get", "pods", "-n", ns, "-l", "app=nginx")
    for name in ("web-0", "web-1"):
        r = row(table, name)
        assert (r["READY"], r["STATUS"]) == ("1/1", "Running"), table

    def bound():
        t = kubectl.ok("get", "pvc", "-n", ns, "-l", "app=nginx")
        return t if all(row(t, f"www-web-{i}")["STATUS"] == "Bound" for i in (0, 1)) else None
    table = wait_until(bound, timeout=20, interval=0.2)
    assert table, kubectl.ok("get", "pvc", "-n", ns)
    assert sorted(ln.split()[0] for ln in lines(table)[1:]) == ["www-web-0", "www-web-1"]
    for i in (0, 1):
        r = row(table, f"www-web-{i}")
        assert (r["CAPACITY"], r["ACCESS MODES"], r["STORAGECLASS"]) == ("1Gi", "RWO", "standard")
        assert r["VOLUME"].startswith("pvc-")

    st = sts_obj(kubectl, ns)
    for i in (0, 1):
        p = ps[f"web-{i}"]
        assert p["spec"]["hostname"] == f"web-{i}"
        assert p["spec"]["subdomain"] == "nginx"
        labels = p["metadata"]["labels"]
        assert labels["app"] == "nginx"
        assert labels["statefulset.kubernetes.io/pod-name"] == f"web-{i}"
        assert labels["apps.kubernetes.io/pod-index"] == str(i)
        assert labels["controller-revision-hash"] == st["status"]["updateRevision"]
        assert labels["controller-revision-hash"].startswith("web-")
        [ref] = p["metadata"]["ownerReferences"]
        assert (ref["kind"], ref["name"], ref["uid"], ref["controller"],
                ref["blockOwnerDeletion"]) == ("StatefulSet", "web", st["metadata"]["uid"],
                                               True, True)
        vols = {v["name"]: v for v in p["spec"]["volumes"]}
        assert vols["www"]["persistentVolumeClaim"]["claimName"] == f"www-web-{i}"
    # default Retain/Retain: the claims have no owners
    for c in claims(kubectl, ns).values():
        assert not c["metadata"].get("ownerReferences")

    r = row(kubectl.ok("get", "sts", "web", "-n", ns), "web")
    assert r["READY"] == "2/2"
    st = wait_sts(kubectl, ns, lambda o: o["status"].get("availableReplicas") == 2)
    rev = st["status"]["updateRevision"]
    assert st["status"] == {
        "observedGeneration": 1, "replicas": 2, "readyReplicas": 2, "currentReplicas": 2,
        "updatedReplicas": 2, "availableReplicas": 2, "currentRevision": rev,
        "updateRevision": rev, "collisionCount": 0}
    [cr] = kubectl.json("get", "controllerrevisions", "-n", ns)["items"]
    assert cr["metadata"]["name"] == rev and cr["revision"] == 1
    assert cr["metadata"]["labels"]["app"] == "nginx"
    assert rev == "web-" + cr["metadata"]["labels"]["controller.kubernetes.io/hash"]
    [ref] = cr["metadata"]["ownerReferences"]
    assert (ref["kind"], ref["uid"], ref["controller"]) == ("StatefulSet",
                                                             st["metadata"]["uid"], True)
    tpl = cr["data"]["spec"]["template"]
    assert tpl["$patch"] == "replace"
    assert tpl["spec"]["containers"][0]["image"] == "nginx:1.9.1"
    wide = row(kubectl.ok("get", "sts", "web", "-n", ns, "-o", "wide"), "web")
    assert (wide["CONTAINERS"], wide["IMAGES"]) == ("nginx", "nginx:1.9.1")


def test_describe_shows_controller_and_scheduler_events(kubectl, ns):
    apply_seed(kubectl, ns)
    assert rollout_status(kubectl, ns).returncode == 0
    want = [
        "create Claim www-web-0 Pod web-0 in StatefulSet web success",
        "create Pod web-0 in StatefulSet web successful",
        "create Claim www-web-1 Pod web-1 in StatefulSet web success",
        "create Pod web-1 in StatefulSet web successful",
    ]

    def described():
        out = kubectl.ok("describe", "sts", "web", "-n", ns)
        return out if all(w in out for w in want) else None
    out = wait_until(described, timeout=15, interval=0.3)
    assert out, kubectl.ok("describe", "sts", "web", "-n", ns)
    ev = [ln for ln in out.splitlines() if "SuccessfulCreate" in ln]
    assert all("Normal" in ln and "statefulset-controller" in ln for ln in ev), out
    # claims are created before their pod
    text = "\n".join(ev)
    assert text.index(want[0]) < text.index(want[1]) < text.index(want[3])
    for ln in ("Selector:               app=nginx", "Service Name:           nginx",
               "Pod Management Policy:  OrderedReady",
               "Replicas:               2 desired | 2 total",
               "Update Strategy:        RollingUpdate", "  Partition:            0",
               "  WhenDeleted:  Retain", "  WhenScaled:   Retain",
               "Pods Status:    2 Running / 0 Waiting / 0 Succeeded / 0 Failed"):
        assert ln in out.splitlines(), out
    scale = kubectl.json("get", "sts", "web", "-n", ns, "--subresource=scale")
    assert (scale["apiVersion"], scale["kind"]) == ("autoscaling/v1", "Scale")
    assert scale["spec"] == {"replicas": 2}
    assert scale["status"] == {"replicas": 2, "selector": "app=nginx"}
    pvc = kubectl.ok("describe", "pvc", "www-web-0", "-n", ns)
    assert "Used By:       web-0" in pvc.splitlines(), pvc

    node = pods(kubectl, ns)["web-0"]["spec"]["nodeName"]
    assert node.startswith("k1s-sim-")
    msg = f"Successfully assigned {ns}/web-0 to {node}"

    def pod_described():
        o = kubectl.ok("describe", "pod", "web-0", "-n", ns)
        return o if msg in o else None
    out = wait_until(pod_described, timeout=15, interval=0.3)
    assert out, kubectl.ok("describe", "pod", "web-0", "-n", ns)
    [ln] = [ln for ln in out.splitlines() if msg in ln]
    assert "Normal" in ln and "Scheduled" in ln and "default-scheduler" in ln


def test_deleted_pods_come_back_with_same_names_and_claims(kubectl, ns):
    apply_seed(kubectl, ns)
    assert rollout_status(kubectl, ns).returncode == 0
    before = wait_pods_ready(kubectl, ns, ["web-0", "web-1"])
    old_uids = {n: p["metadata"]["uid"] for n, p in before.items()}
    cl = wait_until(lambda: (lambda c: c if all(x.get("spec", {}).get("volumeName")
                                               for x in c.values()) else None)(claims(kubectl, ns)),
                    timeout=20, interval=0.2)
    assert cl and sorted(cl) == ["www-web-0", "www-web-1"]
    claim_ids = {n: (c["metadata"]["uid"], c["spec"]["volumeName"]) for n, c in cl.items()}

    w = watch_pods(kubectl, ns)
    try:
        assert w.read_until(lambda ln: ln.startswith("ADDED|web-1"), timeout=15)
        out = kubectl.ok("delete", "pod", "-n", ns, "-l", "app=nginx")
        assert 'pod "web-0" deleted' in out and 'pod "web-1" deleted' in out
        after = wait_pods_ready(kubectl, ns, ["web-0", "web-1"], not_uids=old_uids)
        # let the watch catch up with what the list showed
        w.read_until(lambda ln: False, timeout=1.0)
    finally:
        text, _ = w.stop()
    for n in ("web-0", "web-1"):
        assert after[n]["metadata"]["uid"] != old_uids[n]
        vols = {v["name"]: v for v in after[n]["spec"]["volumes"]}
        assert vols["www"]["persistentVolumeClaim"]["claimName"] == f"www-{n}"
    cl2 = claims(kubectl, ns)
    assert {n: (c["metadata"]["uid"], c["spec"]["volumeName"]) for n, c in cl2.items()} \
        == claim_ids
    events = parse_watch(text)
    # OrderedReady: the new web-0 is created, and Ready, before the new web-1 exists
    assert _added_order(events, ["web-0", "web-1"], old_uids) == ["web-0", "web-1"], text
    assert _ready_before_added(events, "web-0", "web-1", old_uids), text


def test_scale_up_in_order_down_from_highest_claims_retained(kubectl, ns):
    apply_seed(kubectl, ns)
    assert rollout_status(kubectl, ns).returncode == 0
    first = wait_pods_ready(kubectl, ns, ["web-0", "web-1"])
    old = {n: p["metadata"]["uid"] for n, p in first.items()}

    w = watch_pods(kubectl, ns)
    try:
        assert w.read_until(lambda ln: ln.startswith("ADDED|web-1"), timeout=15)
        assert kubectl.ok("scale", "sts", "web", "-n", ns, "--replicas=4").strip() == \
            "statefulset.apps/web scaled"
        wait_pods_ready(kubectl, ns, [f"web-{i}" for i in range(4)])
        claims4 = wait_until(lambda: (lambda c: c if len(c) == 4 else None)(claims(kubectl, ns)),
                             timeout=10, interval=0.2)
        assert claims4, kubectl.ok("get", "pvc", "-n", ns)
        ids = {n: c["metadata"]["uid"] for n, c in claims4.items()}

        assert kubectl.ok("scale", "sts", "web", "-n", ns, "--replicas=1").strip() == \
            "statefulset.apps/web scaled"
        wait_pods_ready(kubectl, ns, ["web-0"])
        w.read_until(lambda ln: ln.startswith("DELETED|web-1"), timeout=10)
    finally:
        text, _ = w.stop()
    events = parse_watch(text)
    assert _added_order(events, ["web-2", "web-3"], old) == ["web-2", "web-3"], text
    assert _ready_before_added(events, "web-2", "web-3", old), text
    deleted = [e["name"] for e in events if e["event"] == "DELETED"]
    assert deleted == ["web-3", "web-2", "web-1"], text
    # OrderedReady scale-down waits for each pod to be gone before deleting the next
    first_del = {}
    for i, e in enumerate(events):
        if e["deleting"] and e["name"] not in first_del:
            first_del[e["name"]] = i
    gone = {e["name"]: i for i, e in enumerate(events) if e["event"] == "DELETED"}
    assert gone["web-3"] < first_del["web-2"] and gone["web-2"] < first_del["web-1"], text

    # default whenScaled=Retain: every claim stays, and scale-up reuses them
    assert {n: c["metadata"]["uid"] for n, c in claims(kubectl, ns).items()} == ids
    kubectl.ok("scale", "sts", "web", "-n", ns, "--replicas=3")
    ps = wait_pods_ready(kubectl, ns, ["web-0", "web-1", "web-2"])
    assert {n: c["metadata"]["uid"] for n, c in claims(kubectl, ns).items()} == ids
    for n in ("web-1", "web-2"):
        vols = {v["name"]: v for v in ps[n]["spec"]["volumes"]}
        assert vols["www"]["persistentVolumeClaim"]["claimName"] == f"www-{n}"
    assert row(kubectl.ok("get", "sts", "web", "-n", ns), "web")["READY"] == "3/3"
    ev = kubectl.json("get", "events", "-n", ns, "--field-selector",
                      "involvedObject.kind=StatefulSet,reason=SuccessfulDelete")["items"]
    assert {e["message"] for e in ev} == {
        f"delete Pod web-{i} in StatefulSet web successful" for i in (1, 2, 3)}


def test_parallel_with_start_ordinal(kubectl, ns):
    # web-5's claim is made first, on a class that does not exist: web-5 can never run.
    # Parallel must create web-6 anyway (OrderedReady would wait for web-5 forever).
    kubectl.ok("apply", "-n", ns, "-f", manifest("sts-stuck-claim-web-5.yaml"))
    sts = seed_sts(replicas=2, podManagementPolicy="Parallel", ordinals={"start": 5})
    apply_seed(kubectl, ns, sts)

    def running6():
        ps = pods(kubectl, ns)
        return ps if "web-6" in ps and ready(ps["web-6"]) and "web-5" in ps else None
    ps = wait_until(running6, timeout=30, interval=0.2)
    assert ps, kubectl.ok("get", "pods", "-n", ns) + kubectl.ok("get", "events", "-n", ns)
    assert sorted(ps) == ["web-5", "web-6"]
    assert ps["web-5"]["status"]["phase"] == "Pending"
    assert ps["web-6"]["metadata"]["labels"]["apps.kubernetes.io/pod-index"] == "6"
    assert ps["web-6"]["spec"]["hostname"] == "web-6"
    cl = claims(kubectl, ns)
    assert sorted(cl) == ["www-web-5", "www-web-6"]
    assert cl["www-web-5"]["spec"]["storageClassName"] == "e2e-no-such-class"
    r = row(kubectl.ok("get", "sts", "web", "-n", ns), "web")
    assert r["READY"] == "1/2"

    # fix web-5's claim: the set fills up, still without any web-0
    kubectl.ok("delete", "pvc", "www-web-5", "-n", ns, "--wait=false")
    kubectl.ok("delete", "pod", "web-5", "-n", ns)
    wait_pods_ready(kubectl, ns, ["web-5", "web-6"])
    assert sorted(claims(kubectl, ns)) == ["www-web-5", "www-web-6"]


def test_retention_policy_delete_when_scaled_and_deleted(kubectl, ns):
    sts = seed_sts(replicas=3, persistentVolumeClaimRetentionPolicy={
        "whenScaled": "Delete", "whenDeleted": "Delete"})
    apply_seed(kubectl, ns, sts)
    assert rollout_status(kubectl, ns).returncode == 0
    wait_pods_ready(kubectl, ns, ["web-0", "web-1", "web-2"])
    uid = sts_obj(kubectl, ns)["metadata"]["uid"]

    def owned():
        cl = claims(kubectl, ns)
        ok = len(cl) == 3 and all(
            [r["uid"] for r in c["metadata"].get("ownerReferences", [])] == [uid]
            for c in cl.values())
        return cl if ok else None
    assert wait_until(owned, timeout=15, interval=0.2), json.dumps(
        {n: c["metadata"].get("ownerReferences") for n, c in claims(kubectl, ns).items()})

    kubectl.ok("scale", "sts", "web", "-n", ns, "--replicas=2")
    wait_pods_ready(kubectl, ns, ["web-0", "web-1"])
    gone = wait_until(lambda: sorted(claims(kubectl, ns)) == ["www-web-0", "www-web-1"],
                      timeout=20, interval=0.2)
    assert gone, kubectl.ok("get", "pvc", "-n", ns)

    # scaling back up makes a fresh claim for the ordinal whose claim was deleted
    old2 = {n: c["metadata"]["uid"] for n, c in claims(kubectl, ns).items()}
    kubectl.ok("scale", "sts", "web", "-n", ns, "--replicas=3")
    wait_pods_ready(kubectl, ns, ["web-0", "web-1", "web-2"])
    cl = claims(kubectl, ns)
    assert sorted(cl) == ["www-web-0", "www-web-1", "www-web-2"]
    assert {n: cl[n]["metadata"]["uid"] for n in old2} == old2
    assert wait_until(owned, timeout=15, interval=0.2)

    kubectl.ok("delete", "sts", "web", "-n", ns)
    assert wait_until(lambda: not claims(kubectl, ns) and not pods(kubectl, ns),
                      timeout=30, interval=0.2), kubectl.ok("get", "pods,pvc", "-n", ns)


def test_retention_policy_retain_keeps_claims_on_delete(kubectl, ns):
    apply_seed(kubectl, ns, seed_sts(replicas=2))
    assert rollout_status(kubectl, ns).returncode == 0
    ids = {n: c["metadata"]["uid"] for n, c in wait_until(
        lambda: (lambda c: c if len(c) == 2 else None)(claims(kubectl, ns)),
        timeout=10, interval=0.2).items()}
    out = kubectl.ok("delete", "sts", "web", "-n", ns)
    assert out.strip() == f'statefulset.apps "web" deleted from {ns} namespace'
    assert wait_until(lambda: not pods(kubectl, ns), timeout=30, interval=0.2)
    # the GC removes the revisions too; the claims and the Service stay
    assert wait_until(lambda: not kubectl.json("get", "controllerrevisions", "-n", ns)["items"],
                      timeout=20, interval=0.2)
    assert {n: c["metadata"]["uid"] for n, c in claims(kubectl, ns).items()} == ids
    kubectl.ok("get", "svc", "nginx", "-n", ns)

    # a new set of the same name finds its claims again
    apply_seed(kubectl, ns, seed_sts(replicas=2))
    assert rollout_status(kubectl, ns).returncode == 0
    wait_pods_ready(kubectl, ns, ["web-0", "web-1"])
    assert {n: c["metadata"]["uid"] for n, c in claims(kubectl, ns).items()} == ids


def test_delete_cascade_orphan_then_adopted(kubectl, ns):
    apply_seed(kubectl, ns)
    assert rollout_status(kubectl, ns).returncode == 0
    before = wait_pods_ready(kubectl, ns, ["web-0", "web-1"])
    uids = {n: p["metadata"]["uid"] for n, p in before.items()}

    kubectl.ok("delete", "sts", "web", "-n", ns, "--cascade=orphan")
    assert kubectl("get", "sts", "web", "-n", ns).returncode == 1

    def orphaned():
        ps = pods(kubectl, ns)
        return ps if sorted(ps) == ["web-0", "web-1"] and all(
            not p["metadata"].get("ownerReferences") for p in ps.values()) else None
    ps = wait_until(orphaned, timeout=20, interval=0.2)
    assert ps, json.dumps({n: p["metadata"].get("ownerReferences")
                           for n, p in pods(kubectl, ns).items()})
    assert {n: p["metadata"]["uid"] for n, p in ps.items()} == uids
    assert all(ready(p) for p in ps.values())
    crs = kubectl.json("get", "controllerrevisions", "-n", ns)["items"]
    assert crs and all(not c["metadata"].get("ownerReferences") for c in crs)

    # a new set with the same name and selector adopts the running pods instead of replacing
    apply_seed(kubectl, ns)
    new_uid = sts_obj(kubectl, ns)["metadata"]["uid"]

    def adopted():
        ps = pods(kubectl, ns)
        return ps if sorted(ps) == ["web-0", "web-1"] and all(
            [r["uid"] for r in p["metadata"].get("ownerReferences", [])] == [new_uid]
            for p in ps.values()) else None
    ps = wait_until(adopted, timeout=20, interval=0.2)
    assert ps, json.dumps({n: p["metadata"].get("ownerReferences")
                           for n, p in pods(kubectl, ns).items()})
    assert {n: p["metadata"]["uid"] for n, p in ps.items()} == uids
    wait_sts(kubectl, ns, lambda o: o["status"].get("readyReplicas") == 2)


def test_delete_cascade_foreground_waits_for_pods(kubectl, ns):
    apply_seed(kubectl, ns)
    assert rollout_status(kubectl, ns).returncode == 0
    wait_pods_ready(kubectl, ns, ["web-0", "web-1"])
    # a finalizer of our own holds web-1 so the foreground deletion has to wait for it
    kubectl.ok("patch", "pod", "web-1", "-n", ns, "--type=merge",
               "-p", '{"metadata":{"finalizers":["e2e.k1s.io/hold"]}}')
    try:
        kubectl.ok("delete", "sts", "web", "-n", ns, "--cascade=foreground", "--wait=false")

        def web0_gone_web1_terminating():
            ps = pods(kubectl, ns)
            return ps if list(ps) == ["web-1"] and ps["web-1"]["metadata"].get(
                "deletionTimestamp") else None
        assert wait_until(web0_gone_web1_terminating, timeout=30, interval=0.2), \
            kubectl.ok("get", "pods", "-n", ns)
        o = sts_obj(kubectl, ns)
        assert o["metadata"].get("deletionTimestamp")
        assert "foregroundDeletion" in o["metadata"].get("finalizers", [])
        # while the set is being deleted the controller does not bring web-0 back
        assert "web-0" not in pods(kubectl, ns)
    finally:
        kubectl("patch", "pod", "web-1", "-n", ns, "--type=merge",
                "-p", '{"metadata":{"finalizers":null}}')
    w = kubectl("wait", "--for=delete", "sts/web", "-n", ns, "--timeout=30s", timeout=60)
    assert w.returncode == 0 or "not found" in w.stderr, w.stdout + w.stderr
    assert wait_until(lambda: not pods(kubectl, ns), timeout=20, interval=0.2)


def test_delete_cascade_background_removes_pods(kubectl, ns):
    apply_seed(kubectl, ns)
    assert rollout_status(kubectl, ns).returncode == 0
    wait_pods_ready(kubectl, ns, ["web-0", "web-1"])
    out = kubectl.ok("delete", "sts", "web", "-n", ns, "--cascade=background")
    assert out.strip() == f'statefulset.apps "web" deleted from {ns} namespace'
    assert kubectl("get", "sts", "web", "-n", ns).returncode == 1
    assert wait_until(lambda: not pods(kubectl, ns), timeout=30, interval=0.2), \
        kubectl.ok("get", "pods", "-n", ns)
    assert sorted(claims(kubectl, ns)) == ["www-web-0", "www-web-1"]


def test_unsatisfiable_claim_leaves_pod_pending_with_reason(kubectl, ns):
    kubectl.ok("apply", "-n", ns, "-f", manifest("sts-missing-class.yaml"))

    def failed():
        ev = kubectl.json("get", "events", "-n", ns,
                          "--field-selector", "involvedObject.name=web-0")["items"]
        return [e for e in ev if e["reason"] == "FailedScheduling"] or None
    ev = wait_until(failed, timeout=30, interval=0.3)
    assert ev, kubectl.ok("get", "events", "-n", ns)
    assert ev[0]["type"] == "Warning"
    assert ev[0]["message"].startswith(
        "0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims.")

    ps = pods(kubectl, ns)
    assert list(ps) == ["web-0"]          # OrderedReady: web-1 waits for web-0
    assert ps["web-0"]["status"]["phase"] == "Pending"
    assert not ps["web-0"]["spec"].get("nodeName")
    r = row(kubectl.ok("get", "pods", "-n", ns), "web-0")
    assert (r["READY"], r["STATUS"]) == ("0/1", "Pending")
    out = kubectl.ok("describe", "pod", "web-0", "-n", ns)
    assert "FailedScheduling" in out and "pod has unbound immediate PersistentVolumeClaims" in out
    r = row(kubectl.ok("get", "pvc", "-n", ns), "www-web-0")
    assert (r["STATUS"], r["STORAGECLASS"]) == ("Pending", "e2e-no-such-class")
    # the claim says why it stays Pending
    why = 'storageclass.storage.k8s.io "e2e-no-such-class" not found'
    out = wait_until(lambda: (lambda o: o if why in o else None)(
        kubectl.ok("describe", "pvc", "www-web-0", "-n", ns)), timeout=30, interval=0.5)
    assert out, kubectl.ok("describe", "pvc", "www-web-0", "-n", ns)
    assert "ProvisioningFailed" in out
    assert row(kubectl.ok("get", "sts", "web", "-n", ns), "web")["READY"] == "0/2"


def test_invalid_selector_refused_with_upstream_text(kubectl, ns):
    p = kubectl("apply", "-n", ns, "-f", manifest("sts-bad-selector.yaml"))
    assert p.returncode == 1
    assert p.stderr.strip() == (
        'The StatefulSet "bad" is invalid: spec.template.metadata.labels: Invalid value: '
        '{"app":"other"}: `selector` does not match template `labels`')
    assert kubectl("get", "sts", "bad", "-n", ns).returncode == 1


FORBIDDEN = ("spec: Forbidden: updates to statefulset spec for fields other than 'replicas', "
             "'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', "
             "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden")


def test_immutable_fields_refused_with_upstream_text(kubectl, ns):
    apply_seed(kubectl, ns, seed_sts(replicas=1))
    changed = seed_sts(replicas=1, serviceName="other")
    p = kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(changed))
    assert p.returncode == 1
    assert 'The StatefulSet "web" is invalid: ' + FORBIDDEN in p.stderr, p.stderr

    bigger = seed_sts(replicas=1)
    bigger["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] = "2Gi"
    p = kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(bigger))
    assert p.returncode == 1
    assert FORBIDDEN in p.stderr, p.stderr

    p = kubectl("patch", "sts", "web", "-n", ns, "--type=merge",
                "-p", '{"spec":{"podManagementPolicy":"Parallel"}}')
    assert p.returncode == 1
    assert p.stderr.strip() == 'The StatefulSet "web" is invalid: ' + FORBIDDEN
    o = sts_obj(kubectl, ns)
    assert (o["spec"]["serviceName"], o["spec"]["podManagementPolicy"]) == \
        ("nginx", "OrderedReady")


def test_parallel_set_spreads_and_pods_follow_their_local_volumes(kubectl, ns):
    # the default class is WaitForFirstConsumer on node-local volumes: each claim is provisioned
    # on the node its first pod was scheduled to, and a recreated pod must go back there
    names = [f"web-{i}" for i in range(9)]
    apply_seed(kubectl, ns, seed_sts(replicas=9, podManagementPolicy="Parallel"))
    ps = wait_pods_ready(kubectl, ns, names)
    assert {p["spec"]["nodeName"] for p in ps.values()} == {"k1s-sim-0", "k1s-sim-1",
                                                            "k1s-sim-2"}
    cl = wait_until(lambda: (lambda c: c if len(c) == 9 and all(
        x["status"].get("phase") == "Bound" for x in c.values()) else None)(claims(kubectl, ns)),
        timeout=20, interval=0.2)
    assert cl, kubectl.ok("get", "pvc", "-n", ns)
    where = {}
    for n, p in ps.items():
        c = cl[f"www-{n}"]
        node = p["spec"]["nodeName"]
        assert c["metadata"]["annotations"]["volume.kubernetes.io/selected-node"] == node
        pv = kubectl.json("get", "pv", c["spec"]["volumeName"])
        terms = pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"]
        assert [e["values"] for t in terms for e in t["matchExpressions"]] == [[node]]
        where[n] = node

    old = {n: p["metadata"]["uid"] for n, p in ps.items()}
    kubectl.ok("delete", "pod", "-n", ns, "-l", "app=nginx", "--wait=false")
    ps = wait_pods_ready(kubectl, ns, names, not_uids=old, timeout=60)
    assert {n: p["spec"]["nodeName"] for n, p in ps.items()} == where
    assert {n: c["metadata"]["uid"] for n, c in claims(kubectl, ns).items()} == \
        {n: c["metadata"]["uid"] for n, c in cl.items()}


def test_orphan_delete_keeps_claims_owned_for_when_deleted(kubectl, ns):
    # whenDeleted=Delete makes the claims dependents of the set: an orphaning delete orphans
    # them too, so they survive with the set's ownerReference removed
    apply_seed(kubectl, ns, seed_sts(replicas=2, persistentVolumeClaimRetentionPolicy={
        "whenScaled": "Retain", "whenDeleted": "Delete"}))
    assert rollout_status(kubectl, ns).returncode == 0
    uid = sts_obj(kubectl, ns)["metadata"]["uid"]
    assert wait_until(lambda: (lambda c: len(c) == 2 and all(
        [r["uid"] for r in x["metadata"].get("ownerReferences", [])] == [uid]
        for x in c.values()))(claims(kubectl, ns)), timeout=15, interval=0.2)
    kubectl.ok("delete", "sts", "web", "-n", ns, "--cascade=orphan")
    assert wait_until(lambda: (lambda c: sorted(c) == ["www-web-0", "www-web-1"] and all(
        not x["metadata"].get("ownerReferences") for x in c.values()))(claims(kubectl, ns)),
        timeout=15, interval=0.2), json.dumps(
            {n: c["metadata"].get("ownerReferences") for n, c in claims(kubectl, ns).items()})
    assert sorted(pods(kubectl, ns)) == ["web-0", "web-1"]


def _invalid(kubectl, ns: str, sts: dict) -> str:
    p = kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(sts))
    assert p.returncode == 1, p.stdout
    return p.stderr.strip()


def test_invalid_specs_refused_naming_the_field(kubectl, ns):
    pre = 'The StatefulSet "web" is invalid: '
    cases = [
        (seed_sts(replicas=-1), "spec.replicas: Invalid value: -1: must be greater than or "
                                "equal to 0"),
        (seed_sts(podManagementPolicy="Random"), 'spec.podManagementPolicy: Invalid value: '
                                                 '"Random": must be \'OrderedReady\' or '
                                                 '\'Parallel\''),
        (seed_sts(ordinals={"start": -1}), "spec.ordinals.start: Invalid value: -1: must be "
                                           "greater than or equal to 0"),
        (seed_sts(updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": -1}}),
         "spec.updateStrategy.rollingUpdate.partition: Invalid value: -1: must be greater than "
         "or equal to 0"),
        (seed_sts(persistentVolumeClaimRetentionPolicy={"whenDeleted": "Keep"}),
         'spec.persistentVolumeClaimRetentionPolicy.whenDeleted: Unsupported value: "Keep": '
         'supported values: "Retain", "Delete"'),
    ]
    never = seed_sts()
    never["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    cases.append((never, 'spec.template.spec.restartPolicy: Unsupported value: "Never": '
                         'supported values: "Always"'))
    deadline = seed_sts()
    deadline["spec"]["template"]["spec"]["activeDeadlineSeconds"] = 10
    cases.append((deadline, "spec.template.spec.activeDeadlineSeconds: Forbidden: "
                            "activeDeadlineSeconds in StatefulSet is not Supported"))
    for sts, want in cases:
        assert _invalid(kubectl, ns, sts) == pre + want
    # the name must be a DNS label (apimachinery's IsDNS1123Label wording)
    dotted = seed_sts()
    dotted["metadata"]["name"] = "web.x"
    assert _invalid(kubectl, ns, dotted) == ('The StatefulSet "web.x" is invalid: metadata.name:'
                                             ' Invalid value: "web.x": must not contain dots')
    upper = seed_sts()
    upper["metadata"]["name"] = "Web"
    err = _invalid(kubectl, ns, upper)
    assert err.startswith('The StatefulSet "Web" is invalid: metadata.name: Invalid value: '
                          '"Web": a lowercase RFC 1123 label must consist of lower case '
                          "alphanumeric characters or '-'"), err
    assert kubectl.json("get", "sts", "-n", ns)["items"] == []


def _hold_and_delete(kubectl, ns: str, pod: str) -> str:
    """Put a finalizer of ours on `pod`, delete it without waiting; return its uid."""
    uid = pods(kubectl, ns)[pod]["metadata"]["uid"]
    kubectl.ok("patch", "pod", pod, "-n", ns, "--type=merge",
               "-p", '{"metadata":{"finalizers":["e2e.k1s.io/hold"]}}')
    kubectl.ok("delete", "pod", pod, "-n", ns, "--wait=false")
    assert pods(kubectl, ns)[pod]["metadata"].get("deletionTimestamp")
    return uid


def _release(kubectl, ns: str, pod: str) -> None:
    kubectl("patch", "pod", pod, "-n", ns, "--type=merge",
            "-p", '{"metadata":{"finalizers":null}}')


def test_terminating_pod_is_not_replaced_until_gone(kubectl, ns):
    apply_seed(kubectl, ns)
    assert rollout_status(kubectl, ns).returncode == 0
    wait_pods_ready(kubectl, ns, ["web-0", "web-1"])
    old = _hold_and_delete(kubectl, ns, "web-1")
    try:
        # at most one web-1: while the old one exists (Terminating) it is neither
        # force-removed nor replaced
        replaced = wait_until(lambda: pods(kubectl, ns).get("web-1", {}).get(
            "metadata", {}).get("uid") != old, timeout=3, interval=0.3)
        assert not replaced, kubectl.ok("get", "pods", "-n", ns)
        # its containers have stopped (the node wrote the terminal status, as kubelet >= 1.27
        # does), so kubectl prints Completed rather than Terminating for the held pod
        assert row(kubectl.ok("get", "pods", "-n", ns), "web-1")["STATUS"] == "Completed"
    finally:
        _release(kubectl, ns, "web-1")
    wait_pods_ready(kubectl, ns, ["web-0", "web-1"], not_uids={"web-1": old})


def test_killed_pod_held_by_finalizer_reports_terminal_status(kubectl, ns):
    apply_seed(kubectl, ns)
    assert rollout_status(kubectl, ns).returncode == 0
    wait_pods_ready(kubectl, ns, ["web-0", "web-1"])
    _hold_and_delete(kubectl, ns, "web-1")
    try:
        def terminal():
            p = pods(kubectl, ns)["web-1"]
            st = p.get("status", {})
            return (st.get("phase") in ("Failed", "Succeeded") and not ready(p)
                    and all("terminated" in c.get("state", {})
                            for c in st.get("containerStatuses", [])))
        assert wait_until(terminal, timeout=6, interval=0.3), json.dumps(
            pods(kubectl, ns)["web-1"]["status"])
        assert row(kubectl.ok("get", "pods", "-n", ns), "web-1")["READY"] == "0/1"
        wait_sts(kubectl, ns, lambda o: o["status"].get("readyReplicas") == 1, timeout=10)
    finally:
        _release(kubectl, ns, "web-1")


def test_unowned_pod_with_ordinal_out_of_range_is_adopted_and_removed(kubectl, ns):
    apply_seed(kubectl, ns)
    assert rollout_status(kubectl, ns).returncode == 0
    wait_pods_ready(kubectl, ns, ["web-0", "web-1"])
    stray = {"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": "web-7", "labels": {"app": "nginx"}},
             "spec": {"containers": [{"name": "nginx", "image": "nginx:1.9.1"}]}}
    # a pod with a name the set cannot own is left alone
    other = {"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": "web-x", "labels": {"app": "nginx"}},
             "spec": {"containers": [{"name": "nginx", "image": "nginx:1.9.1"}]}}
    apply(kubectl, ns, stray, other)
    assert wait_until(lambda: "web-7" not in pods(kubectl, ns), timeout=30, interval=0.2), \
        kubectl.ok("get", "pods", "-n", ns)
    ev = kubectl.json("get", "events", "-n", ns, "--field-selector",
                      "involvedObject.kind=StatefulSet,reason=SuccessfulDelete")["items"]
    assert [e["message"] for e in ev] == ["delete Pod web-7 in StatefulSet web successful"]
    ps = pods(kubectl, ns)
    assert sorted(ps) == ["web-0", "web-1", "web-x"]
    assert not ps["web-x"]["metadata"].get("ownerReferences")
    assert row(kubectl.ok("get", "sts", "web", "-n", ns), "web")["READY"] == "2/2"


def test_min_ready_seconds_gates_the_next_ordinal(kubectl, ns):
    apply_seed(kubectl, ns, seed_sts(replicas=2, minReadySeconds=2))
    seen_available_lag = False
    saw_web1 = False

    def step():
        nonlocal seen_available_lag, saw_web1
        ps = pods(kubectl, ns)          # pods first, then the set: availability only grows
        st = sts_obj(kubectl, ns).get("status", {})
        if "web-1" in ps:
            saw_web1 = True
            # OrderedReady: web-1 is created only once web-0 has been Ready for 2 s
            assert st.get("availableReplicas", 0) >= 1, (sorted(ps), st)
        if st.get("readyReplicas", 0) > st.get("availableReplicas", 0):
            seen_available_lag = True
        return st.get("availableReplicas") == 2
    assert wait_until(step, timeout=40, interval=0.2), sts_obj(kubectl, ns).get("status")
    assert saw_web1 and seen_available_lag
    assert row(kubectl.ok("get", "sts", "web", "-n", ns), "web")["READY"] == "2/2"


def test_failed_pod_is_deleted_and_recreated(kubectl, ns):
    apply_seed(kubectl, ns)
    assert rollout_status(kubectl, ns).returncode == 0
    old = wait_pods_ready(kubectl, ns, ["web-0", "web-1"])["web-1"]["metadata"]["uid"]
    kubectl.ok("patch", "pod", "web-1", "-n", ns, "--subresource=status", "--type=merge",
               "-p", '{"status":{"phase":"Failed"}}')
    ps = wait_pods_ready(kubectl, ns, ["web-0", "web-1"], not_uids={"web-1": old})
    vols = {v["name"]: v for v in ps["web-1"]["spec"]["volumes"]}
    assert vols["www"]["persistentVolumeClaim"]["claimName"] == "www-web-1"
    ev = kubectl.json("get", "events", "-n", ns, "--field-selector",
                      "involvedObject.kind=StatefulSet,reason=SuccessfulDelete")["items"]
    assert [e["message"] for e in ev] == ["delete Pod web-1 in StatefulSet web successful"]


def test_relabelled_pod_is_released_and_readopted(kubectl, ns):
    apply_seed(kubectl, ns)
    assert rollout_status(kubectl, ns).returncode == 0
    uid = wait_pods_ready(kubectl, ns, ["web-0", "web-1"])["web-0"]["metadata"]["uid"]
    kubectl.ok("label", "pod", "web-0", "-n", ns, "app=other", "--overwrite")

    def released():
        p = kubectl.json("get", "pod", "web-0", "-n", ns)
        return not p["metadata"].get("ownerReferences")
    assert wait_until(released, timeout=20, interval=0.2)
    # the name is taken by the released pod: the set cannot make another web-0
    wait_sts(kubectl, ns, lambda o: o["status"].get("readyReplicas") == 1)
    assert row(kubectl.ok("get", "sts", "web", "-n", ns), "web")["READY"] == "1/2"
    assert kubectl.json("get", "pod", "web-0", "-n", ns)["metadata"]["uid"] == uid

    kubectl.ok("label", "pod", "web-0", "-n", ns, "app=nginx", "--overwrite")
    sts_uid = sts_obj(kubectl, ns)["metadata"]["uid"]
    assert wait_until(lambda: [r["uid"] for r in kubectl.json("get", "pod", "web-0", "-n", ns)[
        "metadata"].get("ownerReferences", [])] == [sts_uid], timeout=20, interval=0.2)
    wait_sts(kubectl, ns, lambda o: o["status"].get("readyReplicas") == 2)
    assert pods(kubectl, ns)["web-0"]["metadata"]["uid"] == uid


def test_parallel_scale_down_does_not_wait_and_ordered_does(kubectl, ns):
    # web-2 is held Terminating by our finalizer. Parallel deletes web-1 anyway; OrderedReady
    # (the second set, in the same namespace under another selector) waits for web-2 to go.
    par = seed_sts(replicas=3, podManagementPolicy="Parallel")
    apply_seed(kubectl, ns, par)
    wait_pods_ready(kubectl, ns, ["web-0", "web-1", "web-2"])
    _hold(kubectl, ns, "web-2")
    try:
        kubectl.ok("scale", "sts", "web", "-n", ns, "--replicas=1")
        assert wait_until(lambda: sorted(pods(kubectl, ns)) == ["web-0", "web-2"],
                          timeout=20, interval=0.2), kubectl.ok("get", "pods", "-n", ns)
        assert pods(kubectl, ns)["web-2"]["metadata"].get("deletionTimestamp")
    finally:
        _release(kubectl, ns, "web-2")
    wait_pods_ready(kubectl, ns, ["web-0"])

    ordered = seed_sts(replicas=3)
    ordered["metadata"]["name"] = "db"
    ordered["spec"]["selector"] = {"matchLabels": {"app": "db"}}
    ordered["spec"]["template"]["metadata"]["labels"] = {"app": "db"}
    apply(kubectl, ns, ordered)
    assert rollout_status(kubectl, ns, "db").returncode == 0

    def db_pods():
        return pods(kubectl, ns, "app=db")
    _hold(kubectl, ns, "db-2")
    try:
        kubectl.ok("scale", "sts", "db", "-n", ns, "--replicas=1")
        # the controller deletes the highest first, then waits for it to be gone
        assert wait_until(lambda: db_pods()["db-2"]["metadata"].get("deletionTimestamp"),
                          timeout=20, interval=0.2), kubectl.ok("get", "pods", "-n", ns)
        gone = wait_until(lambda: "db-1" not in db_pods() or db_pods()["db-1"]["metadata"].get(
            "deletionTimestamp"), timeout=3, interval=0.3)
        assert not gone, kubectl.ok("get", "pods", "-n", ns)
    finally:
        _release(kubectl, ns, "db-2")
    assert wait_until(lambda: sorted(db_pods()) == ["db-0"], timeout=30, interval=0.2), \
        kubectl.ok("get", "pods", "-n", ns)


def _hold(kubectl, ns: str, pod: str) -> None:
    """A finalizer of ours on `pod`, so that a deletion by the controller leaves it Terminating."""
    kubectl.ok("patch", "pod", pod, "-n", ns, "--type=merge",
               "-p", '{"metadata":{"finalizers":["e2e.k1s.io/hold"]}}')


def test_pod_not_recreated_while_its_claim_is_being_deleted(kubectl, ns):
    apply_seed(kubectl, ns, seed_sts(replicas=1))
    assert rollout_status(kubectl, ns).returncode == 0
    pod_uid = wait_pods_ready(kubectl, ns, ["web-0"])["web-0"]["metadata"]["uid"]
    claim_uid = claims(kubectl, ns)["www-web-0"]["metadata"]["uid"]
    hold = '{"metadata":{"finalizers":["kubernetes.io/pvc-protection","e2e.k1s.io/hold"]}}'
    kubectl.ok("patch", "pvc", "www-web-0", "-n", ns, "--type=merge", "-p", hold)
    try:
        kubectl.ok("delete", "pvc", "www-web-0", "-n", ns, "--wait=false")
        kubectl.ok("delete", "pod", "web-0", "-n", ns)
        want = ("create Pod web-0 in StatefulSet web failed error: "
                "pvc www-web-0 is being deleted")

        def failed():
            ev = kubectl.json("get", "events", "-n", ns, "--field-selector",
                              "involvedObject.kind=StatefulSet,reason=FailedCreate")["items"]
            return [e for e in ev if e["message"] == want]
        ev = wait_until(failed, timeout=20, interval=0.3)
        assert ev, kubectl.ok("get", "events", "-n", ns)
        assert ev[0]["type"] == "Warning"
        assert "web-0" not in pods(kubectl, ns)
    finally:
        kubectl("patch", "pvc", "www-web-0", "-n", ns, "--type=merge",
                "-p", '{"metadata":{"finalizers":null}}')
    ps = wait_pods_ready(kubectl, ns, ["web-0"], not_uids={"web-0": pod_uid})
    new = wait_until(lambda: (lambda c: c.get("www-web-0") if c.get("www-web-0", {}).get(
        "metadata", {}).get("uid") not in (None, claim_uid) else None)(claims(kubectl, ns)),
        timeout=20, interval=0.2)
    assert new, kubectl.ok("get", "pvc", "-n", ns)
    vols = {v["name"]: v for v in ps["web-0"]["spec"]["volumes"]}
    assert vols["www"]["persistentVolumeClaim"]["claimName"] == "www-web-0"
