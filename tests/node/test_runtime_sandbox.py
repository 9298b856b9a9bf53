"""The container runtime's sandbox, with real namespaces and mounts: what a container sees
(hostname, PID 1, private /tmp, generated /etc files, copy-on-write root, volumes) and exit
codes as upstream reports them."""

from __future__ import annotations

import os
import signal
import time

import pytest

from k1s.node.runtime import linux, process, sandbox
from k1s.node.runtime.sandbox import VolumeMount
from k1s.node.volumes.paths import UnsafePath

from runtime_util import (finished, log_lines, needs_root, pod, runtime, sh,  # noqa: F401
                          wait_for)

pytestmark = needs_root


def test_container_sees_its_own_pod_view(runtime, tmp_path):
    marker = tmp_path / "host-only"
    marker.write_text("x")
    rt = runtime(dns_server="10.96.0.10", pod_ip_for=lambda p: "10.244.0.7")
    script = ("hostname; echo pid=$$; ls -A /tmp | wc -l; cat /etc/hosts; echo ---; "
              "cat /etc/resolv.conf; echo ---; cat /etc/hostname; "
              "echo cow > /k1s-cow-test; cat /k1s-cow-test")
    p = pod("web-0", [sh("c", script)], subdomain="nginx", ns="shop")
    uid = p["metadata"]["uid"]
    rt.start_sync(p)
    st = finished(rt, uid)
    assert (st.exit_code, st.reason) == (0, "Completed")
    assert st.notes == []                             # overlayfs on / works on this kernel
    out = log_lines(st.log_path)
    assert out[0] == "web-0"                          # the pod's hostname, not the host's
    assert out[1] == "pid=1"                          # PID 1 of its own PID namespace
    assert out[2] == "0"                              # a private, empty /tmp
    hosts = out[3:out.index("---")]
    assert "10.244.0.7\tweb-0.nginx.shop.svc.cluster.local\tweb-0" in hosts
    assert "127.0.0.1\tlocalhost" in hosts
    resolv = out[out.index("---") + 1:]
    # the cluster's search domains first; the node's own (if it has any) follow, as kubelet
    assert resolv[0].startswith("search shop.svc.cluster.local svc.cluster.local "
                                "cluster.local")
    assert resolv[1:3] == ["nameserver 10.96.0.10", "options ndots:5"]
    assert resolv[3:5] == ["---", "web-0"]            # /etc/hostname
    assert out[-1] == "cow"
    # the write to / landed in the container's upper layer, not on the host
    assert not os.path.exists("/k1s-cow-test")
    upper = os.path.join(sandbox.pod_dir(rt.data_dir, uid), "containers", "c", "upper")
    assert open(os.path.join(upper, "k1s-cow-test")).read() == "cow\n"
    assert os.uname().nodename != "web-0"
    assert marker.read_text() == "x"


def test_hostname_is_spec_hostname_and_no_fqdn_without_subdomain(runtime):
    rt = runtime()
    p = pod("web-abc", [sh("c", "hostname; grep -c svc.cluster.local /etc/hosts")],
            hostname="custom")
    rt.start_sync(p)
    st = finished(rt, p["metadata"]["uid"])
    assert log_lines(st.log_path) == ["custom", "0"]
    assert st.exit_code == 1                          # grep -c found nothing


def test_volumes_read_write_read_only_and_sub_path(runtime, tmp_path):
    rw, ro = tmp_path / "rw", tmp_path / "ro"
    rw.mkdir()
    ro.mkdir()
    (ro / "index.html").write_text("from the volume\n")
    (rw / "sub").mkdir()
    vols = [VolumeMount(str(rw), "/data"), VolumeMount(str(ro), "/srv/html", read_only=True),
            VolumeMount(str(rw), "/only-sub", sub_path="sub")]
    rt = runtime(volumes_for=lambda p, c: vols)
    script = ("echo written > /data/out.txt && cat /srv/html/index.html && "
              "echo in-sub > /only-sub/f && "
              "if echo nope > /srv/html/x; then echo WROTE; else echo refused; fi")
    p = pod("v", [sh("c", script)])
    rt.start_sync(p)
    st = finished(rt, p["metadata"]["uid"])
    out = log_lines(st.log_path)
    assert st.exit_code == 0
    assert out[0] == "from the volume" and "refused" in out
    assert any("Read-only file system" in ln for ln in out)    # the shell's stderr
    assert (rw / "out.txt").read_text() == "written\n"
    assert (rw / "sub" / "f").read_text() == "in-sub\n"
    assert not (ro / "x").exists()


def test_sub_path_cannot_escape_its_volume(runtime, tmp_path):
    vol = tmp_path / "vol"
    vol.mkdir()
    os.symlink("/etc", vol / "evil")
    rt = runtime(volumes_for=lambda p, c: [VolumeMount(str(vol), "/x", sub_path="evil")])
    p = pod("v", [sh("c", "ls /x")])
    rt.start_sync(p)
    st = finished(rt, p["metadata"]["uid"])
    assert (st.exit_code, st.reason) == (128, "StartError")
    assert "outside its volume" in st.message


@pytest.mark.parametrize("script,code,reason", [
    ("exit 0", 0, "Completed"),
    ("exit 3", 3, "Error"),
])
def test_exit_codes(runtime, script, code, reason):
    rt = runtime()
    p = pod("e", [sh("c", script)])
    rt.start_sync(p)
    st = finished(rt, p["metadata"]["uid"])
    assert (st.exit_code, st.reason) == (code, reason)


def test_killed_by_a_signal_is_128_plus_the_signal(runtime):
    rt = runtime()
    p = pod("k", [sh("c", "exec sleep 1000")])
    uid = p["metadata"]["uid"]
    rt.start_sync(p)
    rt.signal(uid, signal.SIGKILL)
    st = finished(rt, uid)
    assert (st.exit_code, st.reason) == (137, "Error")


def test_command_not_found_is_a_start_error(runtime):
    rt = runtime()
    p = pod("e", [{"name": "c", "image": "busybox", "command": ["/no/such/program"]}])
    rt.start_sync(p)
    st = finished(rt, p["metadata"]["uid"])
    assert (st.exit_code, st.reason) == (128, "StartError")
    assert "/no/such/program" in st.message


def test_unknown_image_without_command_waits_with_a_reason(runtime):
    rt = runtime()
    p = pod("u", [{"name": "c", "image": "example.com/acme/app:2"}])
    uid = p["metadata"]["uid"]
    rt.start_sync(p)
    reason, message = rt.waiting(uid)["c"]
    assert reason == "ImageNotKnown"
    assert "example.com/acme/app:2" in message
    assert rt.container_states(uid) == {}            # nothing was started for it
    assert rt.state(uid)[1] > time.time()             # so the pod is not ready


def test_env_and_working_dir(runtime):
    rt = runtime()
    c = sh("c", 'echo "$GREETING $(pwd) $HOSTNAME"',
           env=[{"name": "GREETING", "value": "hello"}], workingDir="/work/dir")
    p = pod("envpod", [c])
    rt.start_sync(p)
    st = finished(rt, p["metadata"]["uid"])
    assert log_lines(st.log_path) == ["hello /work/dir envpod"]


def test_agent_is_a_child_subreaper(runtime):
    runtime()
    assert linux.is_child_subreaper()


def test_secure_join_keeps_symlinks_inside_the_root(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    os.symlink("/etc/../../../outside", root / "etc" / "resolv.conf")
    os.symlink("../..", root / "up")
    target = sandbox.secure_join(str(root), "/etc/resolv.conf", create="file")
    assert target == str(root / "outside")
    assert (root / "outside").exists()
    assert sandbox.secure_join(str(root), "/up/up/etc") == str(root / "etc")


def test_containers_and_monitors_hold_none_of_the_agents_descriptors(runtime):
    import socket
    rt = runtime()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        p = pod("fds", [sh("c", "ls /proc/self/fd; exec sleep 1000")])
        uid = p["metadata"]["uid"]
        rt.start_sync(p)
        st = rt.container_states(uid)["c"]
        wait_for(lambda: log_lines(st.log_path))
        # the shell's own: stdin, stdout, stderr and the directory ls is reading
        assert set(log_lines(st.log_path)) <= {"0", "1", "2", "3"}
        monitor = process.monitor_of(rt.data_dir, uid, "c")[0]
        for pid in (monitor, st.pid):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                assert not target.startswith("socket:"), (pid, fd, target)


def test_sys_is_read_only_and_the_data_directory_is_not_visible(runtime):
    rt = runtime()
    p = pod("ro", [sh("c", f"echo x > /sys/kernel/k1s-test; ls -A {rt.data_dir} | wc -l")])
    rt.start_sync(p)
    st = finished(rt, p["metadata"]["uid"])
    out = log_lines(st.log_path)
    assert any("Read-only file system" in ln for ln in out)
    assert out[-1] == "0"


def test_a_later_start_restarts_an_exited_container_with_a_new_log(runtime):
    rt = runtime()
    p = pod("again", [sh("c", "echo run")])
    uid = p["metadata"]["uid"]
    rt.start_sync(p)
    first = finished(rt, uid)
    holder = rt.holder_pid(uid)
    rt.start_sync(p)
    second = wait_for(lambda: (s := rt.container_states(uid)["c"]).restart == 1 and
                      s.exit_code is not None and s)
    assert second.log_path.endswith("/c/1.log") and first.log_path.endswith("/c/0.log")
    assert log_lines(first.log_path) == log_lines(second.log_path) == ["run"]
    assert rt.stopped(uid)                            # all exited, the pod not terminating:
    assert rt.holder_pid(uid) == holder               # same sandbox, same namespaces
    assert linux.proc_start_time(holder) is not None
    assert rt.uids_on_disk() == [uid]


def test_exec_joins_every_namespace_of_the_container(runtime):
    import subprocess
    rt = runtime()
    p = pod("target", [sh("c", "echo inside > /tmp/mark; exec sleep 1000")], hostname="box")
    uid = p["metadata"]["uid"]
    rt.start_sync(p)
    st = rt.container_states(uid)["c"]
    wait_for(lambda: log_lines(st.log_path) == [] and
             os.path.exists(f"/proc/{st.pid}/root/tmp/mark"))
    script = "hostname; cat /tmp/mark; cat /proc/1/comm; echo $$; exit 7"
    r = subprocess.run(sandbox.exec_argv(["sh", "-c", script]), capture_output=True,
                       text=True, timeout=30,
                       preexec_fn=sandbox.enter(st.pid, sandbox.ALL_KINDS))
    host, mark, comm, pid = r.stdout.split()
    assert (r.returncode, host, mark, comm) == (7, "box", "inside", "sleep")
    assert 1 < int(pid) < 10                          # a small pid: the container's namespace


@pytest.mark.parametrize("uid,name", [("../../etc", "c"), ("not-a-uid", "c"),
                                      ("00000000-0000-0000-0000-000000000001", "../up"),
                                      ("00000000-0000-0000-0000-000000000001", "A_b")])
def test_names_that_could_escape_the_data_directory_are_refused(runtime, tmp_path, uid, name):
    rt = runtime()
    p = pod("x", [sh(name, "true")])
    p["metadata"]["uid"] = uid
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(UnsafePath):
        rt.start_sync(p)
    assert sorted(os.listdir(tmp_path)) == before
    assert os.listdir(tmp_path / "data") == [] and rt.pods == {}
    rt.forget(uid)                                    # a no-op that must not raise either


# -- securityContext ---------------------------------------------------------------------------
def test_run_as_user_and_group_with_supplemental_groups_and_no_new_privs(runtime):
    rt = runtime()
    c = sh("c", "id -u; id -g; id -G; grep NoNewPrivs /proc/self/status; "
                "echo hi > /tmp/f && cat /tmp/f; touch /not-mine 2>/dev/null || echo denied",
           securityContext={"runAsUser": 2000, "allowPrivilegeEscalation": False})
    p = pod("ids", [c], securityContext={"runAsUser": 1000, "runAsGroup": 3000,
                                         "supplementalGroups": [4000, 3000], "fsGroup": 5000})
    rt.start_sync(p)
    st = finished(rt, p["metadata"]["uid"])
    # the container's runAsUser wins over the pod's; the gid comes first among the groups
    assert log_lines(st.log_path) == ["2000", "3000", "3000 4000 5000", "NoNewPrivs:\t1",
                                      "hi", "denied"]


def test_identity_follows_the_images_passwd_and_group(tmp_path):
    from k1s.node.runtime.runtime import security_of
    (tmp_path / "passwd").write_text("root:x:0:0::/root:/bin/sh\napp:x:1500:1600::/:/bin/sh\n")
    (tmp_path / "group").write_text("root:x:0:\napp:x:1600:\nstaff:x:50:other,app\n"
                                    "audio:x:29:other\n")

    def ident(sc, pod_sc=None):
        p = pod("p", [], securityContext=pod_sc or {})
        return security_of(p, {"name": "c", "securityContext": sc}, etc=str(tmp_path))
    s = ident({"runAsUser": 1500})                   # its passwd gid, and its groups
    assert (s.identity.uid, s.identity.gid, s.identity.groups) == (1500, 1600, [1600, 50])
    s = ident({"runAsUser": 7777})                   # unknown to the image: gid 0
    assert (s.identity.uid, s.identity.gid, s.identity.groups) == (7777, 0, [0])
    s = ident({}, {"runAsUser": 1500, "runAsGroup": 42})
    assert (s.identity.gid, s.identity.groups) == (42, [42, 50])
    s = ident({})                                    # the image's user: root
    assert (s.identity.uid, s.identity.gid, s.identity.no_new_privs) == (0, 0, False)
    assert not s.refusal and not s.read_only_root
    assert ident({"runAsUser": -1}).refusal.startswith("invalid securityContext: invalid "
                                                       "runAsUser -1")
    assert ident("root").refusal.startswith("invalid securityContext")
    assert ident({}, {"supplementalGroups": 5}).refusal.startswith("invalid securityContext")
    assert ident({}, {"fsGroup": "5"}).refusal == ("invalid securityContext: invalid fsGroup "
                                                   "'5': must be an integer in 0..2147483647")
    assert ident({"allowPrivilegeEscalation": False}).identity.no_new_privs
    assert not ident({"allowPrivilegeEscalation": True}).identity.no_new_privs


def test_run_as_non_root_refuses_a_root_container_with_kubelets_reason(runtime):
    rt = runtime()
    root_by_image = sh("a", "true", securityContext={"runAsNonRoot": True})
    root_by_spec = sh("b", "true", securityContext={"runAsNonRoot": True, "runAsUser": 0})
    fine = sh("c", "id -u")
    p = pod("nonroot", [root_by_image, root_by_spec, fine],
            securityContext={"runAsNonRoot": True, "runAsUser": 1000})
    # the container-level runAsUser 0 and the image's root both break the pod's policy
    p["spec"]["containers"][0]["securityContext"]["runAsUser"] = None
    p["spec"]["securityContext"].pop("runAsUser")
    p["spec"]["containers"][2]["securityContext"] = {"runAsUser": 1000}
    uid = p["metadata"]["uid"]
    rt.start_sync(p)
    where = lambda n: f'(pod: "nonroot_default({uid})", container: {n})'  # noqa: E731
    assert rt.waiting(uid) == {
        "a": ("CreateContainerConfigError",
              f"container has runAsNonRoot and image will run as root {where('a')}"),
        "b": ("CreateContainerConfigError",
              f"container's runAsUser breaks non-root policy {where('b')}")}
    st = finished(rt, uid, "c")
    assert log_lines(st.log_path) == ["1000"]
    assert set(rt.container_states(uid)) == {"c"}    # the refused ones never started


def test_exec_runs_as_the_containers_identity(runtime):
    import asyncio
    from k1s.node.streams import exec as execmod
    rt = runtime()
    c = sh("c", "exec sleep 1000", securityContext={"runAsUser": 1000, "runAsGroup": 3000,
                                                      "allowPrivilegeEscalation": False})
    p = pod("execid", [c], securityContext={"supplementalGroups": [4000]})
    uid = p["metadata"]["uid"]
    rt.start_sync(p)
    st = rt.container_states(uid)["c"]
    recorded = process.read_identity(rt.data_dir, uid, "c")
    assert recorded == process.Identity(1000, 3000, [3000, 4000], True)

    async def run(user):
        ex = await execmod.spawn(st.pid, ["sh", "-c", "id -u; id -g; id -G; "
                                          "grep NoNewPrivs /proc/self/status"],
                                 stdin=False, tty=False, stderr=True, user=user)
        out, _ = await ex.proc.communicate()
        return out.decode().splitlines()
    want = ["1000", "3000", "3000 4000", "NoNewPrivs:\t1"]
    assert asyncio.run(run(recorded)) == want
    assert asyncio.run(run(None)) == want            # without the record: PID 1's identity


def test_read_only_root_filesystem_keeps_volumes_dev_and_the_message_file_writable(
        runtime, tmp_path):
    vol = tmp_path / "vol"
    vol.mkdir()
    rt = runtime(volumes_for=lambda p, c: [VolumeMount(str(vol), "/data")])
    script = ("for f in /x /etc/x /tmp/x /run/x /etc/hosts /data/x /dev/shm/x "
              "/dev/termination-log; do (echo w > $f) 2>/dev/null && echo $f ok || echo $f no; "
              "done; grep -c ' / / ro,' /proc/self/mountinfo")
    c = sh("c", script + "; pwd", securityContext={"readOnlyRootFilesystem": True},
           terminationMessagePath="/dev/termination-log", workingDir="/srv/app")
    p = pod("rorfs", [c])
    rt.start_sync(p)
    st = finished(rt, p["metadata"]["uid"])
    assert log_lines(st.log_path) == [
        "/x no", "/etc/x no", "/tmp/x no", "/run/x no", "/etc/hosts no", "/data/x ok",
        "/dev/shm/x ok", "/dev/termination-log ok", "1", "/srv/app"]   # the cwd made before
    assert (vol / "x").read_text() == "w\n"
    assert st.message == "w\n"


# -- termination messages ----------------------------------------------------------------------
def test_the_termination_message_file_is_fresh_per_start_and_writable_by_any_user(runtime):
    rt = runtime()
    c = sh("c", "if [ -s /dev/termination-log ]; then echo stale; fi; "
                "echo bye > /dev/termination-log; exit 1",
           terminationMessagePath="/dev/termination-log",
           securityContext={"runAsUser": 1000})
    p = pod("tmsg", [c])
    uid = p["metadata"]["uid"]
    rt.start_sync(p)
    st = finished(rt, uid)
    assert (st.exit_code, st.message) == (1, "bye\n")
    rt.start_container(p, c)                         # a restart starts with an empty file
    wait_for(lambda: rt.container_states(uid)["c"].restart == 1)
    st = finished(rt, uid)
    assert log_lines(st.log_path) == [] and st.message == "bye\n"
    assert not os.path.exists("/dev/termination-log") or \
        open("/dev/termination-log").read() != "bye\n"   # never the host's /dev


def test_a_custom_path_and_the_4096_byte_cap(runtime):
    rt = runtime()
    c = sh("c", "head -c 5000 /dev/zero | tr '\\0' m > /var/msg",
           terminationMessagePath="/var/msg")
    p = pod("big", [c])
    rt.start_sync(p)
    st = finished(rt, p["metadata"]["uid"])
    assert (st.exit_code, st.message) == (0, "m" * 4096)


@pytest.mark.parametrize("script,message", [
    ("seq 1 100; exit 2", "".join(f"{i}\n" for i in range(21, 101))),   # the last 80 lines
    ("seq 1 100", ""),                                                    # success: no tail
    ("echo from-file > /dev/termination-log; echo log; exit 1", "from-file\n"),
    ("head -c 3000 /dev/zero | tr '\\0' y; exit 1", "y" * 2048),        # at most 2048 bytes
])
def test_fallback_to_logs_on_error(runtime, script, message):
    rt = runtime()
    c = sh("c", script, terminationMessagePath="/dev/termination-log",
           terminationMessagePolicy="FallbackToLogsOnError")
    p = pod("fb", [c])
    rt.start_sync(p)
    st = finished(rt, p["metadata"]["uid"])
    assert st.message == message


def test_a_start_error_keeps_its_message(runtime):
    rt = runtime()
    p = pod("e", [{"name": "c", "image": "busybox", "command": ["/no/such/program"],
                   "terminationMessagePath": "/dev/termination-log",
                   "terminationMessagePolicy": "FallbackToLogsOnError"}])
    rt.start_sync(p)
    st = finished(rt, p["metadata"]["uid"])
    assert (st.exit_code, st.reason) == (128, "StartError")
    assert "/no/such/program" in st.message and not st.message.endswith(": ")


def test_a_forked_helper_that_never_reports_times_out_instead_of_hanging_the_agent():
    """A monitor or holder that hangs before it reports (its pipe open, nothing written) is
    given up on after a while (the caller kills it), never waited for forever."""
    r, w = os.pipe()
    try:
        os.write(w, b"partial")
        with pytest.raises(TimeoutError):
            sandbox.read_child_report(r, timeout=0.3)
        os.close(w)
        w = -1
        assert sandbox.read_child_report(r, timeout=1) == b""     # closed: all is read
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
