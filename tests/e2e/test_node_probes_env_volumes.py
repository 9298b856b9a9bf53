"""The real node agent's probes, container environment and volumes as a kubectl user sees
them, against one fresh `k1s up` per module: readiness (Ready, Unhealthy events, Service
endpoints), liveness restarts, startup gating; env values, $(VAR) expansion, the downward API,
ConfigMap/Secret references and envFrom, with a missing ConfigMap giving
CreateContainerConfigError; configMap, secret, downwardAPI, emptyDir (shared, Memory), hostPath
type checks, readOnly, subPath, and a claim that does not exist.

Every pod here is a real process tree in its own namespaces, so the module needs root. Each
test works in its own namespace; the cluster is shared. Waits poll with generous timeouts (2
shared cores): they bound how long a test may hang, never how fast the agent must be.
"""

from __future__ import annotations

import base64
import json
import os
import time

import pytest

import e2e_util
from k1s_harness import Kubectl

NS_PREFIX = "npv-"

# the module's cluster, kubectl and namespace fixtures, helpers, and `pytestmark` (root only)
from node_util import *  # noqa: F401,F403,E402


def sh(k: Kubectl, ns: str, name: str, script: str, c: str | None = None):
    """`kubectl exec` of a shell script in the pod (in container `c`)."""
    args = ["exec", name, "-n", ns] + (["-c", c] if c else []) + ["--", "sh", "-c", script]
    return k(*args)


def events_with(k: Kubectl, ns: str, name: str, reason: str) -> list[dict]:
    def check():
        evs = [e for e in events(k, ns, name) if e["reason"] == reason]
        assert evs, (reason, events(k, ns, name))
        return evs
    return eventually(check)


def configmap(name: str, data: dict) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def secret(name: str, data: dict) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
            "data": {key: base64.b64encode(v.encode()).decode() for key, v in data.items()}}


# --- probes ---------------------------------------------------------------------------------

def test_readiness_http_probe_makes_nginx_ready_and_a_wrong_port_keeps_it_out_of_endpoints(k, ns):
    def web(name, port):
        c = container("nginx", image="nginx", readinessProbe={
            "httpGet": {"path": "/", "port": port}, "periodSeconds": 1})
        p = pod(name, c)
        p["metadata"]["labels"] = {"app": "probed"}
        return p
    create(k, ns, web("good", 80))
    create(k, ns, web("bad", 81))
    create(k, ns, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "probed"},
                   "spec": {"selector": {"app": "probed"}, "ports": [{"port": 80}]}})
    running(k, ns, "good")
    good_ip = pod_json(k, ns, "good")["status"]["podIP"]
    evs = events_with(k, ns, "bad", "Unhealthy")
    assert evs[0]["type"] == "Warning"
    assert evs[0]["message"].startswith("Readiness probe failed:"), evs[0]
    r = get_row(k, ns, "bad")
    assert (r["READY"], r["STATUS"]) == ("0/1", "Running"), r
    bad = pod_json(k, ns, "bad")
    bad_ip = bad["status"]["podIP"]
    st = cstatus(bad, "nginx")
    assert st["started"] is True and st["ready"] is False and st["restartCount"] == 0
    conds = {c["type"]: c["status"] for c in bad["status"]["conditions"]}
    assert conds["Ready"] == "False" and conds["ContainersReady"] == "False"

    def endpoints():
        ep = k.json("get", "endpoints", "probed", "-n", ns)
        ready = [a["ip"] for s in ep.get("subsets") or () for a in s.get("addresses") or ()]
        unready = [a["ip"] for s in ep.get("subsets") or ()
                   for a in s.get("notReadyAddresses") or ()]
        assert ready == [good_ip] and unready == [bad_ip], ep
    eventually(endpoints)
    assert get_row(k, ns, "bad")["READY"] == "0/1"       # still never ready


def test_readiness_follows_the_probe_both_ways_and_endpoints_follow_readiness(k, ns):
    c = container("c", "sleep 3600", readinessProbe={
        "exec": {"command": ["cat", "/tmp/ready"]}, "periodSeconds": 1})
    p = pod("flip", c)
    p["metadata"]["labels"] = {"app": "flip"}
    create(k, ns, p)
    create(k, ns, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "flip"},
                   "spec": {"selector": {"app": "flip"}, "ports": [{"port": 80}]}})

    def endpoint_ips(kind):
        ep = k.json("get", "endpoints", "flip", "-n", ns)
        return [a["ip"] for s in ep.get("subsets") or () for a in s.get(kind) or ()]

    def state(ready: str, kind: str):
        def check():
            r = get_row(k, ns, "flip")
            assert (r["READY"], r["STATUS"]) == (ready, "Running"), r
            ip = pod_json(k, ns, "flip")["status"]["podIP"]
            assert endpoint_ips(kind) == [ip], k.json("get", "endpoints", "flip", "-n", ns)
        eventually(check)
    state("0/1", "notReadyAddresses")
    assert sh(k, ns, "flip", "touch /tmp/ready").returncode == 0
    state("1/1", "addresses")
    assert sh(k, ns, "flip", "rm /tmp/ready").returncode == 0
    state("0/1", "notReadyAddresses")
    assert restarts(get_row(k, ns, "flip")["RESTARTS"]) == 0     # readiness never restarts


def test_probes_find_a_named_container_port(k, ns):
    c = container("nginx", image="nginx", ports=[{"name": "web", "containerPort": 80}],
                  readinessProbe={"httpGet": {"path": "/", "port": "web"}, "periodSeconds": 1})
    create(k, ns, pod("named", c))
    running(k, ns, "named")


def test_liveness_exec_probe_failing_restarts_the_container(k, ns):
    c = container("c", "touch /tmp/healthy; sleep 4; rm /tmp/healthy; sleep 3600",
                  livenessProbe={"exec": {"command": ["cat", "/tmp/healthy"]},
                                 "periodSeconds": 1, "failureThreshold": 2})
    create(k, ns, pod("live", c))

    def restarted():
        r = get_row(k, ns, "live")
        assert restarts(r["RESTARTS"]) >= 1, r
    eventually(restarted)
    killing = events_with(k, ns, "live", "Killing")
    assert killing[0]["type"] == "Normal"
    assert killing[0]["message"] == "Container c failed liveness probe, will be restarted"
    unhealthy = events_with(k, ns, "live", "Unhealthy")
    assert unhealthy[0]["type"] == "Warning"
    assert unhealthy[0]["message"].startswith("Liveness probe failed:"), unhealthy[0]
    assert "/tmp/healthy" in unhealthy[0]["message"]
    st = cstatus(pod_json(k, ns, "live"), "c")
    # killed by the agent (SIGKILL after TERM or TERM itself): not a clean exit
    assert st["lastState"]["terminated"]["exitCode"] != 0, st


def test_startup_probe_gates_readiness_until_it_succeeds(k, ns):
    c = container("c", "sleep 3600",
                  startupProbe={"exec": {"command": ["cat", "/tmp/started"]},
                                "periodSeconds": 1, "failureThreshold": 600},
                  readinessProbe={"exec": {"command": ["true"]}, "periodSeconds": 1})
    create(k, ns, pod("gated", c))

    def running_not_started():
        st = cstatus(pod_json(k, ns, "gated"), "c")
        assert "running" in st.get("state", {}), st
        return st
    st = eventually(running_not_started)
    assert st["started"] is False and st["ready"] is False
    time.sleep(5)                 # readiness would have passed by now were it not gated
    st = cstatus(pod_json(k, ns, "gated"), "c")
    assert st["started"] is False and st["ready"] is False, st
    assert get_row(k, ns, "gated")["READY"] == "0/1"
    assert sh(k, ns, "gated", "touch /tmp/started").returncode == 0
    running(k, ns, "gated")
    st = cstatus(pod_json(k, ns, "gated"), "c")
    assert st["started"] is True and st["ready"] is True and st["restartCount"] == 0


def test_a_failing_startup_probe_restarts_the_container(k, ns):
    c = container("c", "sleep 3600",
                  startupProbe={"exec": {"command": ["cat", "/tmp/never"]},
                                "periodSeconds": 1, "failureThreshold": 2})
    create(k, ns, pod("nostart", c))
    killing = events_with(k, ns, "nostart", "Killing")
    assert killing[0]["message"] == "Container c failed startup probe, will be restarted"
    eventually(lambda: _assert(restarts(get_row(k, ns, "nostart")["RESTARTS"]) >= 1))


def _assert(ok, *why):
    assert ok, why


def _assert_equal(a, b):
    assert a == b, (a, b)


def test_tcp_readiness_and_a_failing_http_liveness_probe(k, ns):
    """tcpSocket readiness on nginx's port makes it Ready; an httpGet liveness probe on a path
    nginx answers with 404 fails, so the container is restarted."""
    c = container("nginx", image="nginx",
                  readinessProbe={"tcpSocket": {"port": 80}, "periodSeconds": 1},
                  livenessProbe={"httpGet": {"path": "/missing", "port": 80},
                                 "periodSeconds": 1, "failureThreshold": 3})
    create(k, ns, pod("web", c))
    killing = events_with(k, ns, "web", "Killing")
    assert killing[0]["message"] == "Container nginx failed liveness probe, will be restarted"
    unhealthy = [e for e in events(k, ns, "web") if e["reason"] == "Unhealthy"]
    assert any(e["message"].startswith("Liveness probe failed: HTTP probe failed with "
                                       "statuscode: 404") for e in unhealthy), unhealthy
    assert not any(e["message"].startswith("Readiness") for e in unhealthy), unhealthy
    eventually(lambda: _assert(restarts(get_row(k, ns, "web")["RESTARTS"]) >= 1))


def test_an_exec_probe_that_times_out_fails(k, ns):
    c = container("c", "sleep 3600", readinessProbe={
        "exec": {"command": ["sleep", "30"]}, "timeoutSeconds": 1, "periodSeconds": 2})
    create(k, ns, pod("slowprobe", c))
    ev = events_with(k, ns, "slowprobe", "Unhealthy")
    assert ev[0]["message"] == 'Readiness probe failed: command "sleep 30" timed out', ev[0]
    r = get_row(k, ns, "slowprobe")
    assert (r["READY"], r["STATUS"]) == ("0/1", "Running"), r


# --- environment ----------------------------------------------------------------------------

GRPC_HEALTH_SERVER = """
import sys, time
from concurrent import futures
import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
servicer = health.HealthServicer()
health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
server.add_insecure_port("0.0.0.0:9090")
server.start()
servicer.set("", health_pb2.HealthCheckResponse.SERVING)
servicer.set("db", health_pb2.HealthCheckResponse.NOT_SERVING)
print("serving", flush=True)
server.wait_for_termination()
"""


def test_grpc_probes_against_a_real_grpc_health_server_in_the_pod(k, ns):
    """The container runs grpcio's health service (the test's own Python, seen through the
    container's view of the host); a readiness probe on the overall service makes it Ready,
    a liveness probe on a NOT_SERVING service restarts it with kubelet's message."""
    pytest.importorskip("grpc_health", reason="grpcio-health-checking is a test dependency")
    import sys

    def server(name, **probe):
        c = container("g", image="busybox", **probe)
        c["command"] = [sys.executable, "-c", GRPC_HEALTH_SERVER]
        return pod(name, c)
    create(k, ns, server("ready", readinessProbe={"grpc": {"port": 9090}, "periodSeconds": 1}))
    create(k, ns, server("sick", livenessProbe={"grpc": {"port": 9090, "service": "db"},
                                                "periodSeconds": 1, "failureThreshold": 1,
                                                "initialDelaySeconds": 2}))
    running(k, ns, "ready")
    assert cstatus(pod_json(k, ns, "ready"), "g")["ready"] is True
    evs = events_with(k, ns, "sick", "Unhealthy")
    assert evs[0]["message"] == \
        'Liveness probe failed: service unhealthy (responded with "NOT_SERVING")', evs
    eventually(lambda: _assert_equal(
        cstatus(pod_json(k, ns, "sick"), "g").get("restartCount", 0) >= 1, True), timeout=90)


def test_environment_from_values_references_and_the_downward_api(k, ns):
    create(k, ns, configmap("settings", {"color": "blue", "size": "large"}))
    create(k, ns, secret("creds", {"password": "s3cret", "user": "admin"}))
    env = [
        {"name": "GREETING", "value": "hello"},
        {"name": "EXPANDED", "value": "$(GREETING)-world"},
        {"name": "ESCAPED", "value": "$$(GREETING)"},
        {"name": "UNDEFINED", "value": "$(NO_SUCH_VAR)"},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "color"}}},
        {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
        {"name": "OPTIONAL", "valueFrom": {"configMapKeyRef": {
            "name": "absent", "key": "k", "optional": True}}},
        {"name": "MEM_LIMIT", "valueFrom": {"resourceFieldRef": {
            "containerName": "c", "resource": "limits.memory"}}},
        {"name": "CPU_LIMIT_M", "valueFrom": {"resourceFieldRef": {
            "resource": "limits.cpu", "divisor": "1m"}}},
        {"name": "CPU_LIMIT", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
        {"name": "CM_size", "value": "overridden"},
        {"name": "EARLY", "value": "$(LATE)"},          # only earlier variables expand
        {"name": "LATE", "value": "late"},
    ]
    c = container("c", "echo CMD=$(GREETING); env; sleep 3600", env=env,
                  envFrom=[{"configMapRef": {"name": "settings"}, "prefix": "CM_"},
                           {"secretRef": {"name": "creds"}}],
                  resources={"limits": {"memory": "64Mi", "cpu": "500m"}})
    create(k, ns, pod("envs", c))
    running(k, ns, "envs")
    p = pod_json(k, ns, "envs")

    def logged():
        out = k.ok("logs", "envs", "-n", ns)
        assert "PASSWORD=" in out, out
        return out
    out = eventually(logged)
    got = dict(ln.split("=", 1) for ln in out.splitlines() if "=" in ln)
    assert got["CMD"] == "hello"                    # $(VAR) in the command is expanded too
    want = {"GREETING": "hello", "EXPANDED": "hello-world", "ESCAPED": "$(GREETING)",
            "UNDEFINED": "$(NO_SUCH_VAR)", "POD_NAME": "envs", "POD_NS": ns,
            "POD_IP": p["status"]["podIP"], "NODE": p["spec"]["nodeName"], "COLOR": "blue",
            "PASSWORD": "s3cret", "MEM_LIMIT": str(64 << 20), "CPU_LIMIT_M": "500",
            "CPU_LIMIT": "1", "EARLY": "$(LATE)", "CM_color": "blue", "CM_size": "overridden", "user": "admin",
            "password": "s3cret"}
    assert {key: got.get(key) for key in want} == want
    assert "OPTIONAL" not in got


def test_a_missing_configmap_gives_create_container_config_error(k, ns):
    c = container("c", "sleep 3600", env=[{"name": "X", "valueFrom": {
        "configMapKeyRef": {"name": "nowhere", "key": "k"}}}])
    create(k, ns, pod("nocm", c))
    status_is(k, ns, "nocm", "CreateContainerConfigError")
    st = cstatus(pod_json(k, ns, "nocm"), "c")
    assert st["state"]["waiting"]["reason"] == "CreateContainerConfigError"
    assert st["state"]["waiting"]["message"] == 'configmap "nowhere" not found'
    failed = events_with(k, ns, "nocm", "Failed")
    assert failed[0]["type"] == "Warning"
    assert failed[0]["message"] == 'Error: configmap "nowhere" not found'


def test_a_container_starts_once_its_missing_configmap_exists(k, ns):
    c = container("c", "echo X=$X; sleep 3600", env=[{"name": "X", "valueFrom": {
        "configMapKeyRef": {"name": "late", "key": "k"}}}])
    create(k, ns, pod("late", c))
    status_is(k, ns, "late", "CreateContainerConfigError")
    create(k, ns, configmap("late", {"k": "v"}))
    running(k, ns, "late")      # kubelet retries a failed sync within ~10-20 s
    eventually(lambda: _assert_equal(k.ok("logs", "late", "-n", ns), "X=v\n"))


def test_a_missing_secret_gives_create_container_config_error(k, ns):
    c = container("c", "sleep 3600", env=[{"name": "X", "valueFrom": {
        "secretKeyRef": {"name": "hidden", "key": "k"}}}])
    create(k, ns, pod("nosec", c))
    status_is(k, ns, "nosec", "CreateContainerConfigError")
    st = cstatus(pod_json(k, ns, "nosec"), "c")
    assert st["state"]["waiting"]["message"] == 'secret "hidden" not found'


def test_a_missing_configmap_key_gives_create_container_config_error(k, ns):
    create(k, ns, configmap("partial", {"present": "1"}))
    c = container("c", "sleep 3600", env=[{"name": "X", "valueFrom": {
        "configMapKeyRef": {"name": "partial", "key": "absent"}}}])
    create(k, ns, pod("nokey", c))
    status_is(k, ns, "nokey", "CreateContainerConfigError")
    st = cstatus(pod_json(k, ns, "nokey"), "c")
    assert st["state"]["waiting"]["message"] == \
        "couldn't find key absent in ConfigMap " + ns + "/partial"


def test_a_container_config_error_reports_no_started_container(k, ns):
    c = container("c", "sleep 3600", env=[{"name": "X", "valueFrom": {
        "configMapKeyRef": {"name": "nowhere", "key": "k"}}}])
    create(k, ns, pod("nocm", c))
    status_is(k, ns, "nocm", "CreateContainerConfigError")
    events_with(k, ns, "nocm", "Failed")
    reasons = [e["reason"] for e in events(k, ns, "nocm")]
    assert "Started" not in reasons and "Created" not in reasons, reasons


# --- volumes --------------------------------------------------------------------------------

def test_configmap_secret_and_downward_api_volumes(k, ns):
    create(k, ns, configmap("files", {"a.conf": "alpha", "b.conf": "beta"}))
    create(k, ns, secret("keys", {"token": "t0ken"}))
    mounts = [{"name": "cm", "mountPath": "/cm"}, {"name": "items", "mountPath": "/items"},
              {"name": "sec", "mountPath": "/sec"}, {"name": "info", "mountPath": "/info"}]
    p = pod("vols", container("c", "sleep 3600", volumeMounts=mounts), volumes=[
        {"name": "cm", "configMap": {"name": "files"}},
        {"name": "items", "configMap": {"name": "files", "defaultMode": 0o400,
                                        "items": [{"key": "b.conf", "path": "sub/bee"}]}},
        {"name": "sec", "secret": {"secretName": "keys"}},
        {"name": "info", "downwardAPI": {"items": [
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
            {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}}])
    p["metadata"]["labels"] = {"tier": "back", "app": "demo"}
    create(k, ns, p)
    running(k, ns, "vols")

    def read(path):
        r = sh(k, ns, "vols", f"cat {path}")
        assert r.returncode == 0, r
        return r.stdout
    assert read("/cm/a.conf") == "alpha" and read("/cm/b.conf") == "beta"
    assert read("/items/sub/bee") == "beta"
    assert sh(k, ns, "vols", "ls /items").stdout.split() == ["sub"]
    assert sh(k, ns, "vols", "stat -L -c %a /items/sub/bee").stdout.strip() == "400"
    assert read("/sec/token") == "t0ken"
    assert read("/info/labels").splitlines() == ['app="demo"', 'tier="back"']
    assert read("/info/name") == "vols"
    # configMap and secret volumes are read-only in the container
    w = sh(k, ns, "vols", "echo x > /cm/a.conf")
    assert w.returncode != 0
    assert read("/cm/a.conf") == "alpha"


def test_empty_dir_is_shared_by_two_containers_and_medium_memory_is_tmpfs(k, ns):
    create(k, ns, pod("share",
                      container("writer", "echo from-writer > /shared/msg; sleep 3600",
                                volumeMounts=[{"name": "shared", "mountPath": "/shared"},
                                              {"name": "ram", "mountPath": "/ram"}]),
                      container("reader", "sleep 3600",
                                volumeMounts=[{"name": "shared", "mountPath": "/data"}]),
                      volumes=[{"name": "shared", "emptyDir": {}},
                               {"name": "ram", "emptyDir": {"medium": "Memory"}}]))
    running(k, ns, "share")

    def shared():
        r = sh(k, ns, "share", "cat /data/msg", c="reader")
        assert r.returncode == 0 and r.stdout == "from-writer\n", r
    eventually(shared)
    mounts = sh(k, ns, "share", "cat /proc/mounts", c="writer").stdout
    ram = [ln.split() for ln in mounts.splitlines() if ln.split()[1:2] == ["/ram"]]
    assert ram and ram[-1][2] == "tmpfs", mounts
    assert sh(k, ns, "share", "echo y > /ram/f && cat /ram/f", c="writer").stdout == "y\n"


def test_a_configmap_volume_waits_for_its_configmap(k, ns):
    create(k, ns, pod("cmwait", container("c", "cat /cm/k; echo; sleep 3600",
                                          volumeMounts=[{"name": "cm", "mountPath": "/cm"}]),
                      volumes=[{"name": "cm", "configMap": {"name": "later"}}]))
    ev = events_with(k, ns, "cmwait", "FailedMount")
    assert ev[0]["type"] == "Warning"
    assert 'volume "cm"' in ev[0]["message"], ev[0]
    assert 'configmap "later" not found' in ev[0]["message"], ev[0]
    assert get_row(k, ns, "cmwait")["STATUS"] == "ContainerCreating"
    create(k, ns, configmap("later", {"k": "arrived"}))
    running(k, ns, "cmwait")
    eventually(lambda: _assert_equal(k.ok("logs", "cmwait", "-n", ns), "arrived\n"))


def test_a_projected_volume_joins_configmap_secret_and_downward_api(k, ns):
    create(k, ns, configmap("pcm", {"c": "cee"}))
    create(k, ns, secret("psec", {"s": "ess"}))
    p = pod("proj", container("c", "sleep 3600", volumeMounts=[{"name": "p", "mountPath": "/p"}]),
            volumes=[{"name": "p", "projected": {"sources": [
                {"downwardAPI": {"items": [{"path": "labels",
                                            "fieldRef": {"fieldPath": "metadata.labels"}}]}},
                {"configMap": {"name": "pcm"}},
                {"secret": {"name": "psec", "items": [{"key": "s", "path": "secret-s"}]}}]}}])
    p["metadata"]["labels"] = {"x": "yes"}
    create(k, ns, p)
    running(k, ns, "proj")
    assert sh(k, ns, "proj", "ls /p").stdout.split() == ["c", "labels", "secret-s"]
    assert sh(k, ns, "proj", "cat /p/labels; echo; cat /p/c; echo; cat /p/secret-s").stdout \
        .split() == ['x="yes"', "cee", "ess"]


def test_a_configmap_volume_follows_its_source_and_its_deletion_leaves_the_pod_running(k, ns):
    """The node's periodic sync (a minute, as kubelet's; 10 s in these tests) brings a
    changed ConfigMap into the volume; when the ConfigMap goes, the pod keeps running with what it has and a FailedMount
    event says why (kubelet leaves the pod's status alone)."""
    create(k, ns, configmap("live", {"k": "one"}))
    create(k, ns, pod("follower", container(
        "c", "sleep 3600", volumeMounts=[{"name": "cm", "mountPath": "/cm"}]),
        volumes=[{"name": "cm", "configMap": {"name": "live"}}]))
    running(k, ns, "follower")
    assert sh(k, ns, "follower", "cat /cm/k").stdout == "one"
    k.ok("patch", "configmap", "live", "-n", ns, "-p", '{"data": {"k": "two"}}')
    eventually(lambda: _assert_equal(sh(k, ns, "follower", "cat /cm/k").stdout, "two"),
               timeout=60)
    k.ok("delete", "configmap", "live", "-n", ns)
    evs = eventually(lambda: [e for e in events(k, ns, "follower")
                              if e["reason"] == "FailedMount"] or _fail("no FailedMount yet"),
                     timeout=60)
    assert 'configmap "live" not found' in evs[0]["message"], evs
    r = get_row(k, ns, "follower")
    assert (r["READY"], r["STATUS"]) == ("1/1", "Running"), r
    assert sh(k, ns, "follower", "cat /cm/k").stdout == "two"


def _fail(why):
    raise AssertionError(why)


def test_a_memory_empty_dir_is_capped_by_its_size_limit(k, ns):
    create(k, ns, pod("capped", container("c", "sleep 3600",
                                          volumeMounts=[{"name": "r", "mountPath": "/r"}]),
                      volumes=[{"name": "r", "emptyDir": {"medium": "Memory",
                                                          "sizeLimit": "1Mi"}}]))
    running(k, ns, "capped")
    w = sh(k, ns, "capped", "dd if=/dev/zero of=/r/big bs=4096 count=1024")
    assert w.returncode != 0 and "No space left on device" in w.stderr, w
    size = int(sh(k, ns, "capped", "stat -c %s /r/big").stdout)
    assert size <= 1 << 20, size
    assert sh(k, ns, "capped", "rm /r/big").returncode == 0
    assert sh(k, ns, "capped", "head -c 1000 /dev/zero > /r/small").returncode == 0


def test_a_disk_empty_dir_over_its_size_limit_evicts_the_pod(k, ns):
    """kubelet's local-storage eviction: Failed/Evicted with upstream's message, a Warning
    event, the container killed. kubectl's STATUS column is
    then the killed container's reason (Error), as it prints for upstream's evicted pods."""
    create(k, ns, pod("over", container("c", "head -c 20971520 /dev/zero > /d/big; sleep 3600",
                                        volumeMounts=[{"name": "d", "mountPath": "/d"}]),
                      volumes=[{"name": "d", "emptyDir": {"sizeLimit": "5Mi"}}]))

    def evicted():
        p = pod_json(k, ns, "over")
        assert p["status"].get("reason") == "Evicted" and p["status"]["phase"] == "Failed", \
            p["status"]
        return p
    p = eventually(evicted, timeout=60)
    message = 'Usage of EmptyDir volume "d" exceeds the limit "5Mi". '
    assert p["status"]["message"] == message
    # as upstream's local-storage evictions: no DisruptionTarget (node pressure only)
    assert "DisruptionTarget" not in {c["type"] for c in p["status"]["conditions"]}
    term = cstatus(p, "c")["state"]["terminated"]
    assert term["exitCode"] == 137, term
    assert get_row(k, ns, "over")["STATUS"] == "Error"
    evs = [e for e in events(k, ns, "over") if e["reason"] == "Evicted"]
    assert len(evs) == 1 and evs[0]["type"] == "Warning" and evs[0]["message"] == message, evs


def test_a_container_over_its_ephemeral_storage_limit_evicts_the_pod(k, ns):
    """Its writable layer counts: a file written outside any volume."""
    c = container("c", "head -c 12582912 /dev/zero > /var/big; sleep 3600",
                  resources={"limits": {"ephemeral-storage": "8Mi"}})
    create(k, ns, pod("layer", c, container("d", "sleep 3600")))

    def evicted():
        p = pod_json(k, ns, "layer")
        assert p["status"].get("reason") == "Evicted", p["status"]
        return p
    p = eventually(evicted, timeout=60)
    # the pod's limit (the sum of its containers') is checked before the container's own
    assert p["status"]["message"] == \
        "Pod ephemeral local storage usage exceeds the total limit of containers 8Mi. "


def test_an_empty_dir_within_its_size_limit_is_left_alone(k, ns):
    create(k, ns, pod("under", container("c", "head -c 1048576 /dev/zero > /d/f; sleep 3600",
                                         volumeMounts=[{"name": "d", "mountPath": "/d"}]),
                      volumes=[{"name": "d", "emptyDir": {"sizeLimit": "5Mi"}}]))
    running(k, ns, "under")
    eventually(lambda: _assert_equal(sh(k, ns, "under", "stat -c %s /d/f").stdout, "1048576\n"))
    time.sleep(12)               # one storage check of the agent (every 10 s) has passed
    p = pod_json(k, ns, "under")
    assert p["status"]["phase"] == "Running" and "reason" not in p["status"], p["status"]


def test_sub_path_expr_optional_sources_and_downward_api_resources(k, ns):
    c = container("c", "echo hi > /out/f; sleep 3600",
                  env=[{"name": "POD_NAME",
                        "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                  resources={"limits": {"memory": "32Mi"}},
                  volumeMounts=[{"name": "d", "mountPath": "/out", "subPathExpr": "$(POD_NAME)"},
                                {"name": "d", "mountPath": "/all"},
                                {"name": "res", "mountPath": "/res"},
                                {"name": "optcm", "mountPath": "/optcm"},
                                {"name": "optsec", "mountPath": "/optsec"}])
    create(k, ns, pod("spe", c, volumes=[
        {"name": "d", "emptyDir": {}},
        {"name": "res", "downwardAPI": {"items": [{"path": "mem", "resourceFieldRef": {
            "containerName": "c", "resource": "limits.memory", "divisor": "1Mi"}}]}},
        {"name": "optcm", "configMap": {"name": "absent", "optional": True}},
        {"name": "optsec", "secret": {"secretName": "absent", "optional": True}}]))
    running(k, ns, "spe")
    eventually(lambda: _assert_equal(sh(k, ns, "spe", "cat /all/spe/f").stdout, "hi\n"))
    assert sh(k, ns, "spe", "cat /res/mem").stdout == "32"
    assert sh(k, ns, "spe", "ls /optcm /optsec").returncode == 0
    assert sh(k, ns, "spe", "ls /optcm").stdout.split() == []


def test_hostpath_type_file_on_a_directory_fails_to_mount(k, ns, tmp_path):
    d = str(tmp_path / "a-dir")
    os.makedirs(d)
    create(k, ns, pod("hpfile", container("c", "sleep 3600",
                                          volumeMounts=[{"name": "h", "mountPath": "/h"}]),
                      volumes=[{"name": "h", "hostPath": {"path": d, "type": "File"}}]))
    ev = events_with(k, ns, "hpfile", "FailedMount")
    assert ev[0]["message"] == \
        f'MountVolume.SetUp failed for volume "h" : hostPath type check failed: {d} is not a file'
    assert get_row(k, ns, "hpfile")["STATUS"] == "ContainerCreating"


def test_hostpath_directory_that_does_not_exist_fails_to_mount(k, ns, tmp_path):
    missing = str(tmp_path / "not-there")
    create(k, ns, pod("hp", container("c", "sleep 3600",
                                      volumeMounts=[{"name": "h", "mountPath": "/h"}]),
                      volumes=[{"name": "h", "hostPath": {"path": missing,
                                                          "type": "Directory"}}]))
    ev = events_with(k, ns, "hp", "FailedMount")
    assert ev[0]["type"] == "Warning"
    assert 'volume "h"' in ev[0]["message"] and missing in ev[0]["message"], ev[0]
    r = get_row(k, ns, "hp")
    assert (r["READY"], r["STATUS"]) == ("0/1", "ContainerCreating"), r
    assert not os.path.exists(missing)           # type Directory never creates it
    # a pod that never got its volumes still deletes
    d = k("delete", "pod", "hp", "-n", ns, "--timeout=60s")
    assert d.returncode == 0, d
    assert k("get", "pod", "hp", "-n", ns).returncode != 0


def test_hostpath_directory_or_create_makes_the_directory(k, ns, tmp_path):
    made = str(tmp_path / "made")
    create(k, ns, pod("hpc", container("c", "echo hi > /h/f; sleep 3600",
                                       volumeMounts=[{"name": "h", "mountPath": "/h"}]),
                      volumes=[{"name": "h", "hostPath": {"path": made,
                                                          "type": "DirectoryOrCreate"}}]))
    running(k, ns, "hpc")
    eventually(lambda: _assert(os.path.exists(os.path.join(made, "f"))))
    with open(os.path.join(made, "f")) as f:
        assert f.read() == "hi\n"


def test_read_only_mount_refuses_writes_and_sub_path_mounts_a_part(k, ns):
    mounts = [{"name": "d", "mountPath": "/rw"},
              {"name": "d", "mountPath": "/ro", "readOnly": True},
              {"name": "d", "mountPath": "/sub", "subPath": "part"},
              {"name": "cm", "mountPath": "/etc/app.conf", "subPath": "app.conf"}]
    create(k, ns, configmap("conf", {"app.conf": "setting=1", "other": "x"}))
    create(k, ns, pod("mnt", container("c", "sleep 3600", volumeMounts=mounts),
                      volumes=[{"name": "d", "emptyDir": {}},
                               {"name": "cm", "configMap": {"name": "conf"}}]))
    running(k, ns, "mnt")
    w = sh(k, ns, "mnt", "touch /ro/nope")
    assert w.returncode != 0 and "Read-only file system" in w.stderr, w
    assert sh(k, ns, "mnt", "echo a > /rw/f && cat /ro/f").stdout == "a\n"
    # the subPath directory is created in the volume and writes land there
    assert sh(k, ns, "mnt", "echo b > /sub/g && cat /rw/part/g").stdout == "b\n"
    assert sh(k, ns, "mnt", "ls /sub").stdout.split() == ["g"]
    assert sh(k, ns, "mnt", "cat /etc/app.conf").stdout == "setting=1"


def test_a_pod_naming_a_missing_claim_stays_pending_with_an_event_naming_it(k, ns):
    create(k, ns, pod("noclaim", container("c", "sleep 3600",
                                           volumeMounts=[{"name": "d", "mountPath": "/d"}]),
                      volumes=[{"name": "d",
                                "persistentVolumeClaim": {"claimName": "no-such-claim"}}]))

    def warned():
        evs = [e for e in events(k, ns, "noclaim") if e["type"] == "Warning"]
        # upstream's scheduler refuses it first (FailedScheduling); a node that got it anyway
        # would say FailedMount: either way the claim is named
        assert any(e["reason"] in ("FailedScheduling", "FailedMount") and
                   "no-such-claim" in e["message"] for e in evs), evs
        return evs
    eventually(warned)
    r = get_row(k, ns, "noclaim")
    assert r["STATUS"] in ("Pending", "ContainerCreating") and r["READY"] == "0/1", r
    assert pod_json(k, ns, "noclaim")["status"]["phase"] == "Pending"
