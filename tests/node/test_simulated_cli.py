"""`k1s up --simulated-nodes 3` as a user runs it: kubectl shows three Ready simulated nodes
and not this machine's node; a pod bound to one goes Running with an IP; `k1s simulate-nodes`
adds nodes to a running cluster; bad flags are refused with a message."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from k1s_harness import Kubectl, pinned_kubectl, start_cluster, stop_cluster


@pytest.fixture(scope="module")
def sim_cluster():
    workdir = tempfile.mkdtemp(prefix="k1s-sim-test-")
    c = start_cluster(workdir, "--simulated-nodes", "3", "--simulated-pod-delay", "0")
    try:
        yield c
    finally:
        stop_cluster(c)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def kc(sim_cluster, tmp_path):
    return Kubectl(pinned_kubectl(), sim_cluster.kubeconfig, str(tmp_path / "kcache"))


def poll(fn, timeout=60.0):
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in {timeout}s: {fn.__name__}")
        time.sleep(0.2)


def ready_nodes(kc):
    nodes = json.loads(kc.ok("get", "nodes", "-o", "json"))["items"]
    return {n["metadata"]["name"] for n in nodes
            if any(c["type"] == "Ready" and c["status"] == "True"
                   for c in (n.get("status") or {}).get("conditions") or ())}, nodes


def test_up_with_three_simulated_nodes(kc):
    def three():
        ready, nodes = ready_nodes(kc)
        return ready if len(ready) == 3 and len(nodes) == 3 else None
    assert poll(three) == {"k1s-sim-0", "k1s-sim-1", "k1s-sim-2"}
    table = kc.ok("get", "nodes")
    assert table.splitlines()[0].split()[:2] == ["NAME", "STATUS"]
    rows = [line.split() for line in table.splitlines()[1:]]
    assert sorted(r[0] for r in rows) == ["k1s-sim-0", "k1s-sim-1", "k1s-sim-2"]
    assert all(r[1] == "Ready" for r in rows)

    kc.ok("run", "web", "--image=nginx", "--overrides",
          json.dumps({"spec": {"nodeName": "k1s-sim-2"}}))

    def running():
        p = json.loads(kc.ok("get", "pod", "web", "-o", "json"))
        return p if p["status"].get("phase") == "Running" and p["status"].get("podIP") else None
    p = poll(running)
    assert p["status"]["podIP"].startswith("10.244.2.")
    wide = kc.ok("get", "pod", "web", "-o", "wide")
    assert "Running" in wide and "1/1" in wide and "k1s-sim-2" in wide


def test_simulate_nodes_joins_a_running_cluster(sim_cluster, kc, tmp_path):
    log = open(tmp_path / "sim.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "k1s.cli.main", "simulate-nodes", "2",
                             "--kubeconfig", sim_cluster.kubeconfig, "--prefix", "extra-",
                             "--allocatable", "cpu=4,memory=8Gi,pods=20"],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        def joined():
            ready, nodes = ready_nodes(kc)
            return {"extra-0", "extra-1"} <= ready and nodes
        nodes = poll(joined)
        extra = [n for n in nodes if n["metadata"]["name"] == "extra-1"][0]
        assert extra["status"]["allocatable"] == {"cpu": "4", "memory": "8Gi", "pods": "20"}
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, open(tmp_path / "sim.log").read()


def test_bad_flags_are_refused():
    for args in (["up", "--simulated-nodes", "-1"], ["up", "--simulated-pod-delay", "soon"],
                 ["up", "--simulated-allocatable", "memory=lots"],
                 ["simulate-nodes", "2"]):
        p = subprocess.run([sys.executable, "-m", "k1s.cli.main", *args], capture_output=True,
                           text=True, timeout=30, env=dict(os.environ, HOME="/nonexistent"))
        assert p.returncode == 2, args
        assert "error:" in p.stderr and "Traceback" not in p.stderr
