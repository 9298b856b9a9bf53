"""`k1s up` as a user runs it: kubeconfig handling, clean stop, state kept across restarts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import yaml

from k1s_harness import pinned_kubectl
from k1s.cli import kubeconfig

OTHER = {"apiVersion": "v1", "kind": "Config",
         "clusters": [{"name": "prod", "cluster": {"server": "https://10.0.0.1:6443"}}],
         "users": [{"name": "prod", "user": {"token": "t"}}],
         "contexts": [{"name": "prod", "context": {"cluster": "prod", "user": "prod"}}],
         "current-context": "prod"}


def start(home: str, data: str) -> tuple[subprocess.Popen, str]:
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env["HOME"] = home
    p = subprocess.Popen([sys.executable, "-m", "k1s.cli.main", "up", "--port", "0",
                          "--data-dir", data], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, env=env)
    line = p.stdout.readline().decode()
    assert "API at " in line, line
    return p, line


def kubectl(home: str, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env["HOME"] = home
    return subprocess.run([pinned_kubectl(), "--cache-dir", os.path.join(home, "cache"), *args],
                          capture_output=True, text=True, env=env, timeout=60)


def stop(p: subprocess.Popen) -> tuple[int, str]:
    p.send_signal(signal.SIGTERM)
    out = p.stdout.read().decode()
    return p.wait(20), out


def test_up_merges_into_the_default_kubeconfig_and_stops_cleanly(tmp_path):
    home = str(tmp_path)
    cfg = tmp_path / ".kube" / "config"
    cfg.parent.mkdir()
    cfg.write_text(yaml.safe_dump(OTHER))
    data = str(tmp_path / "data")

    p, line = start(home, data)
    try:
        assert f"merged context \"k1s\" into {cfg}" in line
        merged = yaml.safe_load(cfg.read_text())
        assert merged["current-context"] == "k1s"
        assert sorted(c["name"] for c in merged["contexts"]) == ["k1s", "prod"]
        assert merged["users"][0] == OTHER["users"][0]          # other entries untouched
        assert oct(cfg.stat().st_mode & 0o777) == "0o600"
        assert kubectl(home, "create", "configmap", "kept", "--from-literal=a=1").returncode == 0
    finally:
        code, out = stop(p)
    assert code == 0 and "k1s stopped" in out

    # a second start on the same data keeps what was acknowledged, and the merge stays single
    p, _ = start(home, data)
    try:
        got = kubectl(home, "get", "configmap", "kept", "-o", "jsonpath={.data.a}")
        assert got.stdout == "1", got.stderr
        merged = yaml.safe_load(cfg.read_text())
        assert [c["name"] for c in merged["clusters"]].count("k1s") == 1
    finally:
        stop(p)


def test_merge_replaces_an_older_k1s_entry(tmp_path):
    path = str(tmp_path / "config")
    kubeconfig.merge(path, "http://127.0.0.1:1111")
    kubeconfig.merge(path, "http://127.0.0.1:2222")
    cfg = yaml.safe_load(open(path))
    assert [c["cluster"]["server"] for c in cfg["clusters"]] == ["http://127.0.0.1:2222"]
    assert len(cfg["contexts"]) == 1 and cfg["current-context"] == "k1s"
