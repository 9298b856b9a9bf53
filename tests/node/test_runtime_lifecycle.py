"""The container runtime's lifecycle with real processes: graceful stop then SIGKILL of the whole
tree, the memory limit's OOM kill, cpu/pids limits written to the cgroup, re-adoption by a new
runtime object, and the CRI log format and rotation."""

from __future__ import annotations

import asyncio
import os
import re
import sys

from k1s.node.runtime import linux, process
from k1s.node.runtime.cgroups import Cgroup, Limits, layout
from k1s.node.runtime.process import LogWriter

from runtime_util import (finished, log_lines, needs_root, pids_in_pid_ns, pod, runtime,  # noqa
                          sh, wait_for)

pytestmark = needs_root
CRI_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) (F|P) .*$")


def running(rt, uid, name="c"):
    def check():
        st = rt.container_states(uid).get(name)
        return st if st is not None and st.running else None
    return wait_for(check)


def test_sigterm_then_sigkill_after_grace_kills_the_whole_tree(runtime):
    rt = runtime()
    # PID 1 ignores SIGTERM (no handler), and so do its children and a setsid'd grandchild
    script = ("trap '' TERM; sleep 1000 & sleep 1000 & "
              "setsid sh -c 'trap \"\" TERM; sleep 1000' & echo started; wait")
    p = pod("stubborn", [sh("c", script)])
    uid = p["metadata"]["uid"]
    rt.start_sync(p)
    st = running(rt, uid)
    wait_for(lambda: "started" in log_lines(st.log_path))
    pid_ns = os.readlink(f"/proc/{st.pid}/ns/pid")
    wait_for(lambda: len(pids_in_pid_ns(pid_ns)) >= 4)
    tree = pids_in_pid_ns(pid_ns)

    async def stop_and_wait():
        await rt.stop(p, 1)
        # SIGTERM changed nothing: it is still running right after it
        assert rt.container_states(uid)["c"].exit_code is None
        while not rt.stopped(uid):
            await asyncio.sleep(0.02)
    asyncio.run(asyncio.wait_for(stop_and_wait(), 30))
    st = rt.container_states(uid)["c"]
    assert (st.exit_code, st.reason) == (137, "Error")
    assert pids_in_pid_ns(pid_ns) == []
    assert all(linux.proc_start_time(pid) is None for pid in tree)


def test_sigterm_is_enough_for_a_process_that_handles_it(runtime):
    rt = runtime()
    p = pod("polite", [sh("c", "trap 'echo bye; exit 0' TERM; echo up; "
                               "while true; do sleep 0.05; done")])
    uid = p["metadata"]["uid"]
    rt.start_sync(p)
    st = running(rt, uid)
    wait_for(lambda: "up" in log_lines(st.log_path))

    async def stop_and_wait():
        await rt.stop(p, 600)
        while not rt.stopped(uid):
            await asyncio.sleep(0.02)
    asyncio.run(asyncio.wait_for(stop_and_wait(), 30))
    st = rt.container_states(uid)["c"]
    assert (st.exit_code, st.reason) == (0, "Completed")
    assert log_lines(st.log_path)[-1] == "bye"


def test_memory_limit_oom_kills_with_reason_oomkilled(runtime):
    if layout() == "none":
        import pytest
        pytest.skip("no cgroup hierarchy on this machine")
    rt = runtime()
    grab = f"{sys.executable} -c \"b = bytearray(400 * 1024 * 1024); print(len(b))\""
    c = sh("c", f"exec {grab}", resources={"limits": {"memory": "48Mi"}})
    p = pod("hog", [c])
    rt.start_sync(p)
    st = finished(rt, p["metadata"]["uid"])
    assert (st.exit_code, st.reason) == (137, "OOMKilled")
    assert "419430400" not in log_lines(st.log_path)


def test_limits_land_in_the_container_cgroup(runtime):
    rt = runtime(pids_limit=50)
    c = sh("c", "cat /proc/self/cgroup; sleep 1000",
           resources={"limits": {"memory": "64Mi", "cpu": "250m"},
                      "requests": {"cpu": "100m"}})
    p = pod("limited", [c])
    uid = p["metadata"]["uid"]
    rt.start_sync(p)
    st = running(rt, uid)
    cg = Cgroup.create(uid, "c", Limits())        # the same directories, no limits written
    assert st.pid in cg.pids()
    if "memory" in cg.dirs:                        # v1 (hybrid) layout
        assert open(f"{cg.dirs['memory']}/memory.limit_in_bytes").read().strip() == \
            str(64 * 1024 * 1024)
        assert open(f"{cg.dirs['cpu']}/cpu.cfs_quota_us").read().strip() == "25000"
        assert open(f"{cg.dirs['cpu']}/cpu.shares").read().strip() == "102"   # 100m request
        # the pod's own group weighs what the pod asked for (here its one container)
        assert open(f"{os.path.dirname(cg.dirs['cpu'])}/cpu.shares").read().strip() == "102"
        assert open(f"{cg.dirs['pids']}/pids.max").read().strip() == "50"
    else:
        assert open(f"{cg.dirs['v2']}/memory.max").read().strip() == str(64 * 1024 * 1024)
        assert open(f"{cg.dirs['v2']}/cpu.max").read().split() == ["25000", "100000"]
        assert open(f"{cg.dirs['v2']}/cpu.weight").read().strip() == "4"      # runc's 102 -> 4
        assert open(f"{os.path.dirname(cg.dirs['v2'])}/cpu.weight").read().strip() == "4"
        assert open(f"{cg.dirs['v2']}/pids.max").read().strip() == "50"


def test_cpu_requests_become_shares_and_weights_as_kubelet_and_runc_compute_them():
    from k1s.node.runtime.cgroups import cpu_shares, shares_to_weight
    assert [cpu_shares(m) for m in (None, 0, 1, 100, 1000, 2500, 10**9)] == \
        [2, 2, 2, 102, 1024, 2560, 262144]
    assert [shares_to_weight(s) for s in (2, 1024, 262144)] == [1, 39, 10000]
    from k1s.node.runtime.runtime import pod_cpu_shares
    two = {"spec": {"containers": [{"resources": {"requests": {"cpu": "250m"}}},
                                   {"resources": {"limits": {"cpu": "1"}}}],
                    "initContainers": [{"resources": {"requests": {"cpu": "2"}}}]}}
    assert pod_cpu_shares(two) == 2048              # the init container's 2 CPUs win
    assert pod_cpu_shares({"spec": {"containers": [{}]}}) == 2      # BestEffort


def test_oom_score_adj_follows_the_qos_class_as_kubelet_sets_it(runtime):
    from k1s.node.runtime.runtime import oom_score_adj
    gi = 1 << 30
    guaranteed = {"status": {"qosClass": "Guaranteed"}}
    best = {"status": {"qosClass": "BestEffort"}}
    burst = {"status": {"qosClass": "Burstable"}}
    req = lambda m: {"resources": {"requests": {"memory": m}}}  # noqa: E731
    assert oom_score_adj(guaranteed, {}, 8 * gi) == -997
    assert oom_score_adj(best, {}, 8 * gi) == 1000
    assert oom_score_adj(burst, req("2Gi"), 8 * gi) == 750
    assert oom_score_adj(burst, {}, 8 * gi) == 999          # never BestEffort's 1000
    assert oom_score_adj(burst, req("8Gi"), 8 * gi) == 3     # never below Guaranteed's + 1000
    # on a real container: a BestEffort one can always be raised to 1000
    rt = runtime()
    p = pod("scored", [sh("c", "sleep 1000")])
    p["status"] = {"qosClass": "BestEffort"}
    rt.start_sync(p)
    st = running(rt, p["metadata"]["uid"])
    with open(f"/proc/{st.pid}/oom_score_adj") as f:
        assert f.read().strip() == "1000"


def test_a_new_runtime_adopts_running_pods_without_a_second_copy(runtime):
    first = runtime()
    p = pod("keeper", [sh("c", "echo once; exec sleep 1000")])
    uid = p["metadata"]["uid"]
    first.start_sync(p)
    st = running(first, uid)
    wait_for(lambda: log_lines(st.log_path) == ["once"])
    holder = first.holder_pid(uid)
    # the agent restarts: a new runtime over the same data directory knows nothing in memory
    second = runtime()
    assert second.state(uid) is None
    second.adopt(uid)
    assert second.state(uid) is not None
    again = second.container_states(uid)["c"]
    assert (again.pid, again.start_time, again.exit_code) == (st.pid, st.start_time, None)
    second.start_sync(p)                        # a sync after adoption starts nothing new
    assert second.container_states(uid)["c"].pid == st.pid
    assert second.holder_pid(uid) == holder
    assert log_lines(st.log_path) == ["once"]
    first.pods.clear()                          # the old agent is gone; the new one stops it

    async def stop_and_wait():
        await second.stop(p, 0)
        while not second.stopped(uid):
            await asyncio.sleep(0.02)
    asyncio.run(asyncio.wait_for(stop_and_wait(), 30))
    assert second.container_states(uid)["c"].exit_code == 137
    assert linux.proc_start_time(holder) is None


AGENT = """
import json, os, sys, uuid
from k1s.node.runtime.runtime import ProcessRuntime
rt = ProcessRuntime(sys.argv[1])
pod = json.loads(sys.argv[2])
rt.start_sync(pod)
st = rt.container_states(pod["metadata"]["uid"])["c"]
print(st.pid, st.start_time, rt.holder_pid(pod["metadata"]["uid"]), flush=True)
os.kill(os.getpid(), 9)                      # the agent dies mid-flight
"""


def test_pods_outlive_a_killed_agent_and_are_adopted_by_the_next(runtime, tmp_path):
    import json
    import subprocess
    rt = runtime()                              # this process: the restarted agent
    p = pod("survivor", [sh("c", "echo before; trap 'echo bye; exit 0' TERM; "
                                 "while true; do sleep 0.05; done")])
    uid = p["metadata"]["uid"]
    out = subprocess.run([sys.executable, "-c", AGENT, rt.data_dir, json.dumps(p)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == -9, out.stderr
    pid, start, holder = (int(x) for x in out.stdout.split())
    assert linux.proc_start_time(pid) == start     # the container kept running
    rt.adopt(uid)
    st = rt.container_states(uid)["c"]
    assert (st.pid, st.running) == (pid, True)
    assert rt.holder_pid(uid) == holder
    rt.start_sync(p)                              # no second copy
    assert rt.container_states(uid)["c"].pid == pid
    wait_for(lambda: log_lines(st.log_path) == ["before"])

    async def stop_and_wait():
        await rt.stop(p, 30)
        while not rt.stopped(uid):
            await asyncio.sleep(0.02)
    asyncio.run(asyncio.wait_for(stop_and_wait(), 60))
    st = rt.container_states(uid)["c"]
    assert (st.exit_code, st.reason) == (0, "Completed")
    # no lost logs: what it wrote before and after the agent's death is in one file
    assert log_lines(st.log_path) == ["before", "bye"]


def test_adoption_ignores_a_recycled_pid(runtime):
    rt = runtime()
    p = pod("gone", [sh("c", "exec sleep 1000")])
    uid = p["metadata"]["uid"]
    rt.start_sync(p)
    st = running(rt, uid)
    fake = process.ContainerState("c", pid=st.pid, start_time=(st.start_time or 0) + 1)
    assert not fake.running                     # same pid, other start time: not ours
    assert not process.signal_container(fake, 9)
    assert rt.container_states(uid)["c"].running


def test_log_records_are_cri_formatted_with_partial_lines(runtime):
    rt = runtime()
    script = ("echo out1; echo err1 >&2; printf 'no newline'; "
              "head -c 40000 /dev/zero | tr '\\0' x")
    p = pod("logs", [sh("c", script)])
    rt.start_sync(p)
    st = finished(rt, p["metadata"]["uid"])
    lines = open(st.log_path).read().splitlines()
    assert all(CRI_LINE.match(ln) for ln in lines), lines[:3]
    recs = [ln.split(" ", 3)[1:] for ln in lines]
    assert ["stdout", "F", "out1"] in recs and ["stderr", "F", "err1"] in recs
    partial = [r for r in recs if r[1] == "P"]
    assert partial and all(r[0] == "stdout" for r in partial)
    # the unterminated tail is one logical line: P records then a final F
    tail = "".join(r[2] for r in recs if r[0] == "stdout" and r[2] not in ("out1",))
    assert tail == "no newline" + "x" * 40000
    assert st.log_path.endswith("/logs/c/0.log")


def test_log_rotation_keeps_at_most_max_files(tmp_path):
    path = str(tmp_path / "logs" / "c" / "0.log")
    w = LogWriter(path, max_bytes=1000, max_files=3)
    for i in range(100):
        w.feed("stdout", f"line {i:03d} {'y' * 40}\n".encode())
    w.close()
    files = sorted(os.listdir(tmp_path / "logs" / "c"))
    assert files == ["0.log", "0.log.1", "0.log.2"]
    for f in files:
        assert os.path.getsize(tmp_path / "logs" / "c" / f) <= 1000
    newest = open(path).read().splitlines()
    assert newest[-1].endswith(f"line 099 {'y' * 40}")
    older = open(path + ".1").read().splitlines()
    assert int(older[-1].split()[4]) + 1 == int(newest[0].split()[4])   # no line lost between


def test_cgroup_kill_empties_the_group(tmp_path):
    import subprocess
    import uuid
    cg = Cgroup.create(str(uuid.uuid4()), "c", Limits(pids=20))
    try:
        procs = [subprocess.Popen(["sleep", "1000"]) for _ in range(3)]
        for pr in procs:
            cg.add(pr.pid)
        assert {pr.pid for pr in procs} <= cg.pids()
        cg.kill()
        for pr in procs:
            assert pr.wait(timeout=30) == -9
        wait_for(lambda: cg.pids() == set())
    finally:
        cg.remove()
    assert all(not os.path.exists(d) for d in cg.dirs.values())


def test_pids_limit_stops_a_fork_bomb(runtime):
    rt = runtime(pids_limit=8)
    p = pod("forks", [sh("c", "for i in $(seq 20); do sleep 1000 & done; echo end")])
    uid = p["metadata"]["uid"]
    rt.start_sync(p)
    st = finished(rt, uid)
    out = log_lines(st.log_path)
    assert any("fork" in ln.lower() for ln in out), out     # "sh: can't fork"


# -- shareProcessNamespace ---------------------------------------------------------------------
def _stop(rt, p, grace: int) -> None:
    uid = p["metadata"]["uid"]

    async def stop_and_wait():
        await rt.stop(p, grace)
        while not rt.stopped(uid):
            await asyncio.sleep(0.02)
    asyncio.run(asyncio.wait_for(stop_and_wait(), 60))


def test_shared_pid_namespace_containers_see_each_other_under_the_pause(runtime):
    import subprocess
    from k1s.node.runtime import sandbox
    rt = runtime()
    p = pod("share", [sh("a", "exec sleep 1001"), sh("b", "exec sleep 1002")],
            shareProcessNamespace=True)
    uid = p["metadata"]["uid"]
    rt.start_sync(p)
    a, b = running(rt, uid, "a"), running(rt, uid, "b")
    holder = rt.holder_pid(uid)
    pid_ns = os.readlink(f"/proc/{holder}/ns/pid")
    assert os.readlink(f"/proc/{a.pid}/ns/pid") == os.readlink(f"/proc/{b.pid}/ns/pid") == pid_ns
    r = subprocess.run(sandbox.exec_argv(["sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; "
                                          "echo; ps -o args"]),
                       capture_output=True, text=True, timeout=30,
                       preexec_fn=sandbox.enter(b.pid, sandbox.ALL_KINDS))
    first, *ps = r.stdout.splitlines()
    assert first.startswith("k1s-pause ")           # the sandbox's pause is PID 1
    assert "sleep 1001" in ps and "sleep 1002" in ps
    # an orphan of the pod is reaped by the pause, not left a zombie
    subprocess.run(sandbox.exec_argv(["sh", "-c", "sh -c 'sleep 0.1 &' &"]), timeout=30,
                   preexec_fn=sandbox.enter(b.pid, sandbox.ALL_KINDS))

    def no_zombie():
        states = []
        for pid in pids_in_pid_ns_any(pid_ns):
            with open(f"/proc/{pid}/stat") as f:
                states.append(f.read().rsplit(")", 1)[1].split()[0])
        return len(states) == 3 and "Z" not in states   # pause, a, b
    wait_for(no_zombie)
    _stop(rt, p, 5)
    assert linux.proc_start_time(holder) is None


def pids_in_pid_ns_any(pid_ns: str) -> list[int]:
    """Like pids_in_pid_ns, zombies included."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if os.readlink(f"/proc/{d}/ns/pid") == pid_ns:
                    out.append(int(d))
            except OSError:
                pass
    return out


def test_a_container_in_a_shared_namespace_ends_with_its_whole_tree(runtime):
    rt = runtime()
    marker = "sleep\x001003"
    script = ("sleep 1003 & trap 'exit 0' TERM; "
              "echo up; while true; do sleep 0.05; done")
    p = pod("tree", [sh("c", script), sh("other", "exec sleep 1004")],
            shareProcessNamespace=True)
    uid = p["metadata"]["uid"]
    rt.start_sync(p)
    st = running(rt, uid)
    wait_for(lambda: log_lines(st.log_path) == ["up"])
    pid_ns = os.readlink(f"/proc/{st.pid}/ns/pid")
    stragglers = [pid for pid in pids_in_pid_ns(pid_ns)
                  if marker in open(f"/proc/{pid}/cmdline").read()]
    assert len(stragglers) == 1
    process.signal_container(st, 15)                # its main process exits cleanly
    st = finished(rt, uid)
    assert (st.exit_code, st.reason) == (0, "Completed")
    # not PID 1 of a namespace of its own: the cgroup kill ended what it left running,
    # and the other container goes on
    wait_for(lambda: linux.proc_start_time(stragglers[0]) is None)
    assert rt.container_states(uid)["other"].running
    rt.start_container(p, p["spec"]["containers"][0])   # a restart joins the same namespace
    again = wait_for(lambda: (s := rt.container_states(uid)["c"]).running and s.restart == 1
                     and s)
    assert os.readlink(f"/proc/{again.pid}/ns/pid") == pid_ns
    _stop(rt, p, 0)


def test_a_shared_pid_namespace_survives_adoption(runtime):
    first = runtime()
    p = pod("adopted", [sh("c", "exec sleep 1005")], shareProcessNamespace=True)
    uid = p["metadata"]["uid"]
    first.start_sync(p)
    running(first, uid)
    holder = first.holder_pid(uid)
    second = runtime()
    second.adopt(uid)
    first.pods.clear()
    assert second.pods[uid].holder.pid_ns and second.holder_pid(uid) == holder
    second.signal(uid, 9)
    finished(second, uid)
    second.start_sync(p)                              # restarted by the new agent
    again = wait_for(lambda: (s := second.container_states(uid)["c"]).running and s)
    assert os.readlink(f"/proc/{again.pid}/ns/pid") == os.readlink(f"/proc/{holder}/ns/pid")
    _stop(second, p, 0)
