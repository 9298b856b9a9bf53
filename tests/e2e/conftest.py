"""Fixtures for the kubectl end-to-end tests against `k1s up`.

- `namespace` is redefined here with a random suffix: the shared fixture cuts the test name
  to 40 characters, so the [pinned] and [machine] variants of a long test name would share a
  namespace, and the second would find the first one still terminating.
- `anykubectl` runs a test once with the pinned kubectl (1.37) and once with the machine's
  /usr/bin/kubectl (the 1.32 dispatcher), when it exists; `.minor` is its minor version.
"""

from __future__ import annotations

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import e2e_util  # noqa: E402
from k1s_harness import Kubectl, machine_kubectl, pinned_kubectl  # noqa: E402


def _ns_name(request) -> str:
    base = "e2e-" + request.node.name.lower()
    base = "".join(c if c.isalnum() else "-" for c in base)[:48].strip("-")
    return f"{base}-{os.urandom(2).hex()}"


@pytest.fixture
def namespace(kubectl, request):
    """A fresh namespace for one test, deleted afterwards."""
    name = _ns_name(request)
    kubectl.ok("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false")


@pytest.fixture(params=["pinned", "machine"])
def anykubectl(request, cluster, tmp_path):
    """The pinned kubectl, then the machine's own kubectl (skipped when absent)."""
    if request.param == "pinned":
        binary = pinned_kubectl()
    else:
        binary = machine_kubectl()
        if binary is None:
            pytest.skip("no machine kubectl (/usr/bin/kubectl) besides the pinned one")
    k = Kubectl(binary, cluster.kubeconfig, str(tmp_path / f"kcache-{request.param}"))
    k.minor = e2e_util.client_minor(k)
    return k


@pytest.fixture
def minor(kubectl) -> int:
    """Minor version of the pinned kubectl."""
    return e2e_util.client_minor(kubectl)


@pytest.fixture(scope="session")
def gc_running(cluster, tmp_path_factory) -> bool:
    """Whether the garbage collector runs in this cluster: a background delete of an owner
    removes its dependent within a few seconds."""
    k = Kubectl(pinned_kubectl(), cluster.kubeconfig, str(tmp_path_factory.mktemp("gcprobe")))
    owner, dep = "e2e-gc-probe-owner", "e2e-gc-probe-dep"
    k.ok("create", "-f", "-", input=e2e_util.configmap(owner))
    uid = k.ok("get", "cm", owner, "-o", "jsonpath={.metadata.uid}")
    k.ok("create", "-f", "-", input=e2e_util.configmap(dep, owner=(owner, uid)))
    k.ok("delete", "cm", owner)
    gone = e2e_util.wait_until(lambda: k("get", "cm", dep).returncode == 1, timeout=5)
    if not gone:
        k("delete", "cm", dep, "--wait=false")
    return bool(gone)
