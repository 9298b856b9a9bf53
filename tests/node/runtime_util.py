"""Shared pieces of the container runtime tests: a runtime over a temporary data directory that
checks on teardown that nothing it made is left (mounts, processes, cgroups), pod builders, and
a synchronous `wait_for`."""

from __future__ import annotations

import os
import time
import uuid

import pytest

from k1s.node.runtime import linux
from k1s.node.runtime.runtime import ProcessRuntime

needs_root = pytest.mark.skipif(os.geteuid() != 0,
                                reason="namespaces and mounts need root (CI and these "
                                       "machines run as root)")


def wait_for(check, timeout: float = 20.0, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in {timeout}s: {check.__name__}")
        time.sleep(interval)


def mounts_under(path: str) -> list[str]:
    """Mount points in our mount namespace at or below `path`."""
    real = os.path.realpath(path)
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4]
            if mp == real or mp.startswith(real + "/"):
                out.append(mp)
    return out


def pod(name: str = "web-0", containers: list[dict] | None = None, *, ns: str = "default",
        **spec) -> dict:
    return {"metadata": {"uid": str(uuid.uuid4()), "name": name, "namespace": ns},
            "spec": {"containers": containers or [], **spec}}


def sh(name: str, script: str, **extra) -> dict:
    return {"name": name, "image": "busybox", "command": ["sh", "-c", script], **extra}


def finished(rt: ProcessRuntime, uid: str, name: str = "c"):
    def check():
        st = rt.container_states(uid).get(name)
        return st if st is not None and st.exit_code is not None else None
    check.__name__ = f"{name}_finished"
    return wait_for(check)


def log_lines(path: str) -> list[str]:
    with open(path) as f:
        return [ln.rstrip("\n").split(" ", 3)[3] for ln in f]


def pids_in_pid_ns(pid_ns: str) -> list[int]:
    """Every process whose PID namespace is `pid_ns` (the target of /proc/<pid>/ns/pid)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if os.readlink(f"/proc/{d}/ns/pid") == pid_ns and \
                        linux.proc_start_time(int(d)) is not None:
                    out.append(int(d))
            except OSError:
                pass
    return out


@pytest.fixture
def runtime(tmp_path):
    """A ProcessRuntime over tmp_path/data; teardown forgets every pod and checks that no mount,
    process or cgroup of it is left."""
    made: list[ProcessRuntime] = []
    was_subreaper = linux.is_child_subreaper()
    data = tmp_path / "data"
    data.mkdir()

    def make(**kw) -> ProcessRuntime:
        rt = ProcessRuntime(str(data), **kw)
        made.append(rt)
        return rt
    yield make
    uids = {u for rt in made for u in rt.pods}
    holders = [rt.holder_pid(u) for rt in made for u in rt.pods]
    for rt in made:
        for uid in list(rt.pods):
            rt.forget(uid)
    if not was_subreaper:          # other tests' orphans must not become zombies of pytest
        linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 0)
    assert mounts_under(str(tmp_path)) == []
    for pid in holders:
        if pid:
            assert linux.proc_start_time(pid) is None
    for uid in uids:
        assert not os.path.exists(data / "pods" / uid)
        for ctl in ("memory", "pids", "cpu"):
            own = open("/proc/self/cgroup").read()
            for line in own.splitlines():
                _n, ctls, path = line.split(":", 2)
                if ctl in ctls.split(","):
                    assert not os.path.exists(
                        f"/sys/fs/cgroup/{ctl}{path.rstrip('/')}/k1s/{uid}")
