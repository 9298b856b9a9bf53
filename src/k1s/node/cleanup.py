"""Remove what a node left on this machine when it could not take itself down (it was killed):
its containers' processes and pod holders, the mounts under its data directory, its network
namespaces. Used by tests after stopping a cluster, and safe to run on a node that stopped
cleanly (it then finds nothing).

Only processes recorded in the data directory are signalled, and each only while its pid
still names the same process (start time from /proc/<pid>/stat), so a recycled pid is never
hit. Mounts are unmounted deepest first; loop devices go with their mounts (autoclear).
"""

from __future__ import annotations

import os
import signal
import time

from .network import netns
from .podvolumes.manager import _umount, mounts_under
from .runtime import linux
from .runtime.sandbox import LABEL_RE, UID_RE, read_json


def _recorded_processes(data_dir: str) -> list[tuple[str, int, int | None]]:
    """(what, pid, start time) of every container, monitor and holder recorded on disk."""
    out = []
    root = os.path.join(data_dir, "pods")
    try:
        uids = [u for u in os.listdir(root) if UID_RE.match(u)]
    except FileNotFoundError:
        return []
    for uid in uids:
        pdir = os.path.join(root, uid)
        sb = read_json(os.path.join(pdir, "sandbox.json"))
        if sb:
            out.append((f"holder of pod {uid}", int(sb["pid"]), sb.get("start_time")))
        try:
            names = [n for n in os.listdir(os.path.join(pdir, "containers")) if LABEL_RE.match(n)]
        except FileNotFoundError:
            names = []
        for name in names:
            st = read_json(os.path.join(pdir, "containers", name, "state.json"))
            if not st:
                continue
            out.append((f"container {name} of pod {uid}", int(st["pid"]), st.get("start_time")))
            if st.get("monitor"):
                out.append((f"monitor of {name} of pod {uid}", int(st["monitor"]),
                            st.get("monitor_start")))
    return out


def remove_node_leftovers(data_dir: str, netns_prefix: str) -> list[str]:
    """Kill, unmount and remove what the node of `data_dir` left; return what was found."""
    found = []
    data_dir = os.path.realpath(data_dir)
    for what, pid, start in _recorded_processes(data_dir):
        if pid > 1 and linux.alive(pid, start):
            found.append(f"{what} (pid {pid})")
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(
            linux.alive(pid, start) for _w, pid, start in _recorded_processes(data_dir)):
        time.sleep(0.02)
    for mp in mounts_under(data_dir):
        found.append(f"mount {mp}")
        try:
            _umount(mp)
        except OSError:
            pass
    if netns_prefix:
        found += [f"network namespace {n}" for n in netns.cleanup_all(netns_prefix)]
    return found
