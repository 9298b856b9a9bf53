"""What the real node holds on the machine for its pods, and gives back: a finished pod's
network namespace and address, a deleted pod's processes and files, and everything when the
node stops; `k1s node` as a second node of the same cluster."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from k1s.node.network import netns
from k1s_harness import Kubectl, pinned_kubectl, start_cluster, stop_cluster

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the real node runs pods in "
                                "namespaces with mounts, which needs root (CI runs as root)")


def eventually(check, timeout=60.0, every=0.2):
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout}s: {check.__doc__ or check}")
        time.sleep(every)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("node-resources")
    c = start_cluster(str(tmp))
    k = Kubectl(pinned_kubectl(), c.kubeconfig, str(tmp / "cache"))
    yield c, k, str(tmp)
    stop_cluster(c)        # asserts the node left nothing behind (processes, mounts, netns)


def pod_netns(c, uid):
    return [n for n in netns.names(c.netns_prefix + "-pod-") if n.endswith("_" + uid)]


def test_finished_pod_gives_back_its_network_and_address_and_keeps_logs(cluster):
    c, k, _ = cluster
    k.ok("run", "once", "--image=busybox", "--restart=Never", "--command", "--",
         "sh", "-c", "echo finished; exit 3")

    def failed():
        """the pod failed"""
        return k.json("get", "pod", "once")["status"].get("phase") == "Failed"
    eventually(failed)
    pod = k.json("get", "pod", "once")
    uid, ip = pod["metadata"]["uid"], pod["status"]["podIP"]
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 3

    def no_netns():
        """its network namespace is gone"""
        return not pod_netns(c, uid)
    eventually(no_netns)
    assert k.ok("logs", "once").strip() == "finished"
    # the address went back to the pool: the next pod gets it
    k.ok("run", "next", "--image=busybox", "--command", "--", "sleep", "3600")

    def next_ip():
        """the next pod has an address"""
        return k.json("get", "pod", "next")["status"].get("podIP")
    assert eventually(next_ip) == ip
    k.ok("delete", "pod", "once", "next", "--now", "--wait=true")   # sleep ignores SIGTERM


def test_deleted_pod_leaves_no_process_files_or_namespace(cluster):
    c, k, _ = cluster
    k.ok("run", "gone", "--image=nginx")
    k.ok("wait", "--for=condition=Ready", "pod/gone", "--timeout=60s")
    uid = k.json("get", "pod", "gone")["metadata"]["uid"]
    state = os.path.join(c.data_dir, "pods", uid, "containers", "gone", "state.json")
    assert os.path.exists(state)
    import json
    pid = json.load(open(state))["pid"]
    assert os.path.exists(f"/proc/{pid}")
    assert pod_netns(c, uid)
    k.ok("delete", "pod", "gone", "--wait=true", "--timeout=60s")

    def all_gone():
        """process, pod directory and network namespace are gone"""
        return not os.path.exists(f"/proc/{pid}") and not pod_netns(c, uid) and \
            not os.path.exists(os.path.join(c.data_dir, "pods", uid))
    eventually(all_gone)


def test_k1s_node_runs_a_second_node_of_the_cluster(cluster):
    c, k, tmp = cluster
    data = os.path.join(tmp, "node2")
    env = dict(os.environ, K1S_NETNS_PREFIX=c.netns_prefix + "b")
    log = open(os.path.join(tmp, "node2.log"), "wb")
    proc = subprocess.Popen([sys.executable, "-m", "k1s.cli.main", "node", "--kubeconfig",
                             c.kubeconfig, "--data-dir", data, "--name", "second",
                             "--pod-cidr", "10.244.9.0/24"], stdout=log, stderr=log, env=env)
    try:
        def ready():
            """node second is Ready"""
            p = k("get", "node", "second", "-o",
                  "jsonpath={.status.conditions[?(@.type=='Ready')].status}")
            return p.returncode == 0 and p.stdout.strip() == "True"
        eventually(ready)
        assert k.json("get", "node", "second")["spec"]["podCIDR"] == "10.244.9.0/24"
        k.ok("run", "there", "--image=busybox", "--env=GREETING=hi",
             "--overrides", '{"spec":{"nodeName":"second"}}', "--command", "--", "sleep", "3600")
        k.ok("wait", "--for=condition=Ready", "pod/there", "--timeout=60s")
        assert k.json("get", "pod", "there")["status"]["podIP"].startswith("10.244.9.")
        assert k.ok("exec", "there", "--", "sh", "-c", "echo $GREETING").strip() == "hi"
        k.ok("delete", "pod", "there", "--now", "--wait=true", "--timeout=60s")
    finally:
        proc.terminate()
        assert proc.wait(30) == 0
        log.close()
    from k1s.node.cleanup import remove_node_leftovers
    assert remove_node_leftovers(data, c.netns_prefix + "b") == []
