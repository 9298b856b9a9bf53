"""The node's own verdicts on a pod (k1s.node.eviction) and how the container planner acts on
them: activeDeadlineSeconds from status.startTime, the local-storage checks in kubelet's order
with upstream's messages, and the planner's kills, Failed phase, reason/message, event and
DisruptionTarget condition."""

from __future__ import annotations

from k1s.client.events import rfc3339
from k1s.node import eviction
from k1s.node.containers import ContainerEvent, ContainersView, KillContainer, Run, plan
from k1s.node.eviction import StorageUse, Verdict

T = 1_800_000_000.0
MI = 1 << 20


def pod(*containers, volumes=(), deadline=None, start=T - 10, grace=None, status=None,
        inits=()):
    spec = {"containers": list(containers) or [{"name": "c", "image": "busybox"}],
            "volumes": list(volumes)}
    if inits:
        spec["initContainers"] = list(inits)
    if deadline is not None:
        spec["activeDeadlineSeconds"] = deadline
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    st = {"phase": "Running", "startTime": rfc3339(start)}
    st.update(status or {})
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u-1"}, "spec": spec,
            "status": st}


def ctr(name, limit=None):
    c = {"name": name, "image": "busybox"}
    if limit is not None:
        c["resources"] = {"limits": {"ephemeral-storage": limit}}
    return c


def view(runs, now=T, verdict=None, killing=()):
    return ContainersView(now=now, host_ip="192.168.0.2", pod_ip="10.4.0.7", runs=runs,
                          last={}, waiting={}, probes={}, killing=frozenset(killing),
                          verdict=verdict)


RUNNING = Run(restart=0, started_at=T - 10, exit_code=None)
KILLED = Run(restart=0, started_at=T - 10, exit_code=137, reason="Error", finished_at=T - 1)


# -- activeDeadlineSeconds ---------------------------------------------------------------------
def test_the_deadline_counts_from_start_time_and_passes_at_exactly_the_deadline():
    p = pod(deadline=30, start=T - 30)
    assert eviction.deadline_verdict(p, T - 30, T - 0.5) is None
    v = eviction.deadline_verdict(p, T - 30, T)
    assert (v.reason, v.message, v.grace, v.event_type) == (
        "DeadlineExceeded", "Pod was active on the node longer than the specified deadline",
        None, "Normal")
    assert eviction.deadline_verdict(pod(), T - 30, T + 10_000) is None     # none set


def test_before_the_deadline_the_planner_asks_to_look_again_at_it():
    out = plan(pod(deadline=30, start=T - 10), view({"c": RUNNING}))
    assert out.recheck is not None and out.recheck <= T + 20
    assert "reason" not in out.status and not any(isinstance(a, KillContainer)
                                                  for a in out.actions)


def test_past_the_deadline_containers_are_killed_with_the_pod_grace_and_phase_waits():
    out = plan(pod(deadline=5, start=T - 10, grace=7), view({"c": RUNNING}))
    kills = [a for a in out.actions if isinstance(a, KillContainer)]
    assert kills == [KillContainer("c", 7, "Stopping container c")]
    assert ContainerEvent("Normal", "DeadlineExceeded",
                          eviction.DEADLINE_MESSAGE) in out.actions
    # the reason shows at once; Failed only once nothing runs any more
    assert out.status["reason"] == "DeadlineExceeded"
    assert out.status["phase"] == "Running"
    done = plan(pod(deadline=5, start=T - 10, status={"reason": "DeadlineExceeded"}),
                view({"c": KILLED}))
    assert done.status["phase"] == "Failed"
    assert done.status["message"] == eviction.DEADLINE_MESSAGE
    assert not any(isinstance(a, ContainerEvent) and a.reason == "DeadlineExceeded"
                   for a in done.actions)           # the status says so already: no new event


def test_a_failed_container_under_always_is_not_restarted_past_the_deadline():
    out = plan(pod(deadline=5, start=T - 10), view({"c": KILLED}))
    assert not [a for a in out.actions if type(a).__name__ == "StartContainer"]
    assert out.status["phase"] == "Failed"


# -- local storage -----------------------------------------------------------------------------
def test_an_empty_dir_over_its_size_limit_is_reported_first_with_upstream_words():
    p = pod(ctr("c", "10Mi"), volumes=[{"name": "d", "emptyDir": {"sizeLimit": "5Mi"}},
                                      {"name": "m", "emptyDir": {"medium": "Memory",
                                                                 "sizeLimit": "1Mi"}}])
    assert eviction.disk_empty_dirs(p) == {"d": "5Mi"}     # tmpfs caps itself
    v = eviction.storage_verdict(p, StorageUse({"d": 6 * MI}, {"c": 2 * MI}))
    # no DisruptionTarget: upstream's local-storage evictions set no condition
    assert (v.reason, v.message, v.grace, v.disruption) == (
        "Evicted", 'Usage of EmptyDir volume "d" exceeds the limit "5Mi". ', 2, False)
    assert eviction.storage_verdict(p, StorageUse({"d": 5 * MI}, {"c": 0})) is None


def test_the_pod_limit_is_the_sum_of_its_containers_and_counts_empty_dirs():
    p = pod(ctr("a", "2Mi"), ctr("b", "3Mi"), ctr("free"),
            volumes=[{"name": "d", "emptyDir": {}}])
    assert eviction.pod_storage_limit(p)[0] == 5 * MI
    v = eviction.storage_verdict(p, StorageUse({"d": 4 * MI}, {"a": MI, "b": MI // 2}))
    assert v.message == ("Pod ephemeral local storage usage exceeds the total limit of "
                         "containers 5Mi. ")
    assert eviction.storage_verdict(p, StorageUse({"d": 3 * MI}, {"a": MI})) is None


def test_an_init_container_limit_counts_when_larger_than_the_apps():
    p = pod(ctr("a", "1Mi"), inits=[ctr("i", "4Mi")])
    assert eviction.pod_storage_limit(p)[0] == 4 * MI


def test_one_container_over_its_own_limit_within_the_pod_total():
    p = pod(ctr("a", "2Mi"), ctr("b", "10Mi"))
    v = eviction.storage_verdict(p, StorageUse({}, {"a": 3 * MI, "b": 0}))
    assert v.message == 'Container a exceeded its local ephemeral storage limit "2Mi". '


def test_limits_print_canonical_a_zero_size_limit_is_none_and_init_containers_are_not_checked():
    p = pod(ctr("c", "2048Ki"), volumes=[{"name": "d", "emptyDir": {"sizeLimit": "5120Ki"}},
                                         {"name": "z", "emptyDir": {"sizeLimit": "0"}}],
            inits=[ctr("i", "100Mi")])
    assert eviction.disk_empty_dirs(p) == {"d": "5Mi"}
    v = eviction.storage_verdict(p, StorageUse({"d": 6 * MI}, {}))
    assert v.message == 'Usage of EmptyDir volume "d" exceeds the limit "5Mi". '
    p2 = pod(ctr("a", "2048Ki"), ctr("b", "10Mi"), inits=[ctr("i", "1Ki")])
    v = eviction.storage_verdict(p2, StorageUse({}, {"a": 3 * MI, "b": 0, "i": 4096}))
    assert v.message == 'Container a exceeded its local ephemeral storage limit "2Mi". '


def test_nothing_to_measure_without_limits():
    assert not eviction.measures_storage(pod(ctr("c"), volumes=[{"name": "d", "emptyDir": {}}]))
    assert eviction.measures_storage(pod(ctr("c", "1Gi")))


def test_an_eviction_kills_at_the_minimum_grace_and_adds_disruption_target_when_asked():
    """(node-pressure evictions carry the condition; local-storage ones do not)"""
    v = Verdict("Evicted", "msg. ", grace=2, disruption=True)
    out = plan(pod(grace=60), view({"c": RUNNING}, verdict=v))
    assert [a for a in out.actions if isinstance(a, KillContainer)] == \
        [KillContainer("c", 2, "Stopping container c")]
    assert ContainerEvent("Warning", "Evicted", "msg. ") in out.actions
    cond = [c for c in out.status["conditions"] if c["type"] == "DisruptionTarget"]
    assert cond and (cond[0]["status"], cond[0]["reason"], cond[0]["message"]) == \
        ("True", "TerminationByKubelet", "msg. ")
    # written once, the condition is not added twice, and the pod goes Failed once stopped
    again = plan(pod(status={"reason": "Evicted", "message": "msg. ",
                             "conditions": out.status["conditions"]}), view({"c": KILLED}))
    assert [c["type"] for c in again.status["conditions"]].count("DisruptionTarget") == 1
    assert again.status["phase"] == "Failed" and again.status["reason"] == "Evicted"
