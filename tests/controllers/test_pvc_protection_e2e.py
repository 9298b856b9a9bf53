"""The protection controllers as `k1s up` runs them, driven by real kubectl: a claim in use
shows Terminating until its pod is force-deleted, then `kubectl wait --for=delete` returns."""

from __future__ import annotations

import json
import time


def wait_for(fn, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(0.05)


def test_claim_in_use_terminates_after_pod(kubectl, namespace):
    docs = [
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "held"},
         "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "",
                  "resources": {"requests": {"storage": "1Gi"}}}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "holder"},
         "spec": {"nodeName": "elsewhere", "containers": [{"name": "c", "image": "busybox"}],
                  "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "held"}}]}},
    ]
    kubectl.ok("apply", "-n", namespace, "-f", "-", input="\n---\n".join(map(json.dumps, docs)))
    assert wait_for(lambda: "kubernetes.io/pvc-protection" in kubectl.ok(
        "get", "pvc", "held", "-n", namespace, "-o", "jsonpath={.metadata.finalizers}"))
    kubectl.ok("delete", "pvc", "held", "-n", namespace, "--wait=false")
    time.sleep(0.5)
    row = kubectl.ok("get", "pvc", "held", "-n", namespace, "--no-headers")
    assert row.split()[1] == "Terminating", row
    kubectl.ok("delete", "pod", "holder", "-n", namespace, "--grace-period=0", "--force")
    kubectl.ok("wait", "--for=delete", "pvc/held", "-n", namespace, "--timeout=10s")
