"""The real node agent's pod lifecycle as a kubectl user sees it, against one fresh `k1s up`
per module: restarts with back-off (CrashLoopBackOff, lastState, `logs --previous`), pods that
finish (Completed/Error), init containers in order, graceful termination (TERM, grace period,
preStop), an image the catalog does not know, OOMKilled, and pod addresses that reach each
other.

Every pod here is a real process tree in its own namespaces, so the module needs root. Each
test works in its own namespace; the cluster is shared to keep the module fast. Waits poll
with generous timeouts (2 shared cores): they bound how long a test may hang, never how fast
the agent must be.
"""

from __future__ import annotations

import ipaddress
import json
import os
import time
import uuid

import pytest

import e2e_util
from k1s_harness import Kubectl

NS_PREFIX = "nl-"

# the module's cluster, kubectl and namespace fixtures, helpers, and `pytestmark` (root only)
from node_util import *  # noqa: F401,F403,E402


def host_has_process(marker: str) -> bool:
    """Whether any process on the machine has `marker` in its command line."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if marker.encode() in f.read():
                    return True
        except OSError:
            continue
    return False


# --- restarts -------------------------------------------------------------------------------

def test_failing_container_backs_off_in_crashloop_with_last_state_and_previous_logs(k, ns):
    create(k, ns, pod("crash", container("c", "echo output-of-a-run; exit 1")))

    def crashlooping():
        r = get_row(k, ns, "crash")
        assert r["STATUS"] == "CrashLoopBackOff" and restarts(r["RESTARTS"]) >= 1, r
        return r
    eventually(crashlooping)
    st = cstatus(pod_json(k, ns, "crash"), "c")
    assert st["restartCount"] >= 1
    term = st["lastState"]["terminated"]
    assert (term["exitCode"], term["reason"]) == (1, "Error"), st
    assert st["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert not st["ready"]

    def backoff_event():
        evs = [e for e in events(k, ns, "crash") if e["reason"] == "BackOff"]
        assert evs and evs[0]["type"] == "Warning", events(k, ns, "crash")
        assert "Back-off restarting failed container c" in evs[0]["message"]
    eventually(backoff_event)
    prev = k("logs", "crash", "-n", ns, "--previous")
    assert prev.returncode == 0 and "output-of-a-run" in prev.stdout, prev


def test_previous_logs_are_the_run_before_the_current_one(k, ns):
    """Each run counts itself in an emptyDir; while the third run is alive, `--previous` is
    the second run's output and the plain logs the third's."""
    script = ("n=$(cat /state/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /state/n; "
              "echo run-$n; if [ $n -lt 3 ]; then exit 1; fi; sleep 3600")
    create(k, ns, pod("count", container(
        "c", script, volumeMounts=[{"name": "state", "mountPath": "/state"}]),
        volumes=[{"name": "state", "emptyDir": {}}]))

    def third_run():
        st = cstatus(pod_json(k, ns, "count"), "c")
        assert st.get("restartCount") == 2 and "running" in st.get("state", {}), st
    eventually(third_run)
    assert k.ok("logs", "count", "-n", ns).split() == ["run-3"]
    assert k.ok("logs", "count", "-n", ns, "--previous").split() == ["run-2"]


@pytest.mark.parametrize("restart,code,status,phase", [
    ("Never", 0, "Completed", "Succeeded"),
    ("Never", 3, "Error", "Failed"),
    ("OnFailure", 0, "Completed", "Succeeded"),
])
def test_a_pod_that_finishes_shows_its_outcome(k, ns, restart, code, status, phase):
    create(k, ns, pod("done", container("c", f"echo bye; exit {code}"), restart=restart))
    r = status_is(k, ns, "done", status)
    assert r["READY"] == "0/1" and restarts(r["RESTARTS"]) == 0, r
    p = pod_json(k, ns, "done")
    assert p["status"]["phase"] == phase
    st = cstatus(p, "c")
    term = st["state"]["terminated"]
    assert term["exitCode"] == code
    assert term["reason"] == ("Completed" if code == 0 else "Error")
    assert st["restartCount"] == 0
    assert k.ok("logs", "done", "-n", ns).strip() == "bye"


def test_on_failure_restarts_a_failing_container(k, ns):
    create(k, ns, pod("onf", container("c", "exit 2"), restart="OnFailure"))

    def restarted():
        st = cstatus(pod_json(k, ns, "onf"), "c")
        assert st.get("restartCount", 0) >= 1, st
        assert st["lastState"]["terminated"]["exitCode"] == 2
    eventually(restarted)
    assert pod_json(k, ns, "onf")["status"]["phase"] in ("Running", "Pending")


# --- init containers ------------------------------------------------------------------------

def test_init_containers_run_in_order_before_the_app(k, ns, tmp_path):
    """Each init container waits for a go file the test drops in a hostPath, so every step
    (Init:0/2, Init:1/2, Running) is seen by kubectl however slow the machine is."""
    d, marks, mark_mount = _marks(tmp_path)
    vol = [{"name": "work", "mountPath": "/work"}, mark_mount]

    def step(name):
        return container(name, f"until [ -e /marks/go-{name} ]; do sleep 1; done; "
                         f"echo {name} >> /work/order", volumeMounts=vol)
    create(k, ns, pod("init", container("app", "cat /work/order; sleep 3600", volumeMounts=vol),
                      initContainers=[step("first"), step("second")],
                      volumes=[{"name": "work", "emptyDir": {}}, marks]))
    r = status_is(k, ns, "init", "Init:0/2")
    assert r["READY"] == "0/1"
    open(os.path.join(d, "go-first"), "w").close()
    status_is(k, ns, "init", "Init:1/2")
    p = pod_json(k, ns, "init")
    assert cstatus(p, "first", "initContainerStatuses")["state"]["terminated"]["reason"] == \
        "Completed"
    assert "running" in cstatus(p, "second", "initContainerStatuses")["state"]
    assert "running" not in cstatus(p, "app").get("state", {})
    open(os.path.join(d, "go-second"), "w").close()
    running(k, ns, "init")
    eventually(lambda: _assert_equal(k.ok("logs", "init", "-n", ns).split(),
                                     ["first", "second"]))
    p = pod_json(k, ns, "init")
    for name in ("first", "second"):
        term = cstatus(p, name, "initContainerStatuses")["state"]["terminated"]
        assert (term["exitCode"], term["reason"]) == (0, "Completed")
    conds = {c["type"]: c["status"] for c in p["status"]["conditions"]}
    assert conds["Initialized"] == "True" and conds["Ready"] == "True"


def _assert_equal(a, b):
    assert a == b, (a, b)


def test_a_failing_init_container_fails_a_never_restart_pod(k, ns):
    create(k, ns, pod("badinit", container("app", "echo app-ran; sleep 3600"), restart="Never",
                      initContainers=[container("setup", "exit 7")]))
    status_is(k, ns, "badinit", "Init:Error")
    p = pod_json(k, ns, "badinit")
    assert p["status"]["phase"] == "Failed"
    term = cstatus(p, "setup", "initContainerStatuses")["state"]["terminated"]
    assert (term["exitCode"], term["reason"]) == (7, "Error")
    app = cstatus(p, "app")
    assert "running" not in app.get("state", {}) and app.get("restartCount", 0) == 0, app
    conds = {c["type"]: c["status"] for c in p["status"]["conditions"]}
    assert conds["Initialized"] == "False"


def test_a_failing_init_container_is_restarted_under_restart_always(k, ns):
    create(k, ns, pod("initloop", container("app", "echo app-ran; sleep 3600"),
                      initContainers=[container("setup", "echo setup-failed; exit 1")]))
    status_is(k, ns, "initloop", "Init:CrashLoopBackOff")
    p = pod_json(k, ns, "initloop")
    init = cstatus(p, "setup", "initContainerStatuses")
    assert init["restartCount"] >= 1 and init["lastState"]["terminated"]["exitCode"] == 1
    app = cstatus(p, "app")
    assert "running" not in app.get("state", {}) and app.get("restartCount", 0) == 0, app
    assert p["status"]["phase"] == "Pending"
    assert "setup-failed" in k.ok("logs", "initloop", "-n", ns, "-c", "setup", "--previous")


def test_a_sidecar_init_container_runs_beside_the_app(k, ns):
    side = container("side", "while true; do echo side-tick; sleep 2; done",
                     restartPolicy="Always")
    create(k, ns, pod("sidecar", container("app", "sleep 3600"), initContainers=[side]))
    r = running(k, ns, "sidecar")
    assert r["READY"] == "2/2", r
    p = pod_json(k, ns, "sidecar")
    assert "running" in cstatus(p, "side", "initContainerStatuses")["state"]
    assert "running" in cstatus(p, "app")["state"]
    eventually(lambda: _assert_equal("side-tick" in k.ok("logs", "sidecar", "-n", ns,
                                                         "-c", "side"), True))


def test_a_container_exiting_zero_under_restart_always_is_restarted(k, ns):
    create(k, ns, pod("again", container("c", "echo once; exit 0")))

    def restarted():
        st = cstatus(pod_json(k, ns, "again"), "c")
        assert st.get("restartCount", 0) >= 1, st
        term = st["lastState"]["terminated"]
        assert (term["exitCode"], term["reason"]) == (0, "Completed"), st
    eventually(restarted)
    assert pod_json(k, ns, "again")["status"]["phase"] == "Running"


def test_a_liveness_failure_under_restart_never_fails_the_pod(k, ns):
    c = container("c", "sleep 3600", livenessProbe={
        "exec": {"command": ["false"]}, "periodSeconds": 1, "failureThreshold": 1})
    create(k, ns, pod("neverlive", c, restart="Never", terminationGracePeriodSeconds=1))
    status_is(k, ns, "neverlive", "Error")
    p = pod_json(k, ns, "neverlive")
    assert p["status"]["phase"] == "Failed"
    st = cstatus(p, "c")
    assert st["restartCount"] == 0 and st["state"]["terminated"]["exitCode"] == 137, st
    killing = [e for e in events(k, ns, "neverlive") if e["reason"] == "Killing"]
    assert killing and killing[0]["message"] == "Container c failed liveness probe", killing


def test_run_as_user_and_group_are_honoured(k, ns):
    create(k, ns, pod("user", container("c", "id -u; id -g"), restart="Never",
                      securityContext={"runAsUser": 1000, "runAsGroup": 3000}))
    status_is(k, ns, "user", "Completed")
    assert k.ok("logs", "user", "-n", ns).split() == ["1000", "3000"]


def test_run_as_non_root_refuses_a_container_that_would_run_as_root(k, ns):
    create(k, ns, pod("nonroot", container("c", "sleep 3600"),
                      securityContext={"runAsNonRoot": True}))

    def refused():
        st = cstatus(pod_json(k, ns, "nonroot"), "c")
        assert st["state"]["waiting"]["reason"] == "CreateContainerConfigError", st
        return st
    st = eventually(refused)
    assert st["state"]["waiting"]["message"].startswith(
        'container has runAsNonRoot and image will run as root (pod: "nonroot_'), st
    assert get_row(k, ns, "nonroot")["STATUS"] == "CreateContainerConfigError"


def test_exec_runs_as_the_containers_user_and_groups(k, ns):
    c = container("c", "sleep 3600", securityContext={"runAsUser": 1000, "runAsGroup": 3000,
                                                      "allowPrivilegeEscalation": False})
    create(k, ns, pod("execuser", c, securityContext={"supplementalGroups": [4000]}))
    running(k, ns, "execuser")
    out = k.ok("exec", "execuser", "-n", ns, "--", "sh", "-c",
               "id -u; id -G; grep NoNewPrivs /proc/self/status")
    assert out.split() == ["1000", "3000", "4000", "NoNewPrivs:", "1"], out


def test_read_only_root_filesystem_refuses_writes(k, ns):
    c = container("c", "touch /x-written && echo wrote || echo refused",
                  securityContext={"readOnlyRootFilesystem": True})
    create(k, ns, pod("rorfs", c, restart="Never"))
    status_is(k, ns, "rorfs", "Completed")
    # touch's complaint (stderr) is in the log too, as upstream: the write failed with EROFS.
    # stdout and stderr are two pipes: their relative order in the log is not guaranteed
    assert sorted(k.ok("logs", "rorfs", "-n", ns).splitlines()) == [
        "refused", "touch: /x-written: Read-only file system"]


def test_the_termination_message_file_becomes_the_terminated_message(k, ns):
    create(k, ns, pod("tmsg", container("c", "echo bye-message > /dev/termination-log; exit 1"),
                      restart="Never"))
    status_is(k, ns, "tmsg", "Error")
    term = cstatus(pod_json(k, ns, "tmsg"), "c")["state"]["terminated"]
    assert term.get("message") == "bye-message\n", term


def test_fallback_to_logs_on_error_puts_the_log_tail_in_the_message(k, ns):
    c = container("c", "echo from-logs; exit 2", terminationMessagePolicy="FallbackToLogsOnError")
    create(k, ns, pod("tmsglog", c, restart="Never"))
    status_is(k, ns, "tmsglog", "Error")
    term = cstatus(pod_json(k, ns, "tmsglog"), "c")["state"]["terminated"]
    assert term.get("message") == "from-logs\n", term


def test_active_deadline_seconds_fails_the_pod(k, ns):
    """kubelet's activeDeadlineHandler: past the deadline (from startTime) the containers are
    stopped with the pod's grace period, then the pod is Failed with reason DeadlineExceeded.
    kubectl's STATUS column then shows the killed container's reason (Error), as it does
    for upstream's pods."""
    create(k, ns, pod("deadline", container("c", "sleep 3600"), activeDeadlineSeconds=3,
                      terminationGracePeriodSeconds=1))

    def failed():
        p = pod_json(k, ns, "deadline")
        assert p["status"].get("phase") == "Failed", p["status"]
        return p
    p = eventually(failed, timeout=60)
    assert p["status"]["reason"] == "DeadlineExceeded"
    assert p["status"]["message"] == \
        "Pod was active on the node longer than the specified deadline"
    term = cstatus(p, "c")["state"]["terminated"]
    assert term["exitCode"] == 137 and cstatus(p, "c")["restartCount"] == 0, term
    assert get_row(k, ns, "deadline")["STATUS"] == "Error"
    evs = [e for e in events(k, ns, "deadline") if e["reason"] == "DeadlineExceeded"]
    assert len(evs) == 1 and evs[0]["type"] == "Normal", evs


def test_a_post_start_hook_runs_in_the_container(k, ns):
    c = container("c", "until [ -e /tmp/hook ]; do sleep 1; done; cat /tmp/hook; sleep 3600",
                  lifecycle={"postStart": {"exec": {"command": [
                      "sh", "-c", "echo post-start-ran > /tmp/hook"]}}})
    create(k, ns, pod("poststart", c))
    running(k, ns, "poststart")
    eventually(lambda: _assert_equal(k.ok("logs", "poststart", "-n", ns), "post-start-ran\n"),
               timeout=30)


def test_a_post_start_hook_that_never_ends_holds_only_its_container(k, ns):
    """kubelet shows the container as being created until its postStart hook ends; such a
    hook must not hold the node: another pod starts meanwhile, and the hung pod is deleted
    within its grace period, the hook's command killed with it."""
    marker = f"hook-{uuid.uuid4().hex[:6]}"
    c = container("c", "sleep 3600", lifecycle={"postStart": {"exec": {"command": [
        "sh", "-c", f"sleep 3600; echo {marker}"]}}})
    create(k, ns, pod("hung", c, terminationGracePeriodSeconds=1))
    eventually(lambda: _assert_equal(host_has_process(marker), True))
    create(k, ns, pod("other", container("c", "sleep 3600")))
    running(k, ns, "other")
    r = get_row(k, ns, "hung")
    assert (r["READY"], r["STATUS"]) == ("0/1", "ContainerCreating"), r
    p = k("delete", "pod", "hung", "-n", ns, "--timeout=60s")
    assert p.returncode == 0, p
    eventually(lambda: _assert_equal(host_has_process(marker), False))


def test_a_failing_post_start_hook_kills_and_restarts_the_container(k, ns):
    """kubelet: the hook failing is a FailedPostStartHook event (without the hook's output,
    which may hold secrets) and the container is killed, then restarted by its policy."""
    c = container("c", "sleep 3600", lifecycle={"postStart": {"exec": {"command": [
        "sh", "-c", "echo secret-output; exit 3"]}}})
    create(k, ns, pod("badhook", c, terminationGracePeriodSeconds=1))

    def restarted():
        st = cstatus(pod_json(k, ns, "badhook"), "c")
        assert st.get("restartCount", 0) >= 1, st
    eventually(restarted, timeout=90)
    evs = [e for e in events(k, ns, "badhook") if e["reason"] == "FailedPostStartHook"]
    assert evs and evs[0]["type"] == "Warning" and evs[0]["message"] == "PostStartHook failed"
    killing = [e for e in events(k, ns, "badhook") if e["reason"] == "Killing"]
    assert killing and killing[0]["message"] == "FailedPostStartHook", killing


def test_share_process_namespace_lets_containers_see_each_other(k, ns):
    marker = f"seen-{uuid.uuid4().hex[:6]}"
    a = container("a")
    # not a lone command: the shell would exec it (dash does), and its $0 would vanish
    a["command"] = ["sh", "-c", "sleep 3600; exit 0", marker]
    create(k, ns, pod("sharepid", a, container("b", "sleep 3600"), shareProcessNamespace=True))
    running(k, ns, "sharepid")
    ps = k.ok("exec", "sharepid", "-n", ns, "-c", "b", "--", "ps", "-o", "args")
    assert marker in ps, ps


# --- termination ----------------------------------------------------------------------------

def _marks(tmp_path) -> tuple[str, dict, dict]:
    d = str(tmp_path / "marks")
    os.makedirs(d)
    return (d, {"name": "marks", "hostPath": {"path": d, "type": "Directory"}},
            {"name": "marks", "mountPath": "/marks"})


def test_delete_sends_term_to_a_trapping_container_which_exits_cleanly(k, ns, tmp_path):
    d, vol, mount = _marks(tmp_path)
    script = ("trap 'echo term >> /marks/log; exit 0' TERM; echo up > /marks/up; "
              "while true; do sleep 1; done")
    create(k, ns, pod("trap", container("c", script, volumeMounts=[mount]), volumes=[vol],
                      terminationGracePeriodSeconds=60))
    running(k, ns, "trap")
    eventually(lambda: _assert_equal(os.path.exists(os.path.join(d, "up")), True))
    p = k("delete", "pod", "trap", "-n", ns, "--timeout=50s")
    assert p.returncode == 0, p
    assert k("get", "pod", "trap", "-n", ns).returncode != 0      # gone, well before 60 s
    with open(os.path.join(d, "log")) as f:
        assert f.read().split() == ["term"]


def test_a_container_ignoring_term_is_killed_after_its_grace_period(k, ns, tmp_path):
    d, vol, mount = _marks(tmp_path)
    marker = f"ignores-term-{uuid.uuid4().hex[:8]}"
    # `$0` of `sh -c` is the marker: the shell's command line names it on the host
    script = "trap '' TERM; echo up > /marks/up; while true; do sleep 1; done"
    c = container("c", volumeMounts=[mount])
    c["command"] = ["sh", "-c", script, marker]
    create(k, ns, pod("stubborn", c, volumes=[vol], terminationGracePeriodSeconds=2))
    running(k, ns, "stubborn")
    eventually(lambda: _assert_equal(os.path.exists(os.path.join(d, "up")), True))
    assert host_has_process(marker)
    p = k("delete", "pod", "stubborn", "-n", ns, "--timeout=60s")
    assert p.returncode == 0, p
    assert k("get", "pod", "stubborn", "-n", ns).returncode != 0
    eventually(lambda: _assert_equal(host_has_process(marker), False), timeout=30)


def test_pre_stop_hook_runs_before_term(k, ns, tmp_path):
    d, vol, mount = _marks(tmp_path)
    script = ("trap 'echo term >> /marks/log; exit 0' TERM; echo up > /marks/up; "
              "while true; do sleep 1; done")
    c = container("c", script, volumeMounts=[mount],
                  lifecycle={"preStop": {"exec": {"command": [
                      "sh", "-c", "echo prestop >> /marks/log"]}}})
    create(k, ns, pod("hook", c, volumes=[vol], terminationGracePeriodSeconds=30))
    running(k, ns, "hook")
    eventually(lambda: _assert_equal(os.path.exists(os.path.join(d, "up")), True))
    p = k("delete", "pod", "hook", "-n", ns, "--timeout=60s")
    assert p.returncode == 0, p
    with open(os.path.join(d, "log")) as f:
        assert f.read().split() == ["prestop", "term"]


def test_a_pod_being_deleted_shows_terminating_and_a_shorter_grace_period_ends_it(k, ns,
                                                                                  tmp_path):
    """kubectl shows Terminating while the grace period runs; a second delete with a shorter
    grace period cuts it short, as kubelet honours the shorter deadline."""
    d, vol, mount = _marks(tmp_path)
    marker = f"long-grace-{uuid.uuid4().hex[:8]}"
    c = container("c", volumeMounts=[mount])
    c["command"] = ["sh", "-c", "trap '' TERM; echo up > /marks/up; while true; do sleep 1; done",
                    marker]
    create(k, ns, pod("slow", c, volumes=[vol], terminationGracePeriodSeconds=600))
    running(k, ns, "slow")
    eventually(lambda: _assert_equal(os.path.exists(os.path.join(d, "up")), True))
    k.ok("delete", "pod", "slow", "-n", ns, "--wait=false")
    status_is(k, ns, "slow", "Terminating")
    assert host_has_process(marker)           # TERM is ignored: it runs on inside its grace
    p = k("delete", "pod", "slow", "-n", ns, "--grace-period=1", "--timeout=60s")
    assert p.returncode == 0, p
    assert k("get", "pod", "slow", "-n", ns).returncode != 0
    eventually(lambda: _assert_equal(host_has_process(marker), False), timeout=30)


def test_a_running_pod_has_its_conditions_identity_and_working_dir(k, ns):
    create(k, ns, pod("who", container("c", "pwd; hostname; sleep 3600", workingDir="/tmp")))
    running(k, ns, "who")
    p = pod_json(k, ns, "who")
    conds = {c["type"]: c["status"] for c in p["status"]["conditions"]}
    for cond in ("PodScheduled", "Initialized", "ContainersReady", "Ready"):
        assert conds.get(cond) == "True", p["status"]["conditions"]
    assert p["status"]["phase"] == "Running"
    assert p["status"]["startTime"] and p["status"]["hostIP"] and p["status"]["podIP"]
    st = cstatus(p, "c")
    assert st["ready"] and st["started"] and st["state"]["running"]["startedAt"]
    eventually(lambda: _assert_equal(k.ok("logs", "who", "-n", ns).split(), ["/tmp", "who"]))
    hosts = k.ok("exec", "who", "-n", ns, "--", "cat", "/etc/hosts")
    assert any(ln.split()[:2] == [p["status"]["podIP"], "who"] for ln in hosts.splitlines()
               if ln.strip() and not ln.startswith("#")), hosts


def test_hostname_and_subdomain_give_the_pod_its_fqdn_and_cluster_dns(k, ns):
    spec = pod("named", container("c", "hostname; sleep 3600"), hostname="h1", subdomain="sub")
    create(k, ns, spec)
    running(k, ns, "named")
    ip = pod_json(k, ns, "named")["status"]["podIP"]
    eventually(lambda: _assert_equal(k.ok("logs", "named", "-n", ns).split(), ["h1"]))
    hosts = k.ok("exec", "named", "-n", ns, "--", "cat", "/etc/hosts")
    entries = [ln.split() for ln in hosts.splitlines() if ln.strip() and not ln.startswith("#")]
    assert [ip, f"h1.sub.{ns}.svc.cluster.local", "h1"] in entries, hosts
    resolv = k.ok("exec", "named", "-n", ns, "--", "cat", "/etc/resolv.conf").splitlines()
    # the cluster's search domains first (the node's own, if any, follow them)
    assert any(ln.startswith(f"search {ns}.svc.cluster.local svc.cluster.local cluster.local")
               for ln in resolv), resolv
    assert any(ln.startswith("nameserver ") for ln in resolv), resolv


def test_dns_policy_none_and_default_shape_resolv_conf(k, ns):
    """dnsPolicy None takes only spec.dnsConfig; Default is the node's own resolv.conf; a
    ClusterFirst pod's dnsConfig options override the default ndots."""
    none = container("c", "cat /etc/resolv.conf; sleep 3600")
    create(k, ns, pod("dnsnone", none, dnsPolicy="None", dnsConfig={
        "nameservers": ["192.0.2.53"], "searches": ["corp.example"],
        "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}))
    create(k, ns, pod("dnsdefault", container("c", "cat /etc/resolv.conf; sleep 3600"),
                      dnsPolicy="Default"))
    create(k, ns, pod("dnsopts", container("c", "cat /etc/resolv.conf; sleep 3600"),
                      dnsConfig={"options": [{"name": "ndots", "value": "1"}]}))
    for name in ("dnsnone", "dnsdefault", "dnsopts"):
        running(k, ns, name)
    eventually(lambda: _assert_equal(k.ok("logs", "dnsnone", "-n", ns).splitlines(), [
        "search corp.example", "nameserver 192.0.2.53", "options ndots:2 edns0"]))
    with open("/etc/resolv.conf") as f:
        node_servers = [ln.split()[1] for ln in f if ln.startswith("nameserver")]
    eventually(lambda: _assert_equal(
        [ln.split()[1] for ln in k.ok("logs", "dnsdefault", "-n", ns).splitlines()
         if ln.startswith("nameserver")], node_servers[:3]))
    eventually(lambda: _assert_equal(
        [ln for ln in k.ok("logs", "dnsopts", "-n", ns).splitlines()
         if ln.startswith("options")], ["options ndots:1"]))
    # the cluster's server plus three of the pod's is past kubelet's limit of three (the API
    # allows three in dnsConfig): trimmed, and a DNSConfigForming warning says to what
    create(k, ns, pod("dnsmany", container("c", "sleep 3600"), dnsConfig={
        "nameservers": ["192.0.2.1", "192.0.2.2", "192.0.2.3"]}))
    running(k, ns, "dnsmany")
    servers = k.ok("exec", "dnsmany", "-n", ns, "--", "cat", "/etc/resolv.conf").split()
    assert servers.count("nameserver") == 3 and "192.0.2.3" not in servers, servers
    evs = eventually(lambda: [e for e in events(k, ns, "dnsmany")
                              if e["reason"] == "DNSConfigForming"] or
                     _assert_equal("no DNSConfigForming event", ""))
    assert evs[0]["type"] == "Warning" and evs[0]["message"].endswith(
        "the applied nameserver line is: 10.96.0.10 192.0.2.1 192.0.2.2"), evs


def test_a_pre_stop_hook_longer_than_the_grace_period_is_cut_short(k, ns, tmp_path):
    d, vol, mount = _marks(tmp_path)
    marker = f"hook-outlives-grace-{uuid.uuid4().hex[:8]}"
    c = container("c", volumeMounts=[mount], lifecycle={"preStop": {"exec": {"command": [
        "sh", "-c", "echo prestop >> /marks/log; sleep 600"]}}})
    c["command"] = ["sh", "-c", "trap '' TERM; echo up > /marks/up; while true; do sleep 1; done",
                    marker]
    create(k, ns, pod("longhook", c, volumes=[vol], terminationGracePeriodSeconds=3))
    running(k, ns, "longhook")
    eventually(lambda: _assert_equal(os.path.exists(os.path.join(d, "up")), True))
    p = k("delete", "pod", "longhook", "-n", ns, "--timeout=60s")
    assert p.returncode == 0, p
    assert k("get", "pod", "longhook", "-n", ns).returncode != 0
    eventually(lambda: _assert_equal(host_has_process(marker), False), timeout=30)
    with open(os.path.join(d, "log")) as f:
        assert f.read().split() == ["prestop"]


# --- bad images -----------------------------------------------------------------------------

def test_unknown_image_without_command_waits_and_the_node_keeps_working(k, ns):
    create(k, ns, pod("unknown", container("c", image="example.com/not/in-catalog:1")))
    status_is(k, ns, "unknown", "ImageNotKnown")
    st = cstatus(pod_json(k, ns, "unknown"), "c")
    waiting = st["state"]["waiting"]
    assert waiting["reason"] == "ImageNotKnown"
    assert "example.com/not/in-catalog:1" in waiting["message"]
    assert st["restartCount"] == 0 and not st["ready"]
    # the agent is unharmed: the next pod starts, and the first one still waits
    create(k, ns, pod("after", container("c", "sleep 3600")))
    running(k, ns, "after")
    assert get_row(k, ns, "unknown")["STATUS"] == "ImageNotKnown"
    d = k("delete", "pod", "unknown", "-n", ns, "--timeout=60s")
    assert d.returncode == 0, d
    assert k("get", "pod", "unknown", "-n", ns).returncode != 0


def test_unknown_image_reports_no_started_container(k, ns):
    create(k, ns, pod("unknown", container("c", image="example.com/not/in-catalog:1")))
    status_is(k, ns, "unknown", "ImageNotKnown")
    time.sleep(2)          # events are posted after the status; give them a moment
    reasons = [e["reason"] for e in events(k, ns, "unknown")]
    assert "Started" not in reasons and "Created" not in reasons, reasons
    warn = [e for e in events(k, ns, "unknown") if e["type"] == "Warning"]
    assert warn and any("in-catalog" in e["message"] or "ImageNotKnown" in e["message"]
                        for e in warn), warn


# --- limits ---------------------------------------------------------------------------------

def _memory_cgroups_work() -> str | None:
    """None when a memory limit can be set on a child cgroup of ours, else why not."""
    base = "/sys/fs/cgroup"
    if os.path.exists(os.path.join(base, "cgroup.controllers")):
        with open(os.path.join(base, "cgroup.controllers")) as f:
            if "memory" not in f.read().split():
                return "cgroup v2 without the memory controller"
        own, limit_file = "", "memory.max"
        with open("/proc/self/cgroup") as f:
            for ln in f:
                if ln.startswith("0::"):
                    own = ln.split("::", 1)[1].strip()
        root = base + own
    else:
        if not os.path.isdir(os.path.join(base, "memory")):
            return "no memory cgroup hierarchy"
        own, limit_file = "/", "memory.limit_in_bytes"
        with open("/proc/self/cgroup") as f:
            for ln in f:
                _n, ctls, path = ln.rstrip("\n").split(":", 2)
                if "memory" in ctls.split(","):
                    own = path
        root = os.path.join(base, "memory") + own
    probe = os.path.join(root, f"k1s-test-probe-{os.getpid()}")
    try:
        os.mkdir(probe)
        try:
            with open(os.path.join(probe, limit_file), "w") as f:
                f.write(str(64 << 20))
        finally:
            os.rmdir(probe)
    except OSError as e:
        return f"cannot set a memory limit in {root}: {e}"
    return None


def test_a_container_over_its_memory_limit_is_oom_killed(k, ns):
    why = _memory_cgroups_work()
    if why:
        pytest.skip(f"this machine's cgroups do not enforce memory: {why}")
    c = container("c", "x=$(head -c 200m /dev/zero | tr '\\0' a); echo survived")
    c["resources"] = {"limits": {"memory": "32Mi"}}
    create(k, ns, pod("hog", c, restart="Never"))
    status_is(k, ns, "hog", "OOMKilled")
    p = pod_json(k, ns, "hog")
    term = cstatus(p, "c")["state"]["terminated"]
    assert term["reason"] == "OOMKilled" and term["exitCode"] == 137, term
    assert p["status"]["phase"] == "Failed"
    assert "survived" not in k.ok("logs", "hog", "-n", ns)


# --- network --------------------------------------------------------------------------------

def test_pods_get_addresses_from_the_pod_cidr_and_reach_each_other(k, ns):
    create(k, ns, pod("web", container("nginx", image="nginx")))
    create(k, ns, pod("client", container("c", "sleep 3600")))
    web = running(k, ns, "web")
    running(k, ns, "client")
    cidr = ipaddress.ip_network("10.244.0.0/24")
    ips = {}
    for name in ("web", "client"):
        r = get_row(k, ns, name, "-o", "wide")
        ips[name] = ipaddress.ip_address(r["IP"])
        assert ips[name] in cidr, r
        assert r["NODE"] not in ("", "<none>"), r
    assert ips["web"] != ips["client"]
    assert pod_json(k, ns, "web")["status"]["podIP"] == str(ips["web"])
    assert web["READY"] == "1/1"

    def fetch():
        # busybox's `wget -T` crashes on these hosts: `timeout` bounds a hung connect instead
        p = k("exec", "client", "-n", ns, "--", "timeout", "10", "wget", "-qO-",
              f"http://{ips['web']}/")
        assert p.returncode == 0 and "Welcome to nginx!" in p.stdout, p
    eventually(fetch, timeout=60)
    # and the other way: the client's address is what nginx saw
    log = k.ok("logs", "web", "-n", ns)
    assert str(ips["client"]) in log, log

