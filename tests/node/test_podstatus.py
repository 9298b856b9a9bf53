"""The node's pure pod decisions: status objects per stage in upstream's shapes
(podstatus), the FailedMount message (podplan.volume_problem), and the plan rules (podplan),
as tables and as a property over generated event sequences."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from k1s.node import podplan, podstatus
from k1s.node.podplan import (Event, FinishDelete, PodView, Requeue, Start, Stop, WriteStatus,
                              plan_pod)

NOW = "2026-01-02T03:04:05Z"
LATER = "2026-01-02T03:09:05Z"
T0 = podplan.parse_time(NOW)


def pod(**over):
    p = {"apiVersion": "v1", "kind": "Pod",
         "metadata": {"name": "web-0", "namespace": "ns", "uid": "u-1"},
         "spec": {"nodeName": "k1s-sim-0",
                  "containers": [{"name": "app", "image": "nginx:1.27"},
                                 {"name": "log", "image": "quay.io/prom/node-exporter"}]},
         "status": {"phase": "Pending", "qosClass": "BestEffort"}}
    for k, v in over.items():
        p[k] = dict(p.get(k) or {}, **v)
    return p


def conds(status):
    return {c["type"]: c for c in status["conditions"]}


# -- names ------------------------------------------------------------------------------------
@pytest.mark.parametrize("image,ref", [
    ("nginx", "docker.io/library/nginx:latest"),
    ("nginx:1.27", "docker.io/library/nginx:1.27"),
    ("bitnami/redis", "docker.io/bitnami/redis:latest"),
    ("quay.io/prom/node-exporter", "quay.io/prom/node-exporter:latest"),
    ("localhost:5000/app:v1", "localhost:5000/app:v1"),
    ("registry.k8s.io/pause@sha256:" + "a" * 64, "registry.k8s.io/pause@sha256:" + "a" * 64),
])
def test_normalize_image(image, ref):
    assert podstatus.normalize_image(image) == ref
    iid = podstatus.image_id(image)
    assert "@sha256:" in iid and len(iid.rsplit(":", 1)[1]) == 64
    assert iid.split("@")[0] == ref.split("@")[0].rsplit(":", 1)[0] or "@" in ref


# -- stages -----------------------------------------------------------------------------------
def test_creating_shape():
    s = podstatus.creating(pod(), "10.0.0.2", NOW)
    assert s["phase"] == "Pending"
    assert s["hostIP"] == "10.0.0.2" and s["hostIPs"] == [{"ip": "10.0.0.2"}]
    assert s["startTime"] == NOW and s["qosClass"] == "BestEffort"
    assert [c["type"] for c in s["conditions"]] == list(podstatus.CONDITION_ORDER)
    c = conds(s)
    assert c["PodReadyToStartContainers"]["status"] == "False"
    assert c["Initialized"]["status"] == "True"
    for t in ("Ready", "ContainersReady"):
        assert c[t]["status"] == "False" and c[t]["reason"] == "ContainersNotReady"
        assert c[t]["message"] == "containers with unready status: [app log]"
    assert c["PodScheduled"]["status"] == "True"
    app = s["containerStatuses"][0]
    assert app == {"name": "app", "image": "docker.io/library/nginx:1.27", "imageID": "",
                   "lastState": {}, "ready": False, "restartCount": 0, "started": False,
                   "state": {"waiting": {"reason": "ContainerCreating"}}}
    assert "podIP" not in s


def test_creating_behind_init_containers():
    p = pod(spec={"initContainers": [{"name": "setup", "image": "busybox"}]})
    s = podstatus.creating(p, "10.0.0.2", NOW)
    c = conds(s)
    assert c["Initialized"] == {"type": "Initialized", "status": "False",
                                "reason": "ContainersNotInitialized",
                                "message": "containers with incomplete status: [setup]",
                                "lastTransitionTime": NOW}
    assert s["initContainerStatuses"][0]["state"] == {"waiting": {"reason": "PodInitializing"}}
    assert s["containerStatuses"][0]["state"] == {"waiting": {"reason": "PodInitializing"}}


def test_running_shape_and_kept_times():
    creating = pod(status=podstatus.creating(pod(), "10.0.0.2", NOW))
    s = podstatus.running(creating, "10.0.0.2", "10.244.0.7", LATER)
    assert s["phase"] == "Running"
    assert s["podIP"] == "10.244.0.7" and s["podIPs"] == [{"ip": "10.244.0.7"}]
    assert s["startTime"] == NOW                       # kept from the first status
    c = conds(s)
    assert all(x["status"] == "True" for x in c.values())
    assert c["Initialized"]["lastTransitionTime"] == NOW   # unchanged status: time kept
    assert c["Ready"]["lastTransitionTime"] == LATER
    assert "reason" not in c["Ready"]
    app = s["containerStatuses"][0]
    assert app["ready"] is True and app["started"] is True and app["restartCount"] == 0
    assert app["state"] == {"running": {"startedAt": LATER}}
    assert app["containerID"] == podstatus.container_id(creating, "app")
    assert app["containerID"].startswith("containerd://") and len(app["containerID"]) == 77
    assert app["imageID"].startswith("docker.io/library/nginx@sha256:")
    # building it again later changes nothing: the writer skips the write
    again = podstatus.running(pod(status=s), "10.0.0.2", "10.244.0.7", "2026-02-01T00:00:00Z")
    assert podstatus.same(s, again)


def test_running_with_init_and_sidecar_and_host_network():
    p = pod(spec={"hostNetwork": True,
                  "initContainers": [{"name": "setup", "image": "busybox"},
                                     {"name": "proxy", "image": "envoy", "restartPolicy": "Always"}]})
    s = podstatus.running(p, "10.0.0.2", "10.244.0.9", NOW)
    assert s["podIP"] == "10.0.0.2"                    # host network: the node's address
    setup, proxy = s["initContainerStatuses"]
    assert setup["state"]["terminated"]["reason"] == "Completed"
    assert setup["state"]["terminated"]["exitCode"] == 0 and setup["started"] is False
    assert proxy["state"] == {"running": {"startedAt": NOW}} and proxy["started"] is True


def test_scheduler_condition_and_foreign_conditions_are_kept():
    sched = {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2020-01-01T00:00:00Z"}
    gate = {"type": "example.com/gate", "status": "False", "lastTransitionTime": NOW}
    s = podstatus.running(pod(status={"conditions": [sched, gate]}), "h", "p", LATER)
    assert conds(s)["PodScheduled"] == sched
    assert conds(s)["example.com/gate"] == gate


@pytest.mark.parametrize("ready,expect_write", [("True", True), ("False", False), (None, False)])
def test_not_ready(ready, expect_write):
    status = {"phase": "Running", "conditions": [
        {"type": "ContainersReady", "status": "True", "lastTransitionTime": NOW}]}
    if ready:
        status["conditions"].append({"type": "Ready", "status": ready, "lastTransitionTime": NOW})
    got = podstatus.not_ready(pod(status=status), LATER)
    if not expect_write:
        assert got is None
        return
    c = conds(got)
    assert c["Ready"] == {"type": "Ready", "status": "False", "lastTransitionTime": LATER}
    assert c["ContainersReady"]["status"] == "True"


# -- volume problems ----------------------------------------------------------------------------
def claim(phase="Bound", volume="pv-1", deleting=False):
    c = {"metadata": {"name": "data-web-0", "namespace": "ns"},
         "spec": {"volumeName": volume} if volume else {}, "status": {"phase": phase}}
    if deleting:
        c["metadata"]["deletionTimestamp"] = NOW
    return c


VOLS = {"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data-web-0"}},
                    {"name": "cfg", "configMap": {"name": "x"}}]}


@pytest.mark.parametrize("the_claim,expect", [
    (claim(), None),
    (None, 'persistentvolumeclaims "data-web-0" not found'),
    (claim(phase="Pending", volume=None), "error processing PVC ns/data-web-0: PVC is not bound"),
    (claim(phase="Pending"), "PVC is not bound"),
    (claim(deleting=True), "PVC is being deleted"),
])
def test_volume_problem(the_claim, expect):
    got = podplan.volume_problem(pod(spec=VOLS), {"data-web-0": the_claim})
    if expect is None:
        assert got is None
    else:
        assert got.startswith("Unable to attach or mount volumes: unmounted volumes=[data], "
                              "unattached volumes=[data], failed to process volumes=[data]: ")
        assert expect in got


def test_ephemeral_volume_claim_name():
    p = pod(spec={"volumes": [{"name": "scratch", "ephemeral": {"volumeClaimTemplate": {}}}]})
    assert podplan.claim_names(p) == [("scratch", "web-0-scratch")]


# -- plan rules ----------------------------------------------------------------------------------
def view(**kw):
    base = dict(now=T0, host_ip="10.0.0.2", pod_ip="10.244.0.5")
    base.update(kw)
    return PodView(**base)


def deleting(grace=30, since=0, **kw):
    ts = podplan.parse_time(NOW) - since + grace
    from k1s.client.events import rfc3339
    return pod(metadata={"deletionTimestamp": rfc3339(ts), "deletionGracePeriodSeconds": grace},
               **kw)


def kinds(actions):
    return [type(a).__name__ for a in actions]


def test_stopped_status_is_terminal_and_keeps_identity():
    running = pod(status=podstatus.running(pod(), "10.0.0.2", "10.244.0.5", NOW))
    st = podstatus.stopped(running, "10.0.0.2", "2026-01-01T00:01:00Z")
    assert st["phase"] == "Succeeded" and st["podIP"] == "10.244.0.5"
    conds = {c["type"]: c for c in st["conditions"]}
    assert conds["Ready"]["status"] == "False" and conds["Ready"]["reason"] == "PodCompleted"
    assert conds["ContainersReady"]["status"] == "False"
    for cs in st["containerStatuses"]:
        term = cs["state"]["terminated"]
        assert not cs["ready"] and term["exitCode"] == 0 and term["reason"] == "Completed"
        # started when it started running, finished now
        assert term["startedAt"] == NOW and term["finishedAt"] == "2026-01-01T00:01:00Z"


def test_stopped_from_uses_real_exit_codes():
    """A real runtime's terminations replace the assumed clean exits: a container killed at
    the end of its grace period makes the terminal phase Failed (kubelet's getPhase)."""
    running = pod(status=podstatus.running(pod(), "10.0.0.2", "10.244.0.5", NOW))
    killed = {"name": "app", "state": {"terminated": {"exitCode": 137, "reason": "Error",
                                                      "startedAt": NOW, "finishedAt": LATER}},
              "ready": True, "restartCount": 2}
    st = podstatus.stopped_from(running, "10.0.0.2", LATER, {"containerStatuses": [killed]})
    assert st["phase"] == "Failed"
    by = {cs["name"]: cs for cs in st["containerStatuses"]}
    assert by["app"]["state"]["terminated"]["exitCode"] == 137
    assert by["app"]["restartCount"] == 2 and by["app"]["ready"] is False
    assert by["log"]["state"]["terminated"]["exitCode"] == 0      # not observed: clean exit
    assert conds(st)["Ready"]["reason"] == "PodFailed"
    clean = dict(killed, state={"terminated": {"exitCode": 0, "reason": "Completed"}})
    assert podstatus.stopped_from(running, "10.0.0.2", LATER,
                                  {"containerStatuses": [clean]})["phase"] == "Succeeded"


def test_real_runtime_deletion_waits_for_the_exits_past_the_grace_period():
    """Simulated containers 'exit' at the deadline; real ones are killed then and the node
    waits for their exits (up to STOP_SLACK_SECONDS more) to report real codes."""
    v = dict(started_at=T0, ready_at=T0, waits_for_stop=True)
    assert kinds(plan_pod(deleting(30, 31), view(**v))) == ["Stop", "Requeue"]
    late = 31 + podplan.STOP_SLACK_SECONDS
    assert kinds(plan_pod(deleting(30, late), view(**v))) == ["Stop", "WriteStatus",
                                                              "FinishDelete"]
    assert kinds(plan_pod(deleting(30, 31), view(stopped=True, **v))) == ["WriteStatus",
                                                                          "FinishDelete"]


def test_real_runtime_without_a_status_is_never_assumed_running():
    """A real runtime that could not look at the containers (preparing the pod failed) gives
    no status: the node looks again instead of writing Running and Ready."""
    v = view(started_at=T0, ready_at=T0, waits_for_stop=True, recheck=T0 + 4)
    assert plan_pod(pod(), v) == [Requeue(4.0)]
    failed = view(started_at=T0, ready_at=T0, waits_for_stop=True,
                  volume_problem="MountVolume.SetUp failed", retry_at=T0 + 2)
    assert kinds(plan_pod(pod(), failed)) == ["WriteStatus", "Event", "Requeue"]


@pytest.mark.parametrize("name,p,v,expect", [
    ("new pod: start it", pod(), view(), ["Start"]),
    ("starting: creating status, look again", pod(), view(started_at=T0, ready_at=T0 + 2),
     ["WriteStatus", "Requeue"]),
    ("ready: running status", pod(), view(started_at=T0, ready_at=T0), ["WriteStatus"]),
    ("volume problem: creating + event", pod(spec=VOLS),
     view(volume_problem="Unable to attach or mount volumes: x"), ["WriteStatus", "Event"]),
    ("volume problem already reported: no event",
     pod(spec=VOLS, status=podstatus.creating(pod(spec=VOLS), "10.0.0.2", NOW)),
     view(volume_problem="p", reported_problem="p"), []),
    ("finished pod: nothing", pod(status={"phase": "Succeeded"}), view(), []),
    ("deleting, within grace: stop, look again", deleting(30, 0), view(started_at=T0, ready_at=T0),
     ["Stop", "Requeue"]),
    ("deleting, cap passed: terminal status, finish", deleting(30, 0),
     view(started_at=T0, ready_at=T0, delete_cap=0), ["Stop", "WriteStatus", "FinishDelete"]),
    ("deleting, grace passed: terminal status, finish", deleting(30, 31), view(started_at=T0),
     ["Stop", "WriteStatus", "FinishDelete"]),
    ("deleting, containers exited: terminal status, finish", deleting(30, 0),
     view(started_at=T0, stopped=True), ["WriteStatus", "FinishDelete"]),
    ("deleting, never started: finish", deleting(30, 31), view(), ["FinishDelete"]),
    ("deleting, already terminal: finish", deleting(30, 0, status={"phase": "Succeeded"}),
     view(started_at=T0, stopped=True), ["FinishDelete"]),
    ("no address left: creating + sandbox event", pod(), view(started_at=T0, ready_at=T0,
                                                             pod_ip=None),
     ["WriteStatus", "Event"]),
])
def test_plan_table(name, p, v, expect):
    assert kinds(plan_pod(p, v)) == expect, name


def test_plan_requeue_times():
    acts = plan_pod(pod(), view(started_at=T0, ready_at=T0 + 2.5))
    assert acts[-1] == Requeue(2.5)
    acts = plan_pod(deleting(30, 10), view(started_at=T0, delete_cap=15))
    assert acts[-1] == Requeue(5.0)
    assert acts[0] == Stop(30)
    fin = plan_pod(deleting(30, 10), view(started_at=T0, delete_cap=5))
    assert fin[-1] == FinishDelete("u-1")


def test_running_pod_is_settled():
    v = view(started_at=T0, ready_at=T0)
    st = plan_pod(pod(), v)[0].status
    assert plan_pod(pod(status=st), view(started_at=T0, ready_at=T0, now=T0 + 100)) == []


# -- property: a pod's life on a node ---------------------------------------------------------------
STEPS = st.lists(st.sampled_from(["tick", "bind", "unbind", "delete", "restart"]), max_size=25)


@given(STEPS, st.floats(0, 3), st.floats(0, 5))
def test_pod_life_invariants(steps, delay, cap):
    """Apply the plan after every event; invariants after each step: Running only with all
    claims bound and an address; a finished delete only after the pod was deleted and its
    wait (min(grace, cap)) is over; an event only for a new problem; a settled pod needs no
    write."""
    p = pod(spec=dict(VOLS, terminationGracePeriodSeconds=30))
    now = T0
    bound = False
    started = None
    reported = None
    deleted_at = None
    finished = False
    for step in steps + ["tick"]:
        if step == "tick":
            now += 1.0
        elif step == "bind":
            bound = True
        elif step == "unbind":
            bound = False
        elif step == "delete" and deleted_at is None:
            deleted_at = now
            from k1s.client.events import rfc3339
            p = dict(p, metadata=dict(p["metadata"], deletionTimestamp=rfc3339(now + 30),
                                      deletionGracePeriodSeconds=30))
        elif step == "restart":
            started = None if p["status"].get("phase") != "Running" else (0.0, 0.0)
            reported = None
        for _ in range(3):
            problem = None if bound else podplan.volume_problem(p, {"data-web-0": None})
            v = PodView(now=now, host_ip="10.0.0.2", pod_ip="10.244.0.5",
                        volume_problem=problem, reported_problem=reported,
                        started_at=started[0] if started else None,
                        ready_at=started[1] if started else None, delete_cap=cap)
            acts = plan_pod(p, v)
            again = False
            for a in acts:
                if isinstance(a, Start):
                    assert not problem
                    started = (now, now + delay)
                    again = True
                elif isinstance(a, WriteStatus):
                    assert not podstatus.same(p["status"], a.status)
                    if a.status["phase"] == "Running":
                        assert not problem and a.status["podIP"] == "10.244.0.5"
                        assert now >= started[1]
                    p = dict(p, status=a.status)
                elif isinstance(a, Event):
                    assert a.message != reported and a.reason == "FailedMount"
                    reported = a.message
                elif isinstance(a, FinishDelete):
                    assert deleted_at is not None
                    assert now >= deleted_at + min(30, cap) - 1   # timestamps are whole seconds
                    finished = True
            if finished or not again:
                break
        if finished:
            break
        # settled: planning again at the same moment asks for no write
        problem = None if bound else podplan.volume_problem(p, {"data-web-0": None})
        v = PodView(now=now, host_ip="10.0.0.2", pod_ip="10.244.0.5", volume_problem=problem,
                    reported_problem=reported, started_at=started[0] if started else None,
                    ready_at=started[1] if started else None, delete_cap=cap)
        assert not [a for a in plan_pod(p, v) if isinstance(a, (WriteStatus, Event))]


def test_short_lived_creating_status_is_not_written():
    acts = plan_pod(pod(), view(started_at=T0, ready_at=T0 + podplan.COALESCE_SECONDS / 2))
    assert kinds(acts) == ["Requeue"]


def test_a_pod_waiting_for_its_volumes_fails_at_its_active_deadline():
    """kubelet's deadline counts from startTime whatever the pod waits for: a pod held in
    ContainerCreating by a volume fails with DeadlineExceeded, and is looked at again at
    whichever comes first, the mount retry or the deadline."""
    p = pod(spec={"activeDeadlineSeconds": 60}, status={"startTime": NOW})
    before = plan_pod(p, view(now=T0 + 10, volume_problem="MountVolume.SetUp failed",
                              retry_at=T0 + 100))
    assert kinds(before) == ["WriteStatus", "Event", "Requeue"]
    assert before[-1] == Requeue(50.0)
    after = plan_pod(p, view(now=T0 + 60, volume_problem="MountVolume.SetUp failed"))
    assert kinds(after) == ["WriteStatus", "Event"]
    st = after[0].status
    assert (st["phase"], st["reason"], st["message"]) == (
        "Failed", "DeadlineExceeded",
        "Pod was active on the node longer than the specified deadline")
    assert after[1] == Event("Normal", "DeadlineExceeded", st["message"])
    assert st["startTime"] == NOW
