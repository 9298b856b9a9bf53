"""`ProcessRuntime`: the node-side `Runtime` protocol of `k1s.node.pods` with real processes.

A pod = a sandbox holder (its UTS/IPC namespaces, joined to the netns the network helper made)
plus one monitored process tree per container (`process.start_container`). Everything about a
pod lives in `<data>/pods/<uid>/` (uid checked to be a UUID): sandbox.json, the generated /etc
files, per-container state.json/exit.json and overlay layers, and the CRI logs. A new
`ProcessRuntime` over the same data directory finds running pods with `adopt(uid)` (pid plus
start time from /proc/<pid>/stat) and never starts a second copy of a running container.

What the caller supplies, as hooks (the node agent owns these decisions):
- `netns_for(pod) -> path | None` (the network helper's /run/netns/<name>),
- `pod_ip_for(pod) -> ip | None` (for /etc/hosts), `dns_server` (for resolv.conf),
- `volumes_for(pod, container) -> [VolumeMount]` (volumes resolved to host paths),
- `env_for(pod, container) -> {name: value}` (env with valueFrom already resolved).

Beyond the protocol, for the agent's planner: `ensure_sandbox(pod)` and
`start_container(pod, container)` (one at a time: init containers in order, restarts),
`signal(uid, sig)`, `container_states(uid)` ({name: ContainerState}) and `waiting(uid)`
({name: (reason, message)}, e.g. ImageNotKnown, or CreateContainerConfigError for a
runAsNonRoot container that would run as root) for the agent's container statuses.

`security_of(pod, container)` turns the securityContexts into the process's `Identity` and
read-only root, as kubelet and containerd do (see there for the gid and groups rules).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import time
from dataclasses import dataclass, field
from typing import Callable

from k1s.api.qos import pod_qos_class
from k1s.api.quantity import quantity_to_int, quantity_to_milli
from k1s.node import dnsconfig, identity

from . import cgroups, images, linux, process, sandbox
from .cgroups import Limits
from .process import ContainerSpec, ContainerState, Identity
from .sandbox import Holder, SandboxConfig, VolumeMount

log = logging.getLogger(__name__)

WAITING_RECHECK = 5.0      # seconds: a pod with a Waiting container is looked at again


@dataclass
class PodRecord:
    uid: str
    started_at: float
    holder: Holder | None = None
    names: list[str] = field(default_factory=list)
    stop_signals: dict[str, int] = field(default_factory=dict)
    waiting: dict[str, tuple[str, str]] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)     # the pod's /etc files
    hostname: str = ""
    dns_warnings: list[tuple[str, str]] = field(default_factory=list)   # forming resolv.conf
    kill_timer: asyncio.TimerHandle | None = None
    stopping: bool = False          # stop() was asked: the sandbox goes once all have exited


@dataclass
class Security:
    """What a container's securityContext (over the pod's) makes of its process."""
    identity: Identity
    read_only_root: bool = False
    refusal: str = ""               # not startable: CreateContainerConfigError's message


ID_MAX = 2**31 - 1                  # what the API server accepts for a uid/gid


def _ids_file(path: str) -> list[list[str]]:
    """The colon-separated entries of a passwd/group file ([] if unreadable)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return [ln.rstrip("\n").split(":") for ln in f
                    if ln.strip() and not ln.startswith("#")]
    except OSError:
        return []


def _id(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= ID_MAX:
        raise ValueError(f"invalid {what} {value!r}: must be an integer in 0..{ID_MAX}")
    return value


def security_of(pod: dict, c: dict, etc: str = "/etc") -> Security:
    """The container's identity as kubelet + containerd make it. The image here is the host's
    root, whose user is root: so uid = runAsUser (container's, else the pod's), else 0. The gid
    is runAsGroup, else that of the uid's entry in the image's /etc/passwd, else 0; the
    supplementary groups are the gid, the /etc/group groups that list the user's name, then the
    pod's supplementalGroups and fsGroup. allowPrivilegeEscalation=false sets no_new_privs.
    runAsNonRoot refuses uid 0 with kubelet's messages."""
    meta = pod.get("metadata") or {}
    psc = (pod.get("spec") or {}).get("securityContext") or {}
    csc = c.get("securityContext") or {}
    if not isinstance(psc, dict) or not isinstance(csc, dict) or \
            not isinstance(psc.get("supplementalGroups") or [], list):
        return Security(Identity(), refusal="invalid securityContext: not an object as the "
                                            "API defines it")

    def pick(key: str):
        return csc[key] if csc.get(key) is not None else psc.get(key)
    try:
        run_as_user = pick("runAsUser")
        uid = _id(run_as_user, "runAsUser") if run_as_user is not None else 0
        run_as_group = pick("runAsGroup")
        extra = [_id(g, "supplementalGroups") for g in psc.get("supplementalGroups") or []]
        if psc.get("fsGroup") is not None:
            extra.append(_id(psc["fsGroup"], "fsGroup"))
        entry = next((e for e in _ids_file(os.path.join(etc, "passwd"))
                      if len(e) >= 4 and e[2] == str(uid)), None)
        if run_as_group is not None:
            gid = _id(run_as_group, "runAsGroup")
        else:
            gid = int(entry[3]) if entry and entry[3].isdigit() else 0
        member_of = []
        if entry:
            for g in _ids_file(os.path.join(etc, "group")):
                if len(g) >= 4 and g[2].isdigit() and entry[0] in g[3].split(","):
                    member_of.append(int(g[2]))
    except ValueError as e:
        return Security(Identity(), refusal=f"invalid securityContext: {e}")
    groups = list(dict.fromkeys([gid, *member_of, *extra]))
    privileged = bool(csc.get("privileged"))
    identity = Identity(uid, gid, groups,
                        no_new_privs=csc.get("allowPrivilegeEscalation") is False and
                        not privileged)
    refusal = ""
    if pick("runAsNonRoot") and uid == 0:
        where = (f'(pod: "{meta.get("name", "")}_{meta.get("namespace") or "default"}'
                 f'({meta.get("uid", "")})", container: {c.get("name", "")})')
        refusal = (f"container's runAsUser breaks non-root policy {where}"
                   if run_as_user is not None else
                   f"container has runAsNonRoot and image will run as root {where}")
    return Security(identity, bool(csc.get("readOnlyRootFilesystem")), refusal)


def cpu_request_millis(container: dict) -> int:
    """The container's CPU request in millicores (a limit alone stands for the request, as
    the API defaults it; none: 0)."""
    res = container.get("resources") or {}
    q = (res.get("requests") or {}).get("cpu", (res.get("limits") or {}).get("cpu"))
    return quantity_to_milli(q) if q is not None else 0


def limits_of(container: dict) -> Limits:
    lim = ((container.get("resources") or {}).get("limits")) or {}
    mem = lim.get("memory")
    cpu = lim.get("cpu")
    return Limits(memory=quantity_to_int(mem) if mem is not None else None,
                  cpu_millis=quantity_to_milli(cpu) if cpu is not None else None,
                  # the request is a weight, as kubelet sets it
                  cpu_shares=cgroups.cpu_shares(cpu_request_millis(container)))


def pod_cpu_shares(pod: dict) -> int:
    """kubelet's pod cgroup shares: the pod's CPU request (its app containers' requests
    added up, an init container's when larger)."""
    spec = pod.get("spec") or {}
    total = sum(cpu_request_millis(c) for c in spec.get("containers") or ())
    total = max([total, *(cpu_request_millis(c) for c in spec.get("initContainers") or ())])
    return cgroups.cpu_shares(total)


GUARANTEED_OOM_SCORE_ADJ = -997    # kubelet's values (pkg/kubelet/qos/policy.go)
BEST_EFFORT_OOM_SCORE_ADJ = 1000


def oom_score_adj(pod: dict, container: dict, memory_capacity: int) -> int:
    """kubelet's GetContainerOOMScoreAdjust: by QoS class; a Burstable container's score
    falls as its memory request grows towards the node's memory."""
    qos = (pod.get("status") or {}).get("qosClass") or pod_qos_class(pod)
    if qos == "Guaranteed":
        return GUARANTEED_OOM_SCORE_ADJ
    if qos == "BestEffort":
        return BEST_EFFORT_OOM_SCORE_ADJ
    req = (((container.get("resources") or {}).get("requests")) or {}).get("memory")
    request = quantity_to_int(req) if req is not None else 0
    adj = 1000 - (1000 * request) // max(1, memory_capacity)
    if adj < 1000 + GUARANTEED_OOM_SCORE_ADJ:
        return 1000 + GUARANTEED_OOM_SCORE_ADJ
    if adj == BEST_EFFORT_OOM_SCORE_ADJ:
        return adj - 1
    return adj


class ProcessRuntime:
    def __init__(self, data_dir: str, *, dns_server: str | None = None,
                 netns_for: Callable[[dict], str | None] = lambda pod: None,
                 pod_ip_for: Callable[[dict], str | None] = lambda pod: None,
                 volumes_for: Callable[[dict, dict], list[VolumeMount]] = lambda p, c: [],
                 env_for: Callable[[dict, dict], dict[str, str]] | None = None,
                 pids_limit: int | None = None):
        self.data_dir = os.path.realpath(data_dir)
        self.dns_server = dns_server
        self.netns_for, self.pod_ip_for = netns_for, pod_ip_for
        self.volumes_for, self.env_for = volumes_for, env_for
        self.pids_limit = pids_limit            # kubelet's podPidsLimit, per container here
        self.pods: dict[str, PodRecord] = {}
        self.memory_capacity = identity.memory_bytes()
        try:
            linux.set_child_subreaper()         # orphans come back to us, not a slow PID 1
        except OSError as e:
            log.warning("cannot become a child subreaper: %s", e)

    # -- protocol --------------------------------------------------------------------------------
    def state(self, uid: str) -> tuple[float, float] | None:
        rec = self.pods.get(uid)
        if rec is None:
            return None
        states = self.container_states(uid)
        if rec.waiting:
            return rec.started_at, time.time() + WAITING_RECHECK
        started = [s.started_at or rec.started_at for s in states.values()]
        return rec.started_at, max(started, default=rec.started_at)

    async def start(self, pod: dict) -> None:
        self.start_sync(pod)

    def start_sync(self, pod: dict) -> PodRecord:
        """The sandbox, then every app container not running yet (an exited one starts again
        with restartCount+1: back-off and restartPolicy are the caller's decision)."""
        containers = (pod.get("spec") or {}).get("containers") or []
        for c in containers:                            # refuse before making anything
            sandbox.check_name(c.get("name", ""))
        rec = self.ensure_sandbox(pod)
        for c in containers:
            self.start_container(pod, c)
        return rec

    def _config(self, pod: dict) -> SandboxConfig:
        meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        return SandboxConfig(uid=sandbox.check_uid(meta.get("uid", "")),
                             name=meta.get("name", ""),
                             namespace=meta.get("namespace") or "default",
                             hostname=spec.get("hostname") or "",
                             subdomain=spec.get("subdomain") or "",
                             pod_ip=self.pod_ip_for(pod), dns_server=self.dns_server,
                             netns=self.netns_for(pod),
                             host_aliases=[(a.get("ip", ""), list(a.get("hostnames") or []))
                                           for a in spec.get("hostAliases") or []],
                             share_pid=bool(spec.get("shareProcessNamespace")),
                             dns=dnsconfig.pod_resolv_conf(
                                 pod, self.dns_server, dnsconfig.read_node_resolv_conf(),
                                 sandbox.CLUSTER_DOMAIN))

    def ensure_sandbox(self, pod: dict) -> PodRecord:
        """The pod's holder process (started, or found alive from before) and /etc files."""
        cfg = self._config(pod)
        uid = cfg.uid
        os.makedirs(sandbox.pod_dir(self.data_dir, uid), exist_ok=True)
        rec = self.pods.get(uid)
        if rec is None:
            rec = self.pods[uid] = PodRecord(uid, time.time())
        if rec.holder is None or not rec.holder.alive():
            rec.holder = sandbox.load_holder(self.data_dir, uid)
        if rec.holder is None:
            rec.holder = sandbox.start_holder(cfg)
            sandbox.save_holder(self.data_dir, uid, rec.holder, cfg)
        rec.files = sandbox.write_pod_files(self.data_dir, cfg)
        rec.hostname = cfg.pod_hostname
        rec.dns_warnings = list(cfg.dns.warnings) if cfg.dns else []
        # the pod's cgroup weighs what the pod asked for (kubelet's pod cgroup cpu.shares)
        problem = cgroups.set_pod_cpu_shares(uid, pod_cpu_shares(pod))
        if problem:
            log.debug("pod %s: %s", uid, problem)
        return rec

    def start_container(self, pod: dict, c: dict) -> ContainerState | None:
        """Start one container (app or init) of a pod whose sandbox exists, unless it is
        running. None when its image cannot run (see `waiting`)."""
        uid = sandbox.check_uid((pod.get("metadata") or {}).get("uid", ""))
        rec = self.pods.get(uid)
        if rec is None or rec.holder is None or not rec.files:     # e.g. just adopted
            rec = self.ensure_sandbox(pod)
        name = sandbox.check_name(c.get("name", ""))
        if name not in rec.names:
            rec.names.append(name)
        prev = process.read_state(self.data_dir, uid, name)
        if prev is not None and prev.exit_code is None:
            return prev                                 # running: never a second copy
        try:
            res = images.resolve(c.get("image", ""), c.get("command"), c.get("args"))
        except images.ImageNotKnown as e:
            rec.waiting[name] = (e.reason, str(e))
            return None
        sec = security_of(pod, c)
        if sec.refusal:
            rec.waiting[name] = ("CreateContainerConfigError", sec.refusal)
            return None
        rec.waiting.pop(name, None)
        env = dict(res.env)
        if self.env_for is not None:
            env.update(self.env_for(pod, c))
        else:
            env.update({e["name"]: str(e.get("value", "")) for e in c.get("env") or []
                        if "name" in e and "valueFrom" not in e})
        env.setdefault("HOSTNAME", rec.hostname)
        limits = limits_of(c)
        limits.pids = self.pids_limit
        binds = images.materialize(self.data_dir, res.entry) if res.entry else []
        rec.stop_signals[name] = getattr(signal, res.entry.stop_signal
                                         if res.entry else "SIGTERM", signal.SIGTERM)
        cspec = ContainerSpec(name=name, argv=res.argv, env=env,
                              working_dir=c.get("workingDir") or "",
                              limits=limits, image_binds=binds,
                              volumes=self.volumes_for(pod, c),
                              restart=prev.restart + 1 if prev is not None else 0,
                              identity=sec.identity, read_only_root=sec.read_only_root,
                              termination_message_path=c.get("terminationMessagePath") or "",
                              fallback_to_logs=c.get("terminationMessagePolicy") ==
                              "FallbackToLogsOnError",
                              oom_score_adj=oom_score_adj(pod, c, self.memory_capacity))
        return process.start_container(self.data_dir, uid, rec.holder, cspec, rec.files)

    async def stop(self, pod: dict, grace: int) -> None:
        uid = (pod.get("metadata") or {}).get("uid", "")
        rec = self.pods.get(uid)
        if rec is None:
            return
        rec.stopping = True
        self.signal(uid, None)
        if rec.kill_timer is None:
            loop = asyncio.get_running_loop()
            rec.kill_timer = loop.call_later(max(0, grace), self.kill, uid)

    def stopped(self, uid: str) -> bool:
        rec = self.pods.get(uid)
        if rec is None:
            return True
        if any(s.exit_code is None for s in self.container_states(uid).values()):
            return False
        if rec.stopping and rec.holder is not None:
            # the pod is terminating: its sandbox goes too (a pod whose containers merely
            # exited keeps it, so a restart finds the same namespaces)
            sandbox.stop_holder(rec.holder)
            rec.holder = None
        return True

    def forget(self, uid: str) -> None:
        rec = self.pods.pop(uid, None)
        if rec is not None and rec.kill_timer is not None:
            rec.kill_timer.cancel()
        try:
            pdir = sandbox.pod_dir(self.data_dir, uid)
        except ValueError:
            return
        names = rec.names if rec else _names_on_disk(pdir)
        for name in names:
            st = process.read_state(self.data_dir, uid, name)
            if st is not None and st.exit_code is None:
                process.signal_container(st, signal.SIGKILL)
                _wait_exit(self.data_dir, uid, name)
            process.reap_monitor(self.data_dir, uid, name)
        holder = (rec.holder if rec else None) or sandbox.load_holder(self.data_dir, uid)
        if holder is not None:
            sandbox.stop_holder(holder)
        cgroups.remove_pod(uid)
        shutil.rmtree(pdir, ignore_errors=True)

    def adopt(self, uid: str) -> None:
        if uid in self.pods:
            return
        try:
            pdir = sandbox.pod_dir(self.data_dir, uid)
        except ValueError:
            return
        if not os.path.isdir(pdir):
            return
        names = _names_on_disk(pdir)
        states = [process.read_state(self.data_dir, uid, n) for n in names]
        started = min((s.started_at for s in states if s and s.started_at), default=time.time())
        rec = PodRecord(uid, started, holder=sandbox.load_holder(self.data_dir, uid),
                        names=names)
        self.pods[uid] = rec

    # -- beyond the protocol ---------------------------------------------------------------------
    def uids_on_disk(self) -> list[str]:
        """Pods with a directory here (running or not): after a restart, the agent forgets the
        ones the API server no longer has."""
        try:
            names = os.listdir(sandbox.pods_root(self.data_dir))
        except FileNotFoundError:
            return []
        return sorted(n for n in names if sandbox.UID_RE.match(n))

    def container_states(self, uid: str) -> dict[str, ContainerState]:
        rec = self.pods.get(uid)
        out = {}
        for name in rec.names if rec else []:
            process.reap_monitor(self.data_dir, uid, name)
            st = process.read_state(self.data_dir, uid, name)
            if st is not None:
                if st.exit_code is not None:
                    linux.reap_if_ours(st.pid, st.start_time)   # its monitor was killed
                out[name] = st
        return out

    def waiting(self, uid: str) -> dict[str, tuple[str, str]]:
        rec = self.pods.get(uid)
        return dict(rec.waiting) if rec else {}

    def holder_pid(self, uid: str) -> int | None:
        rec = self.pods.get(uid)
        return rec.holder.pid if rec and rec.holder else None

    def signal(self, uid: str, sig: int | None) -> None:
        """`sig` (None: each container's stop signal) to every running container."""
        rec = self.pods.get(uid)
        for name, st in self.container_states(uid).items():
            if st.exit_code is None:
                s = sig if sig is not None else (rec.stop_signals.get(name, signal.SIGTERM)
                                                 if rec else signal.SIGTERM)
                process.signal_container(st, s)

    def kill(self, uid: str) -> None:
        """The end of the grace period: SIGKILL to every container's PID 1 (its namespace
        goes with it)."""
        rec = self.pods.get(uid)
        if rec is not None:
            rec.kill_timer = None
        self.signal(uid, signal.SIGKILL)


def _names_on_disk(pdir: str) -> list[str]:
    try:
        return sorted(n for n in os.listdir(os.path.join(pdir, "containers"))
                      if sandbox.LABEL_RE.match(n))
    except FileNotFoundError:
        return []


def _wait_exit(data_dir: str, uid: str, name: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        process.reap_monitor(data_dir, uid, name)
        st = process.read_state(data_dir, uid, name)
        if st is None or st.exit_code is not None:
            return
        time.sleep(0.01)
