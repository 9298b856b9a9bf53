"""Per-container cgroups for memory, CPU and pids limits and the CPU request's weight, on cgroup
v2 or v1, whichever works.

Layouts:
- v2 only (`/sys/fs/cgroup/cgroup.controllers` exists): one directory with memory.max,
  cpu.max, pids.max, and cgroup.kill.
- hybrid (these machines): v1 `memory`, `cpu`, `pids`, `freezer` under /sys/fs/cgroup/<ctl>,
  plus the v2 tree at /sys/fs/cgroup/unified only for `cgroup.kill` (it has no controllers).
Every container's group is nested under the agent's own group in each hierarchy
(`<agent>/k1s/<pod uid>/<container>`): an absolute path would escape the memory limit the
machine put on us. The pod uid and container name are checked before they become paths.

`Cgroup.create(...)` never raises for a missing controller: each limit it could not apply is
listed in `.problems` with the reason, so the agent can say why a limit is not enforced.
OOM: `oom_killed()` reads the kernel's `oom_kill` counter (v1 memory.oom_control, v2
memory.events).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

ROOT = "/sys/fs/cgroup"
V1_CONTROLLERS = ("memory", "cpu", "pids", "freezer")
CPU_PERIOD = 100_000          # microseconds, as kubelet


def _own_path(hierarchy: str) -> str:
    """Our process's path in a v1 controller's hierarchy ('' for v2: '0::')."""
    with open("/proc/self/cgroup") as f:
        for line in f:
            _n, ctls, path = line.rstrip("\n").split(":", 2)
            if hierarchy == "" and _n == "0" and ctls == "":
                return path
            if hierarchy and hierarchy in ctls.split(","):
                return path
    return "/"


def layout(root: str = ROOT) -> str:
    """'v2', 'hybrid' (v1 controllers, maybe a controller-less v2 tree), or 'none'."""
    if os.path.exists(os.path.join(root, "cgroup.controllers")):
        return "v2"
    if any(os.path.isdir(os.path.join(root, c)) for c in V1_CONTROLLERS):
        return "hybrid"
    return "none"


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


@dataclass
class Limits:
    memory: int | None = None          # bytes
    cpu_millis: int | None = None      # 1000 = one CPU
    pids: int | None = None
    cpu_shares: int | None = None      # relative weight from the CPU request (cpu_shares())


MIN_SHARES, MAX_SHARES = 2, 262144     # the kernel's bounds for cpu.shares


def cpu_shares(request_millis: int | None) -> int:
    """kubelet's MilliCPUToShares: 1024 per CPU requested, at least 2 (no request: 2)."""
    shares = (request_millis or 0) * 1024 // 1000
    return max(MIN_SHARES, min(MAX_SHARES, shares))


def shares_to_weight(shares: int) -> int:
    """cgroup v2's cpu.weight for v1 shares, as runc converts them (2..262144 -> 1..10000)."""
    return 1 + (shares - MIN_SHARES) * 9999 // (MAX_SHARES - MIN_SHARES)


@dataclass
class Cgroup:
    """One container's cgroup directories (one per hierarchy in use)."""
    dirs: dict[str, str] = field(default_factory=dict)   # 'memory'|'cpu'|'pids'|'freezer'|'v2'
    problems: list[str] = field(default_factory=list)

    @classmethod
    def create(cls, pod_uid: str, name: str, limits: Limits, root: str = ROOT) -> "Cgroup":
        cg = cls()
        kind = layout(root)
        rel = os.path.join("k1s", pod_uid, name)
        if kind == "none":
            cg.problems.append(f"no cgroup hierarchy under {root}: limits are not enforced")
            return cg
        if kind == "v2":
            d = os.path.join(root, _own_path("").lstrip("/"), rel)
            try:
                _enable_v2(root, os.path.dirname(d))
                os.makedirs(d, exist_ok=True)
                cg.dirs["v2"] = d
            except OSError as e:
                cg.problems.append(f"cgroup v2 {d}: {e.strerror}")
                return cg
            cg._limit_v2(limits)
            return cg
        for ctl in V1_CONTROLLERS:
            base = os.path.join(root, ctl)
            if not os.path.isdir(base):
                continue
            d = os.path.join(base, _own_path(ctl).lstrip("/"), rel)
            try:
                os.makedirs(d, exist_ok=True)
                cg.dirs[ctl] = d
            except OSError as e:
                cg.problems.append(f"cgroup v1 {ctl} {d}: {e.strerror}")
        unified = os.path.join(root, "unified")
        if os.path.exists(os.path.join(unified, "cgroup.procs")):
            d = os.path.join(unified, _own_path("").lstrip("/"), rel)
            try:
                os.makedirs(d, exist_ok=True)
                if os.path.exists(os.path.join(d, "cgroup.kill")):
                    cg.dirs["v2"] = d          # only for cgroup.kill
                else:
                    os.rmdir(d)
            except OSError:
                pass
        cg._limit_v1(limits)
        return cg

    def _limit_v2(self, lim: Limits) -> None:
        d = self.dirs["v2"]
        for value, fname, text in (
                (lim.memory, "memory.max", str(lim.memory)),
                (lim.memory, "memory.swap.max", "0"),
                (lim.cpu_millis, "cpu.max", f"{_quota(lim.cpu_millis)} {CPU_PERIOD}"),
                (lim.cpu_shares, "cpu.weight",
                 str(shares_to_weight(lim.cpu_shares or MIN_SHARES))),
                (lim.pids, "pids.max", str(lim.pids))):
            if value is None:
                continue
            try:
                _write(os.path.join(d, fname), text)
            except OSError as e:
                if fname != "memory.swap.max":
                    self.problems.append(f"{fname}: {e.strerror}")

    def _limit_v1(self, lim: Limits) -> None:
        wanted = [("memory", lim.memory, [("memory.limit_in_bytes", str(lim.memory)),
                                          ("memory.memsw.limit_in_bytes", str(lim.memory))]),
                  ("cpu", lim.cpu_millis, [("cpu.cfs_period_us", str(CPU_PERIOD)),
                                           ("cpu.cfs_quota_us", str(_quota(lim.cpu_millis)))]),
                  ("cpu", lim.cpu_shares, [("cpu.shares", str(lim.cpu_shares))]),
                  ("pids", lim.pids, [("pids.max", str(lim.pids))])]
        for ctl, value, files in wanted:
            if value is None:
                continue
            d = self.dirs.get(ctl)
            if d is None:
                self.problems.append(f"the {ctl} controller is not mounted: limit not enforced")
                continue
            for fname, text in files:
                path = os.path.join(d, fname)
                if fname.startswith("memory.memsw") and not os.path.exists(path):
                    continue                    # no swap accounting: the plain limit holds
                try:
                    _write(path, text)
                except OSError as e:
                    self.problems.append(f"{ctl} {fname}: {e.strerror}")

    def add(self, pid: int) -> None:
        """Move `pid` (a host pid) into every hierarchy of this group."""
        for d in self.dirs.values():
            _write(os.path.join(d, "cgroup.procs"), str(pid))

    def oom_killed(self) -> bool:
        if "v2" in self.dirs and "memory" not in self.dirs:
            text = _safe_read(os.path.join(self.dirs["v2"], "memory.events"))
        else:
            text = _safe_read(os.path.join(self.dirs.get("memory", "/nonexistent"),
                                           "memory.oom_control"))
        for line in text.splitlines():
            k, _, v = line.partition(" ")
            if k == "oom_kill" and v.strip().isdigit():
                return int(v) > 0
        return False

    def pids(self) -> set[int]:
        out: set[int] = set()
        for d in self.dirs.values():
            for line in _safe_read(os.path.join(d, "cgroup.procs")).split():
                out.add(int(line))
        return out

    def kill(self) -> None:
        """Kill every process in the group: cgroup.kill, or the v1 freezer dance."""
        v2 = self.dirs.get("v2")
        if v2 and os.path.exists(os.path.join(v2, "cgroup.kill")):
            try:
                _write(os.path.join(v2, "cgroup.kill"), "1")
                return
            except OSError:
                pass
        fz = self.dirs.get("freezer")
        if fz:
            try:
                _write(os.path.join(fz, "freezer.state"), "FROZEN")
            except OSError:
                fz = None
        for pid in self.pids():
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        if fz:
            _write(os.path.join(fz, "freezer.state"), "THAWED")

    def remove(self, timeout: float = 2.0) -> None:
        """rmdir every directory (and the pod's once empty); waits briefly for the kernel to
        let go of exited tasks."""
        deadline = time.monotonic() + timeout
        for d in list(self.dirs.values()):
            while True:
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.01)
            try:
                os.rmdir(os.path.dirname(d))           # the pod's group, when it is empty
            except OSError:
                pass


def _quota(millis: int | None) -> int:
    return max(1000, (millis or 0) * CPU_PERIOD // 1000)


def _safe_read(path: str) -> str:
    try:
        return _read(path)
    except OSError:
        return ""


def _enable_v2(root: str, parent: str) -> None:
    """Turn on memory/cpu/pids for the children of every level from `root` to `parent`."""
    os.makedirs(parent, exist_ok=True)
    path = root
    for part in os.path.relpath(parent, root).split(os.sep):
        avail = set(_safe_read(os.path.join(path, "cgroup.controllers")).split())
        want = [f"+{c}" for c in ("memory", "cpu", "pids") if c in avail]
        if want:
            try:
                _write(os.path.join(path, "cgroup.subtree_control"), " ".join(want))
            except OSError:
                pass
        if part in ("", "."):
            break
        path = os.path.join(path, part)


def set_pod_cpu_shares(pod_uid: str, shares: int, root: str = ROOT) -> str | None:
    """The pod group's CPU weight (kubelet sets the pod cgroup's shares from the sum of its
    containers' requests, so pods share the node by what they asked for, not by how many
    containers they have). Returns what could not be done, or None."""
    kind = layout(root)
    try:
        if kind == "v2":
            d = os.path.join(root, _own_path("").lstrip("/"), "k1s", pod_uid)
            _enable_v2(root, d)
            _write(os.path.join(d, "cpu.weight"), str(shares_to_weight(shares)))
        elif kind == "hybrid" and os.path.isdir(os.path.join(root, "cpu")):
            d = os.path.join(root, "cpu", _own_path("cpu").lstrip("/"), "k1s", pod_uid)
            os.makedirs(d, exist_ok=True)
            _write(os.path.join(d, "cpu.shares"), str(shares))
    except OSError as e:
        return f"pod cpu weight: {e.strerror}"
    return None


def remove_pod(pod_uid: str, root: str = ROOT) -> None:
    """The pod's group in every hierarchy (after its containers' groups are gone)."""
    cands = [os.path.join(root, _own_path("").lstrip("/"), "k1s", pod_uid),
             os.path.join(root, "unified", _own_path("").lstrip("/"), "k1s", pod_uid)]
    cands += [os.path.join(root, c, _own_path(c).lstrip("/"), "k1s", pod_uid)
              for c in V1_CONTROLLERS]
    for d in cands:
        if os.path.isdir(d):
            for sub in os.listdir(d):
                if os.path.isdir(os.path.join(d, sub)):
                    try:
                        os.rmdir(os.path.join(d, sub))
                    except OSError:
                        pass
            try:
                os.rmdir(d)
            except OSError:
                pass
