"""The whole path through `k1s up` and real kubectl: a claim on the default class with a
consumer pod is provisioned on this node's ext4 image and Bound; growing it grows the
filesystem; deleting it removes the data and the PV."""

from __future__ import annotations

import errno
import json
import os
import time

import pytest

from k1s.node.volumes import images

LOOP_OK, WHY = images.loop_supported()
pytestmark = pytest.mark.skipif(not LOOP_OK, reason=f"no loop-device volumes here: {WHY}")
MiB = 1 << 20


def wait_for(fn, timeout=15.0):
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError("condition not met")
        time.sleep(0.1)


def test_default_class_claim_is_provisioned_bound_grown_and_deleted(kubectl, namespace):
    docs = [{"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
             "spec": {"accessModes": ["ReadWriteOnce"],
                      "resources": {"requests": {"storage": "16Mi"}}}},
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "user"},
             "spec": {"containers": [{"name": "c", "image": "busybox"}],
                      "volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "data"}}]}}]
    kubectl.ok("apply", "-n", namespace, "-f", "-", input="\n---\n".join(map(json.dumps, docs)))

    def bound():
        c = kubectl.json("get", "pvc", "data", "-n", namespace, "-o", "json")
        return c if c["status"].get("phase") == "Bound" else None
    claim = wait_for(bound)
    assert claim["spec"]["storageClassName"] == "standard"
    pv = kubectl.json("get", "pv", claim["spec"]["volumeName"], "-o", "json")
    assert pv["metadata"]["name"] == "pvc-" + claim["metadata"]["uid"]
    assert pv["metadata"]["annotations"]["pv.kubernetes.io/provisioned-by"] == "k1s.io/local"
    mnt = pv["spec"]["local"]["path"]
    assert os.path.ismount(mnt)
    with pytest.raises(OSError) as e:
        with open(os.path.join(mnt, "big"), "wb") as f:
            f.write(b"x" * (20 * MiB))
            os.fsync(f.fileno())
    assert e.value.errno == errno.ENOSPC
    os.unlink(os.path.join(mnt, "big"))
    events = kubectl.ok("get", "events", "-n", namespace,
                        "--field-selector", "involvedObject.name=data")
    assert "ProvisioningSucceeded" in events

    kubectl.ok("patch", "pvc", "data", "-n", namespace, "-p",
               json.dumps({"spec": {"resources": {"requests": {"storage": "40Mi"}}}}))
    wait_for(lambda: kubectl.json("get", "pvc", "data", "-n", namespace, "-o", "json")
             ["status"]["capacity"]["storage"] == "40Mi")
    with open(os.path.join(mnt, "big"), "wb") as f:
        f.write(b"x" * (20 * MiB))
        os.fsync(f.fileno())

    # the scheduler has put the pod on this node, so its claim stays protected until the node
    # confirms the pod's end; force the deletion: the volume is what this test is about
    kubectl.ok("delete", "pod", "user", "-n", namespace, "--grace-period=0", "--force",
               "--wait=false")
    kubectl.ok("delete", "pvc", "data", "-n", namespace, "--wait=false")
    wait_for(lambda: kubectl("get", "pv", pv["metadata"]["name"]).returncode != 0)
    assert not os.path.exists(os.path.dirname(mnt))
