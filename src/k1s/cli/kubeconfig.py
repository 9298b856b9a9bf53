"""Writing kubeconfig files: a fresh one for --kubeconfig, or a merge into ~/.kube/config.

The merge behaves like kind's and minikube's: the `k1s` cluster, user and context are added or
replaced, the context becomes current, and every other entry is left as it was.
"""

from __future__ import annotations

import os
import tempfile

import yaml

CONTEXT = "k1s"


def config_for(server: str, name: str = CONTEXT) -> dict:
    return {"apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [{"name": name, "cluster": {"server": server}}],
            "users": [{"name": name, "user": {}}],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name,
                                                    "namespace": "default"}}],
            "current-context": name}


def _write_atomic(path: str, data: dict) -> None:
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".kubeconfig-")
    try:
        with os.fdopen(fd, "w") as f:
            yaml.safe_dump(data, f, default_flow_style=False, sort_keys=False)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write(path: str, server: str, name: str = CONTEXT) -> None:
    """Write a kubeconfig holding only the k1s context."""
    _write_atomic(path, config_for(server, name))


def merge(path: str, server: str, name: str = CONTEXT) -> None:
    """Add or replace the k1s entries in an existing kubeconfig and make k1s current."""
    try:
        with open(path) as f:
            cfg = yaml.safe_load(f) or {}
    except FileNotFoundError:
        cfg = {}
    if not isinstance(cfg, dict):
        raise ValueError(f"{path} is not a kubeconfig file")
    ours = config_for(server, name)
    cfg.setdefault("apiVersion", "v1")
    cfg.setdefault("kind", "Config")
    for section in ("clusters", "users", "contexts"):
        entries = [e for e in (cfg.get(section) or []) if e.get("name") != name]
        entries.extend(ours[section])
        cfg[section] = entries
    cfg["current-context"] = name
    _write_atomic(path, cfg)


def default_path() -> str:
    env = os.environ.get("KUBECONFIG")
    if env:
        return env.split(os.pathsep)[0]
    return os.path.join(os.path.expanduser("~"), ".kube", "config")
