"""Helpers the benchmarks share: starting `k1s up` and a reference server, timing, medians.

Benchmarks are scripts, not tests: they print figures beside a reference measured in the same
run, as medians over repeats, because these machines are noisy.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def raise_nofile(n: int = 65536) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(soft, n), hard), hard))


def kubectl_binary() -> str:
    cand = os.path.join(os.path.dirname(sys.executable), "kubectl")
    return cand if os.path.exists(cand) else (shutil.which("kubectl") or "kubectl")


def taskset(cpu: int | None) -> list[str]:
    if cpu is None or not shutil.which("taskset") or (os.cpu_count() or 1) < 2:
        return []
    return ["taskset", "-c", str(cpu)]


class K1s:
    """`k1s up --port 0` in its own process (optionally pinned to one CPU)."""

    def __init__(self, *extra: str, cpu: int | None = None, log: bool = False):
        self.dir = tempfile.mkdtemp(prefix="k1s-bench-")
        self.kubeconfig = os.path.join(self.dir, "kubeconfig")
        self.t0 = time.monotonic()
        # log=True keeps k1s's own log in <dir>/k1s.log (for a run that went wrong)
        self.log_path = os.path.join(self.dir, "k1s.log") if log else None
        err = open(self.log_path, "wb") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            taskset(cpu) + [sys.executable, "-m", "k1s.cli.main", "up", "--port", "0",
                            "--data-dir", os.path.join(self.dir, "data"),
                            "--kubeconfig", self.kubeconfig, *extra],
            stdout=subprocess.PIPE, stderr=err)
        if self.log_path:
            err.close()                          # the child has its own copy
        line = self.proc.stdout.readline().decode()
        if "API at " not in line:
            raise RuntimeError(f"k1s up did not start: {line!r}")
        self.url = line.split("API at ", 1)[1].split()[0]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def rss_mb(self) -> float:
        return rss_mb(self.proc.pid)


def controllers_in_process(server, http: bool = False) -> str:
    """Wire an in-process APIServer as `k1s up` does: clients built on `server.url` (the
    controllers') reach it in-process (k1s.client.local). Returns the URL a load generator
    uses to go over HTTP, as kubectl would. With http=True everything goes over HTTP."""
    if http:
        return server.url
    from k1s.client import local
    local.register(server.url, server.handlers.dispatch)
    return server.url.replace("://127.0.0.1:", "://localhost:")


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def http_json(method: str, url: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read())


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def pod(name: str, ns: str = "default") -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": {"app": "bench"}},
            "spec": {"containers": [{"name": "main", "image": "nginx:1.25",
                                     "ports": [{"containerPort": 80}],
                                     "resources": {"requests": {"cpu": "10m"}}}]}}
