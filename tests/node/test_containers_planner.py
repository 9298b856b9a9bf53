"""The node agent's container planner (k1s.node.containers): one table per rule (init order,
sidecars, restart policy x exit code, back-off, image waiting, probes, readiness, readiness
gates, phases, lastState), and a hypothesis state machine that runs a pod's containers over
time — random exits, probe results and clock steps, the planner's starts and kills applied
to the model — checking kubelet's invariants after every step."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, event, given, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from k1s.client.events import rfc3339
from k1s.node import podstatus
from k1s.node.containers import (ContainerEvent, ContainersView, KillContainer, Run,
                                 StartContainer, backoff_seconds, go_duration, plan)

T = 1_800_000_000.0   # a fixed "now"; every time below is relative to it
POD_REF = "web-0_ns(u-1)"


def ctr(name, image="busybox", **extra):
    return {"name": name, "image": image, **extra}


def sidecar(name, **extra):
    return ctr(name, restartPolicy="Always", **extra)


def pod(apps=("app",), inits=(), policy=None, gates=(), conditions=(), phase="Pending",
        grace=None):
    spec = {"containers": [ctr(c) if isinstance(c, str) else c for c in apps]}
    if inits:
        spec["initContainers"] = [ctr(c) if isinstance(c, str) else c for c in inits]
    if policy:
        spec["restartPolicy"] = policy
    if gates:
        spec["readinessGates"] = [{"conditionType": g} for g in gates]
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    return {"metadata": {"name": "web-0", "namespace": "ns", "uid": "u-1"}, "spec": spec,
            "status": {"phase": phase, "conditions": list(conditions)}}


def view(runs=None, last=None, waiting=None, probes=None, killing=(), now=T, pod_ip="10.4.0.7"):
    return ContainersView(now=now, host_ip="192.168.0.2", pod_ip=pod_ip, runs=runs or {},
                          last=last or {}, waiting=waiting or {}, probes=probes or {},
                          killing=frozenset(killing))


def running(restart=0, since=T - 100):
    return Run(restart=restart, started_at=since, exit_code=None)


def exited(code=0, restart=0, start=T - 100, end=T - 50, reason=None):
    return Run(restart=restart, started_at=start, exit_code=code,
               reason=reason or ("Completed" if code == 0 else "Error"), finished_at=end)


def starts(p):
    return [a.name for a in p.actions if isinstance(a, StartContainer)]


def kills(p):
    return [a for a in p.actions if isinstance(a, KillContainer)]


def events(p):
    return [(a.type, a.reason, a.message) for a in p.actions if isinstance(a, ContainerEvent)]


def cs(p, name):
    for s in (*p.status.get("initContainerStatuses", ()), *p.status["containerStatuses"]):
        if s["name"] == name:
            return s
    raise KeyError(name)


def state(p, name):
    (kind, detail), = cs(p, name)["state"].items()
    return kind, detail


def cond(p, type_):
    return next(c for c in p.status["conditions"] if c["type"] == type_)


# -- a fresh pod ----------------------------------------------------------------------------------
def test_fresh_pod_starts_every_app_container_at_once_with_their_events():
    p = plan(pod(apps=("app", ctr("log", "nginx:1.27"))), view())
    assert starts(p) == ["app", "log"]
    assert events(p) == [
        ("Normal", "Pulled", 'Container image "busybox" already present on machine'),
        ("Normal", "Created", "Created container: app"),
        ("Normal", "Started", "Started container app"),
        ("Normal", "Pulled", 'Container image "nginx:1.27" already present on machine'),
        ("Normal", "Created", "Created container: log"),
        ("Normal", "Started", "Started container log")]
    assert p.recheck == T                      # look again once they run
    assert p.status["phase"] == "Pending"
    assert state(p, "app") == ("waiting", {"reason": "ContainerCreating"})
    assert cs(p, "log")["image"] == "docker.io/library/nginx:1.27"
    assert cs(p, "log")["imageID"] == "" and "containerID" not in cs(p, "log")
    assert p.status["podIP"] == "10.4.0.7" and p.status["podIPs"] == [{"ip": "10.4.0.7"}]
    assert p.status["hostIPs"] == [{"ip": "192.168.0.2"}]
    assert p.status["startTime"] == rfc3339(T)


def test_running_pod_is_running_and_ready_with_kubelet_condition_order():
    p = plan(pod(), view(runs={"app": running()}))
    assert p.actions == [] and p.recheck is None
    assert p.status["phase"] == "Running"
    assert [c["type"] for c in p.status["conditions"]] == list(podstatus.CONDITION_ORDER)
    assert all(c["status"] == "True" for c in p.status["conditions"])
    s = cs(p, "app")
    assert s["state"] == {"running": {"startedAt": rfc3339(T - 100)}}
    assert s["ready"] and s["started"] and s["restartCount"] == 0 and s["lastState"] == {}
    assert s["containerID"] == podstatus.container_id(pod(), "app")
    assert s["imageID"] == podstatus.image_id("busybox")


def test_host_network_pod_takes_the_host_address():
    p0 = pod()
    p0["spec"]["hostNetwork"] = True
    p = plan(p0, view(runs={"app": running()}))
    assert p.status["podIP"] == "192.168.0.2"


def test_conditions_keep_their_transition_time_while_unchanged():
    first = plan(pod(), view(runs={"app": running()}, now=T))
    p1 = pod(conditions=first.status["conditions"], phase="Running")
    again = plan(p1, view(runs={"app": running()}, now=T + 60))
    assert again.status["conditions"] == first.status["conditions"]
    crashed = plan(p1, view(runs={"app": exited(1)}, now=T + 60))
    assert cond(crashed, "Ready")["lastTransitionTime"] == rfc3339(T + 60)
    assert cond(crashed, "PodScheduled")["lastTransitionTime"] == rfc3339(T)


# -- init containers -----------------------------------------------------------------------------
INIT_ORDER = [
    # (runs, expected starts, Initialized status, init state kinds)
    ({}, ["i1"], "False", ["waiting", "waiting"]),
    ({"i1": running()}, [], "False", ["running", "waiting"]),
    ({"i1": exited(0)}, ["i2"], "False", ["terminated", "waiting"]),
    ({"i1": exited(0), "i2": running()}, [], "False", ["terminated", "running"]),
    ({"i1": exited(0), "i2": exited(0)}, ["a", "b"], "True", ["terminated", "terminated"]),
]


@pytest.mark.parametrize("runs,want,initialized,kinds", INIT_ORDER)
def test_init_containers_run_one_at_a_time_in_order(runs, want, initialized, kinds):
    p = plan(pod(apps=("a", "b"), inits=("i1", "i2")), view(runs=runs))
    assert starts(p) == want
    assert cond(p, "Initialized")["status"] == initialized
    assert [state(p, n)[0] for n in ("i1", "i2")] == kinds
    if initialized == "False":
        assert p.status["phase"] == "Pending"
        assert state(p, "a") == ("waiting", {"reason": "PodInitializing"})
        incomplete = [n for n in ("i1", "i2") if n not in runs or runs[n].exit_code != 0]
        assert cond(p, "Initialized")["message"] == \
            f"containers with incomplete status: [{' '.join(incomplete)}]"


def test_completed_init_container_status_is_what_kubectl_counts_as_done():
    p = plan(pod(inits=("i1", "i2")), view(runs={"i1": exited(0), "i2": running()}))
    s = cs(p, "i1")
    assert s["state"]["terminated"]["reason"] == "Completed"
    assert s["state"]["terminated"]["exitCode"] == 0
    assert s["ready"] is True and s["started"] is False
    assert cs(p, "i2")["started"] is True and cs(p, "i2")["ready"] is False


@pytest.mark.parametrize("policy,restarts,phase", [
    ("Always", True, "Pending"), ("OnFailure", True, "Pending"), ("Never", False, "Failed")])
def test_failed_init_container_follows_the_pod_restart_policy(policy, restarts, phase):
    p = plan(pod(inits=("i1", "i2"), policy=policy), view(runs={"i1": exited(1, end=T - 1)}))
    assert starts(p) == (["i1"] if restarts else [])   # first restart: no back-off
    assert "app" not in starts(p) and "i2" not in starts(p)
    assert p.status["phase"] == phase
    assert state(p, "app")[1]["reason"] == "PodInitializing"


def test_failed_init_container_backs_off_and_shows_crash_loop():
    p = plan(pod(inits=("i1",)), view(runs={"i1": exited(1, restart=3, end=T - 5)}))
    assert starts(p) == []
    kind, detail = state(p, "i1")
    assert kind == "waiting" and detail["reason"] == "CrashLoopBackOff"
    assert cs(p, "i1")["lastState"]["terminated"]["exitCode"] == 1
    assert p.status["phase"] == "Pending"
    assert p.recheck == T + 35


def test_init_done_for_good_once_an_app_container_ran():
    # the app container exited (it ran): init containers never run again, even if absent
    p = plan(pod(inits=("i1",), policy="Always"), view(runs={"app": exited(1, end=T - 1)}))
    assert starts(p) == ["app"]


# -- sidecars ------------------------------------------------------------------------------------
def test_sidecar_starts_first_and_counts_as_done_once_running():
    p0 = pod(inits=(sidecar("proxy"), "setup"))
    assert starts(plan(p0, view())) == ["proxy"]
    p = plan(p0, view(runs={"proxy": running()}))
    assert starts(p) == ["setup"]
    p = plan(p0, view(runs={"proxy": running(), "setup": exited(0)}))
    assert starts(p) == ["app"]
    assert cond(p, "Initialized")["status"] == "True"


def test_sidecar_with_startup_probe_holds_the_next_until_started():
    p0 = pod(inits=(sidecar("proxy", startupProbe={"exec": {}}), "setup"))
    p = plan(p0, view(runs={"proxy": running()}))
    assert starts(p) == []
    assert cs(p, "proxy")["started"] is False
    assert cond(p, "Initialized")["message"] == "containers with incomplete status: [proxy setup]"
    p = plan(p0, view(runs={"proxy": running()}, probes={("proxy", "startup"): True}))
    assert starts(p) == ["setup"] and cs(p, "proxy")["started"] is True


@pytest.mark.parametrize("policy", ["Always", "OnFailure", "Never"])
def test_sidecar_is_restarted_whatever_the_pod_policy(policy):
    p = plan(pod(inits=(sidecar("proxy"),), policy=policy),
             view(runs={"proxy": exited(0, end=T - 1), "app": running()}))
    assert starts(p) == ["proxy"]
    assert p.status["phase"] == "Running"


def test_sidecar_readiness_counts_for_containers_ready():
    p0 = pod(inits=(sidecar("proxy", readinessProbe={"exec": {}}),))
    p = plan(p0, view(runs={"proxy": running(), "app": running()}))
    assert cond(p, "ContainersReady")["message"] == "containers with unready status: [proxy]"
    p = plan(p0, view(runs={"proxy": running(), "app": running()},
                      probes={("proxy", "readiness"): True}))
    assert cond(p, "ContainersReady")["status"] == "True"


def test_sidecars_stop_last_first_once_the_app_containers_are_done():
    p0 = pod(inits=(sidecar("a"), sidecar("b")), policy="Never", grace=7)
    runs = {"a": running(), "b": running(), "app": exited(0)}
    p = plan(p0, view(runs=runs))
    assert kills(p) == [KillContainer("b", 7, "Stopping container b"),
                        KillContainer("a", 7, "Stopping container a")]
    assert ("Normal", "Killing", "Stopping container b") in events(p)
    assert p.status["phase"] == "Running"          # sidecars still run
    assert plan(p0, view(runs=runs, killing={"a", "b"})).actions == []
    done = plan(p0, view(runs={"a": exited(143), "b": exited(137), "app": exited(0)}))
    assert done.actions == [] and done.status["phase"] == "Succeeded"


def test_earlier_sidecar_is_restarted_while_a_later_init_container_runs():
    p0 = pod(inits=(sidecar("proxy"), "setup"))
    p = plan(p0, view(runs={"proxy": exited(1, end=T - 1), "setup": running()}))
    assert starts(p) == ["proxy"]
    assert cond(p, "Initialized")["status"] == "False"


def test_initialization_completes_with_an_earlier_sidecar_backing_off():
    # kubelet: the latest init container decides; the sidecar before it restarts on its own
    p0 = pod(inits=(sidecar("proxy"), "setup"))
    runs = {"proxy": exited(1, restart=2, end=T - 1), "setup": exited(0)}
    p = plan(p0, view(runs=runs))
    assert starts(p) == ["app"]
    assert state(p, "proxy")[1]["reason"] == "CrashLoopBackOff"


# -- restart policy x exit code -----------------------------------------------------------------
POLICY_CASES = [
    ("Always", 0, True, "Running"),
    ("Always", 1, True, "Running"),
    ("OnFailure", 0, False, "Succeeded"),
    ("OnFailure", 1, True, "Running"),
    ("Never", 0, False, "Succeeded"),
    ("Never", 1, False, "Failed"),
]


@pytest.mark.parametrize("policy,code,restarts,phase", POLICY_CASES)
def test_restart_policy_and_exit_code(policy, code, restarts, phase):
    p = plan(pod(policy=policy), view(runs={"app": exited(code, end=T - 1)}))
    assert starts(p) == (["app"] if restarts else [])
    assert p.status["phase"] == phase
    kind, detail = state(p, "app")
    assert kind == "terminated"
    assert detail["reason"] == ("Completed" if code == 0 else "Error")


def test_default_policy_is_always():
    p = plan(pod(), view(runs={"app": exited(0, end=T - 1)}))
    assert starts(p) == ["app"]


def test_one_app_still_running_keeps_the_pod_running_under_never():
    p = plan(pod(apps=("a", "b"), policy="Never"), view(runs={"a": exited(1), "b": running()}))
    assert p.status["phase"] == "Running" and starts(p) == []


def test_mixed_exits_under_on_failure_restart_only_the_failed_one():
    p = plan(pod(apps=("a", "b"), policy="OnFailure"),
             view(runs={"a": exited(0), "b": exited(2, end=T - 1)}))
    assert starts(p) == ["b"] and p.status["phase"] == "Running"


# -- back-off -----------------------------------------------------------------------------------
def test_backoff_sequence_doubles_to_the_cap():
    assert [backoff_seconds(r) for r in range(9)] == [0, 10, 20, 40, 80, 160, 300, 300, 300]
    assert backoff_seconds(10_000) == 300


@given(st.integers(0, 10_000))
def test_backoff_never_shrinks_and_never_passes_the_cap(restart):
    assert 0 <= backoff_seconds(restart) <= backoff_seconds(restart + 1) <= 300


@pytest.mark.parametrize("secs,text", [(10, "10s"), (40, "40s"), (80, "1m20s"),
                                       (160, "2m40s"), (300, "5m0s")])
def test_backoff_is_written_as_go_durations(secs, text):
    assert go_duration(secs) == text


@pytest.mark.parametrize("restart", [1, 2, 3, 4, 5, 6, 9])
def test_restart_waits_its_backoff_from_finished_at(restart):
    delay = backoff_seconds(restart)
    run = exited(1, restart=restart, start=T - 5, end=T)
    waiting = plan(pod(), view(runs={"app": run}, now=T + delay - 1))
    assert starts(waiting) == []
    assert waiting.recheck == T + delay
    kind, detail = state(waiting, "app")
    assert kind == "waiting" and detail == {
        "reason": "CrashLoopBackOff",
        "message": f"back-off {go_duration(delay)} restarting failed container=app pod={POD_REF}"}
    assert ("Warning", "BackOff",
            f"Back-off restarting failed container app in pod {POD_REF}") in events(waiting)
    assert cs(waiting, "app")["restartCount"] == restart
    assert cs(waiting, "app")["lastState"]["terminated"]["exitCode"] == 1
    assert waiting.status["phase"] == "Running"
    assert cond(waiting, "Ready")["message"] == "containers with unready status: [app]"
    due = plan(pod(), view(runs={"app": run}, now=T + delay))
    assert starts(due) == ["app"]
    assert not any(e[1] == "BackOff" for e in events(due))


def test_first_restart_is_immediate():
    p = plan(pod(), view(runs={"app": exited(1, restart=0, end=T)}, now=T))
    assert starts(p) == ["app"]


def test_a_run_of_ten_minutes_resets_the_backoff():
    long_run = exited(1, restart=8, start=T - 600, end=T)
    assert starts(plan(pod(), view(runs={"app": long_run}, now=T))) == ["app"]
    short_run = exited(1, restart=8, start=T - 599, end=T)
    assert starts(plan(pod(), view(runs={"app": short_run}, now=T))) == []


def test_on_failure_backs_off_too_and_stays_running():
    p = plan(pod(policy="OnFailure"), view(runs={"app": exited(1, restart=2, end=T)}, now=T + 1))
    assert starts(p) == [] and p.status["phase"] == "Running"
    assert state(p, "app")[1]["reason"] == "CrashLoopBackOff"


# -- images the catalog does not know ------------------------------------------------------------
def test_container_whose_image_is_missing_waits_and_is_not_started():
    w = {"app": ("ErrImageNeverPull", 'Container image "nope" is not present')}
    p = plan(pod(apps=("app", "ok")), view(waiting=w))
    assert starts(p) == ["ok"]
    assert state(p, "app") == ("waiting", {"reason": "ErrImageNeverPull",
                                           "message": 'Container image "nope" is not present'})
    assert p.status["phase"] == "Pending"


def test_init_container_whose_image_is_missing_blocks_the_pod():
    p = plan(pod(inits=("i1",)), view(waiting={"i1": ("ErrImageNeverPull", "m")}))
    assert starts(p) == [] and state(p, "i1")[1]["reason"] == "ErrImageNeverPull"
    assert state(p, "app")[1]["reason"] == "PodInitializing"


# -- probes -------------------------------------------------------------------------------------
LIVENESS_CASES = [
    # (container extra, policy, pod grace, probes, expected kill or None)
    ({"livenessProbe": {}}, None, None, {("app", "liveness"): False},
     KillContainer("app", 30, "Container app failed liveness probe, will be restarted")),
    ({"livenessProbe": {"terminationGracePeriodSeconds": 3}}, None, 60,
     {("app", "liveness"): False},
     KillContainer("app", 3, "Container app failed liveness probe, will be restarted")),
    ({"livenessProbe": {}}, None, 60, {("app", "liveness"): False},
     KillContainer("app", 60, "Container app failed liveness probe, will be restarted")),
    ({"livenessProbe": {}}, "Never", None, {("app", "liveness"): False},
     KillContainer("app", 30, "Container app failed liveness probe")),
    ({"livenessProbe": {}}, None, None, {("app", "liveness"): True}, None),
    ({"livenessProbe": {}}, None, None, {}, None),
    ({"startupProbe": {}}, None, None, {("app", "startup"): False},
     KillContainer("app", 30, "Container app failed startup probe, will be restarted")),
    # liveness is not consulted before the startup probe succeeded
    ({"startupProbe": {}, "livenessProbe": {}}, None, None, {("app", "liveness"): False}, None),
    ({"startupProbe": {}, "livenessProbe": {}}, None, None,
     {("app", "startup"): True, ("app", "liveness"): False},
     KillContainer("app", 30, "Container app failed liveness probe, will be restarted")),
    ({}, None, None, {("app", "liveness"): False}, None),      # no probe: results ignored
]


@pytest.mark.parametrize("extra,policy,grace,probes,want", LIVENESS_CASES)
def test_liveness_and_startup_failures_kill_the_container(extra, policy, grace, probes, want):
    p0 = pod(apps=(ctr("app", **extra),), policy=policy, grace=grace)
    p = plan(p0, view(runs={"app": running()}, probes=probes))
    assert kills(p) == ([want] if want else [])
    if want:
        assert ("Normal", "Killing", want.message) in events(p)
        # while being killed: no second kill, and not ready
        again = plan(p0, view(runs={"app": running()}, probes=probes, killing={"app"}))
        assert kills(again) == [] and cs(again, "app")["ready"] is False


def test_sidecar_liveness_failure_uses_the_init_container_message():
    p0 = pod(inits=(sidecar("proxy", livenessProbe={}),))
    p = plan(p0, view(runs={"proxy": running(), "app": running()},
                      probes={("proxy", "liveness"): False}))
    assert kills(p) == [KillContainer("proxy", 30, "Init container proxy failed liveness probe")]


def test_killed_container_restarts_after_it_exits():
    p = plan(pod(apps=(ctr("app", livenessProbe={}),)),
             view(runs={"app": exited(137, end=T)}, probes={("app", "liveness"): False}))
    assert starts(p) == ["app"] and kills(p) == []


READINESS_CASES = [
    # (container extra, probes, started, ready)
    ({}, {}, True, True),
    ({"readinessProbe": {}}, {}, True, False),
    ({"readinessProbe": {}}, {("app", "readiness"): False}, True, False),
    ({"readinessProbe": {}}, {("app", "readiness"): True}, True, True),
    ({"startupProbe": {}}, {}, False, False),
    ({"startupProbe": {}}, {("app", "startup"): True}, True, True),
    ({"startupProbe": {}, "readinessProbe": {}}, {("app", "readiness"): True}, False, False),
    ({"startupProbe": {}, "readinessProbe": {}},
     {("app", "startup"): True, ("app", "readiness"): True}, True, True),
]


@pytest.mark.parametrize("extra,probes,started,ready", READINESS_CASES)
def test_started_and_ready_follow_the_probes(extra, probes, started, ready):
    p = plan(pod(apps=(ctr("app", **extra),)), view(runs={"app": running()}, probes=probes))
    assert cs(p, "app")["started"] is started and cs(p, "app")["ready"] is ready
    assert cond(p, "Ready")["status"] == ("True" if ready else "False")
    assert cond(p, "ContainersReady")["status"] == ("True" if ready else "False")
    if not ready:
        assert cond(p, "Ready")["reason"] == "ContainersNotReady"
        assert cond(p, "Ready")["message"] == "containers with unready status: [app]"


# -- readiness gates ----------------------------------------------------------------------------
GATE_CASES = [
    ((), "True", None, None),
    (({"type": "www.example.com/lb", "status": "True"},), "True", None, None),
    ((), "False", "ReadinessGatesNotReady",
     'corresponding condition of pod readiness gate "www.example.com/lb" does not exist.'),
    (({"type": "www.example.com/lb", "status": "False"},), "False", "ReadinessGatesNotReady",
     'the status of pod readiness gate "www.example.com/lb" is not "True", but False'),
]


@pytest.mark.parametrize("conditions,ready,reason,message", GATE_CASES)
def test_readiness_gates_hold_ready_but_not_containers_ready(conditions, ready, reason, message):
    gates = ("www.example.com/lb",) if (conditions or ready == "False") else ()
    p = plan(pod(gates=gates, conditions=conditions), view(runs={"app": running()}))
    c = cond(p, "Ready")
    assert (c["status"], c.get("reason"), c.get("message")) == (ready, reason, message)
    assert cond(p, "ContainersReady")["status"] == "True"
    # the gate's own condition is someone else's: kept as it is
    for own in conditions:
        assert own in p.status["conditions"]


def test_two_gates_report_both():
    p = plan(pod(gates=("a", "b"), conditions=({"type": "b", "status": "Unknown"},)),
             view(runs={"app": running()}))
    assert cond(p, "Ready")["message"] == (
        'corresponding condition of pod readiness gate "a" does not exist., '
        'the status of pod readiness gate "b" is not "True", but Unknown')


# -- finished pods ------------------------------------------------------------------------------
def test_succeeded_pod_conditions():
    p = plan(pod(inits=("i1",), policy="Never"),
             view(runs={"i1": exited(0), "app": exited(0)}))
    assert p.status["phase"] == "Succeeded"
    assert (cond(p, "Ready")["status"], cond(p, "Ready")["reason"]) == ("False", "PodCompleted")
    assert cond(p, "ContainersReady")["reason"] == "PodCompleted"
    assert (cond(p, "Initialized")["status"], cond(p, "Initialized")["reason"]) == \
        ("True", "PodCompleted")
    assert cond(p, "PodReadyToStartContainers")["status"] == "False"
    assert "message" not in cond(p, "Ready")


def test_failed_pod_conditions():
    p = plan(pod(policy="Never"), view(runs={"app": exited(3)}))
    assert p.status["phase"] == "Failed"
    assert cond(p, "Ready")["reason"] == "PodFailed"
    assert cond(p, "ContainersReady")["reason"] == "PodFailed"
    assert state(p, "app")[1]["exitCode"] == 3


def test_terminal_phase_sticks_and_nothing_starts_again():
    p0 = pod(phase="Succeeded")               # written as finished before
    p = plan(p0, view(runs={"app": exited(1, end=T - 1)}))
    assert starts(p) == [] and p.status["phase"] == "Succeeded"


def test_pod_written_terminal_by_someone_else_has_its_containers_stopped():
    p0 = pod(phase="Failed", inits=(sidecar("proxy"),), grace=5)
    p = plan(p0, view(runs={"proxy": running(), "app": running()}))
    assert kills(p) == [KillContainer("app", 5, "Stopping container app"),
                        KillContainer("proxy", 5, "Stopping container proxy")]
    assert p.status["phase"] == "Failed" and starts(p) == []
    assert cond(p, "Ready")["reason"] == "PodFailed"


def test_pod_being_deleted_starts_nothing():
    p0 = pod(policy="Always")
    p0["metadata"]["deletionTimestamp"] = rfc3339(T)
    p = plan(p0, view(runs={"app": exited(1, end=T - 1)}))
    assert p.actions == [] and p.recheck is None
    assert state(p, "app")[0] == "terminated"


def test_terminated_state_has_every_field():
    run = Run(restart=0, started_at=T - 10, exit_code=137, reason="OOMKilled",
              message="out of memory", finished_at=T - 2)
    p = plan(pod(policy="Never"), view(runs={"app": run}))
    assert state(p, "app")[1] == {
        "exitCode": 137, "reason": "OOMKilled", "message": "out of memory",
        "startedAt": rfc3339(T - 10), "finishedAt": rfc3339(T - 2),
        "containerID": podstatus.container_id(pod(), "app")}


# -- lastState ----------------------------------------------------------------------------------
def test_last_state_is_the_previous_run_and_each_run_has_its_own_id():
    prev = exited(2, restart=0, start=T - 300, end=T - 200)
    p = plan(pod(), view(runs={"app": running(restart=1)}, last={"app": prev}))
    s = cs(p, "app")
    assert s["restartCount"] == 1
    assert s["lastState"]["terminated"]["exitCode"] == 2
    assert s["lastState"]["terminated"]["finishedAt"] == rfc3339(T - 200)
    assert s["lastState"]["terminated"]["containerID"] != s["containerID"]
    assert s["state"] == {"running": {"startedAt": rfc3339(T - 100)}}


# -- the state machine --------------------------------------------------------------------------
def expected_delay(run: Run) -> float:
    """The back-off rule, written again independently of the planner."""
    if run.finished_at - run.started_at >= 600:
        return 0
    return 0 if run.restart == 0 else min(10 * 2 ** (run.restart - 1), 300)


PROBE_KINDS = ("readiness", "liveness", "startup")


class PodContainers(RuleBasedStateMachine):
    """A pod's containers under a model runtime: the planner's StartContainer creates a run,
    KillContainer marks it being killed; rules make runs exit, probes change, time pass."""

    @initialize(data=st.data())
    def setup(self, data):
        policy = data.draw(st.sampled_from(["Always", "OnFailure", "Never"]))
        n_init = data.draw(st.integers(0, 3))
        inits = []
        for i in range(n_init):
            c = ctr(f"i{i}")
            if data.draw(st.booleans()):
                c["restartPolicy"] = "Always"
                for kind in PROBE_KINDS:
                    if data.draw(st.booleans()):
                        c[f"{kind}Probe"] = {}
            inits.append(c)
        apps = []
        for i in range(data.draw(st.integers(1, 3))):
            c = ctr(f"a{i}")
            for kind in PROBE_KINDS:
                if data.draw(st.booleans()):
                    c[f"{kind}Probe"] = {}
            apps.append(c)
        self.pod = pod(apps=apps, inits=inits, policy=policy)
        self.policy = policy
        self.inits = inits
        self.apps = apps
        self.sidecars = {c["name"] for c in inits if c.get("restartPolicy") == "Always"}
        self.now = T
        self.runs: dict[str, Run] = {}
        self.last: dict[str, Run] = {}
        self.probes: dict[tuple[str, str], bool] = {}
        self.killing: set[str] = set()
        self.app_started = False
        self.plan = None
        self.step()

    # -- the model runtime ----------------------------------------------------------------------
    def check_start(self, name: str) -> None:
        run = self.runs.get(name)
        assert run is None or run.exit_code is not None, f"{name} started while running"
        assert (self.pod["status"].get("phase") not in ("Succeeded", "Failed")), \
            "a finished pod starts nothing"
        is_app = any(c["name"] == name for c in self.apps)
        if is_app and not self.app_started:
            # the first app start: every init container had its turn (regular ones
            # completed), and the last one, when a sidecar, runs and has started
            for c in self.inits:
                r = self.runs.get(c["name"])
                assert r is not None, f"app {name} before init {c['name']} ran"
                if c["name"] not in self.sidecars:
                    assert r.exit_code == 0, f"app {name} before init {c['name']} completed"
            if self.inits and self.inits[-1]["name"] in self.sidecars:
                c = self.inits[-1]
                assert self.runs[c["name"]].exit_code is None
                if c.get("startupProbe") is not None:
                    assert self.probes.get((c["name"], "startup")) is True
        init_index = next((i for i, c in enumerate(self.inits) if c["name"] == name), None)
        if init_index is not None and run is None:
            # init containers start in spec order, each after the regular ones before completed
            for c in self.inits[:init_index]:
                r = self.runs.get(c["name"])
                assert r is not None, f"init {name} before {c['name']}"
                if c["name"] not in self.sidecars:
                    assert r.exit_code == 0, f"init {name} before {c['name']} completed"
        if run is not None:
            assert self.now >= run.finished_at + expected_delay(run), \
                f"{name} restarted during its back-off"
            if name not in self.sidecars:
                assert self.policy != "Never", f"{name} restarted under policy Never"
                if is_app and self.policy == "OnFailure":
                    assert run.exit_code != 0, f"{name} restarted after exit 0 under OnFailure"
                if not is_app:
                    assert run.exit_code != 0, f"init {name} ran again after completing"

    def step(self) -> None:
        """Plan and apply; as the agent does, plan again at once when the plan asks (after
        starts), so the status written last describes the runs as they are."""
        for _ in range(10):
            p = self.plan_once()
            if p.recheck is None or p.recheck > self.now:
                return
        raise AssertionError("the planner keeps asking to be called again at once")

    def plan_once(self):
        p = plan(self.pod, ContainersView(
            now=self.now, host_ip="192.168.0.2", pod_ip="10.4.0.7", runs=dict(self.runs),
            last=dict(self.last), waiting={}, probes=dict(self.probes),
            killing=frozenset(self.killing)))
        self.plan = p
        for a in p.actions:
            if isinstance(a, StartContainer):
                self.check_start(a.name)
                old = self.runs.get(a.name)
                if old is not None:
                    self.last[a.name] = old
                self.runs[a.name] = Run(restart=0 if old is None else old.restart + 1,
                                        started_at=self.now, exit_code=None)
                for kind in PROBE_KINDS:          # a new run has no probe results yet
                    self.probes.pop((a.name, kind), None)
                if any(c["name"] == a.name for c in self.apps):
                    self.app_started = True
            elif isinstance(a, KillContainer):
                run = self.runs.get(a.name)
                assert run is not None and run.exit_code is None, "kill of a non-running one"
                assert a.name not in self.killing
                self.killing.add(a.name)
        self.pod["status"] = p.status
        # what the runs reached: pytest --hypothesis-show-statistics
        event(f"phase {p.status['phase']}")
        for a in p.actions:
            if isinstance(a, ContainerEvent) and a.reason in ("BackOff", "Killing"):
                event(a.reason)
        return p

    # -- what happens to the containers ---------------------------------------------------------
    def _running(self):
        return sorted(n for n, r in self.runs.items() if r.exit_code is None)

    @rule(data=st.data(), code=st.sampled_from([0, 0, 1, 2, 137]),
          lasted=st.sampled_from([0, 1, 30, 700]))
    def exit_one(self, data, code, lasted):
        names = self._running()
        if not names:
            return
        name = data.draw(st.sampled_from(names))
        run = self.runs[name]
        self.now = max(self.now, run.started_at + lasted)
        self.runs[name] = Run(run.restart, run.started_at, code,
                              "Completed" if code == 0 else "Error", "", self.now)
        self.killing.discard(name)
        self.step()

    @rule(data=st.data(), result=st.booleans(), kind=st.sampled_from(PROBE_KINDS))
    def probe(self, data, result, kind):
        names = self._running()
        if not names:
            return
        name = data.draw(st.sampled_from(names))
        self.probes[(name, kind)] = result
        self.step()

    @rule(dt=st.sampled_from([1, 5, 10, 20, 45, 100, 300]))
    def time_passes(self, dt):
        self.now += dt
        self.step()

    @rule()
    def recheck_due(self):
        if self.plan.recheck is not None and self.plan.recheck > self.now:
            self.now = self.plan.recheck
        self.step()

    # -- invariants -----------------------------------------------------------------------------
    @invariant()
    def status_lists_follow_spec_order(self):
        st_ = self.pod["status"]
        assert [c["name"] for c in st_["containerStatuses"]] == [c["name"] for c in self.apps]
        assert [c["name"] for c in st_.get("initContainerStatuses", [])] == \
            [c["name"] for c in self.inits]

    @invariant()
    def phase_is_kubelets(self):
        phase = self.pod["status"]["phase"]
        if self.policy == "Always":
            assert phase not in ("Succeeded", "Failed")
        if phase in ("Succeeded", "Failed"):
            assert not any(isinstance(a, StartContainer) for a in self.plan.actions)
            assert self.plan.recheck is None
        if phase == "Succeeded":
            assert all(self.runs[c["name"]].exit_code == 0 for c in self.apps)
        if not self.app_started:
            assert phase in ("Pending", "Failed")

    @invariant()
    def ready_only_when_every_container_is(self):
        st_ = self.pod["status"]
        ready = next(c for c in st_["conditions"] if c["type"] == "Ready")["status"]
        if ready == "True":
            assert all(c["ready"] for c in st_["containerStatuses"])
            assert all(self.runs[c["name"]].exit_code is None for c in self.apps)

    @invariant()
    def a_crash_loop_is_looked_at_again(self):
        sts = [*self.pod["status"].get("initContainerStatuses", ()),
               *self.pod["status"]["containerStatuses"]]
        backing_off = [s for s in sts
                       if (s["state"].get("waiting") or {}).get("reason") == "CrashLoopBackOff"]
        if backing_off:
            assert self.plan.recheck is not None and self.plan.recheck > self.now
        for s in backing_off:
            assert s["lastState"]["terminated"]["finishedAt"]

    @invariant()
    def restart_count_is_the_runs(self):
        for s in self.pod["status"]["containerStatuses"]:
            run = self.runs.get(s["name"])
            assert s["restartCount"] == (run.restart if run else 0)


PodContainers.TestCase.settings = settings(max_examples=200, stateful_step_count=40,
                                           deadline=None,
                                           suppress_health_check=[HealthCheck.too_slow])
TestPodContainers = PodContainers.TestCase


def test_a_container_in_its_post_start_hook_is_being_created_and_not_probed():
    """kubelet writes the container as running only once its postStart hook ended: until then
    it waits as ContainerCreating, is not started or ready, and a failed liveness result is not
    acted on."""
    c = ctr("app", livenessProbe={"exec": {"command": ["true"]}})
    v = ContainersView(now=T, host_ip="192.168.0.2", pod_ip="10.4.0.7",
                       runs={"app": running()}, last={}, waiting={},
                       probes={("app", "liveness"): False}, starting=frozenset({"app"}))
    out = plan(pod(apps=(c,)), v)
    assert not [a for a in out.actions if isinstance(a, (KillContainer, StartContainer))]
    cs = out.status["containerStatuses"][0]
    assert cs["state"] == {"waiting": {"reason": "ContainerCreating"}}
    assert not cs["started"] and not cs["ready"]
    assert out.status["phase"] == "Pending"
