"""Helpers and fixtures shared by the real node's e2e modules (test_node_lifecycle.py,
test_node_probes_env_volumes.py): one `k1s up` per module (`node_cluster`), a kubectl for it
(`k`), a namespace per test (`ns`, named after the test with the module's NS_PREFIX), small
manifest builders and polling helpers. A module uses them with
`from node_util import *  # noqa: F401,F403` so pytest sees the fixtures.
"""

from __future__ import annotations

import json
import os
import time

import pytest

import e2e_util
from k1s_harness import Kubectl, pinned_kubectl, start_cluster, stop_cluster

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="the real node runs pods as processes in Linux namespaces with "
    "mounts and cgroups, which needs root (CI runs as root)")

WAIT = 90.0            # seconds a state may take to show up on a loaded machine


# --- cluster, kubectl, namespace ----------------------------------------------------------

@pytest.fixture(scope="module")
def node_cluster(tmp_path_factory, request):
    """One `k1s up` (API server, controllers, scheduler and the real node) for the module."""
    # the node's periodic pod sync (kubelet's --sync-frequency, a minute) every 10 s, so that
    # what follows from it (volumes following their sources) shows within a test's wait
    c = start_cluster(str(tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])),
                      env={"K1S_SYNC_FREQUENCY": "10"})
    try:
        yield c
    finally:
        stop_cluster(c)


@pytest.fixture
def k(node_cluster, tmp_path) -> Kubectl:
    return Kubectl(pinned_kubectl(), node_cluster.kubeconfig, str(tmp_path / "kcache"))


@pytest.fixture
def ns(k, request):
    """A namespace of this test's own; deleting it takes its pods down."""
    name = getattr(request.module, "NS_PREFIX", "n-") + "".join(ch if ch.isalnum() else "-"
                           for ch in request.node.name.lower())[5:40].strip("-")
    name = f"{name}-{os.urandom(2).hex()}"
    k.ok("create", "namespace", name)
    yield name
    k("delete", "namespace", name, "--wait=false")


# --- manifests and what kubectl shows ------------------------------------------------------

def container(name: str, script: str | None = None, image: str = "busybox", **extra) -> dict:
    c: dict = {"name": name, "image": image}
    if script is not None:
        c["command"] = ["sh", "-c", script]
    c.update(extra)
    return c


def pod(name: str, *containers: dict, restart: str = "Always", **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"restartPolicy": restart, "containers": list(containers), **spec}}


def create(k: Kubectl, ns: str, obj: dict) -> None:
    k.ok("create", "-n", ns, "-f", "-", input=json.dumps(obj))


def get_row(k: Kubectl, ns: str, name: str, *wide: str) -> dict[str, str]:
    """The pod's row of `kubectl get pod` as {COLUMN: cell}."""
    return e2e_util.row(k.ok("get", "pod", name, "-n", ns, *wide), name)


def pod_json(k: Kubectl, ns: str, name: str) -> dict:
    return k.json("get", "pod", name, "-n", ns)


def cstatus(p: dict, name: str, key: str = "containerStatuses") -> dict:
    for s in (p.get("status") or {}).get(key) or ():
        if s["name"] == name:
            return s
    return {}


def events(k: Kubectl, ns: str, name: str) -> list[dict]:
    items = k.json("get", "events", "-n", ns)["items"]
    return [e for e in items if (e.get("involvedObject") or {}).get("name") == name]


def restarts(cell: str) -> int:
    """RESTARTS cell: `3` or `3 (5s ago)`."""
    return int(cell.split()[0])


def eventually(check, timeout: float = WAIT, interval: float = 0.5):
    """Call `check` until it stops raising AssertionError; return its value."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        time.sleep(interval)


def status_is(k: Kubectl, ns: str, name: str, want: str) -> dict[str, str]:
    def check():
        r = get_row(k, ns, name)
        assert r["STATUS"] == want, r
        return r
    return eventually(check)


def running(k: Kubectl, ns: str, name: str) -> dict[str, str]:
    def check():
        r = get_row(k, ns, name)
        ready, total = r["READY"].split("/")
        assert r["STATUS"] == "Running" and ready == total, r
        return r
    return eventually(check)
