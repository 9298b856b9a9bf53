"""`PodRuntime`: the real node's pods behind `pods.PodWorkers` — volumes, network, sandbox,
containers and probes, acting on the pure container planner (`containers.plan`).

Per pod, in kubelet's order:
1. `start(pod)` prepares it: volumes set up (`podvolumes.VolumeManager`; a failure is kept as
   the pod's `problem`, a FailedMount message, and tried again after a back-off), an address
   from the node's pod CIDR, the pod's network namespace (`network.PodNetwork`), the sandbox
   holder (`runtime.ProcessRuntime.ensure_sandbox`). Only then is the pod "started".
2. `sync_containers(pod, ...)` is called on every sync of a started pod: it reads the
   containers' runs from the runtime, asks `containers.plan` what to do, does it (start a
   container with its resolved environment and mounts, kill one whose liveness failed,
   record events), re-plans once things were started, keeps the probes in step with the
   running containers, and returns the status to write and when to look again.
3. `stop(pod, grace)` runs preStop hooks, then the runtime's stop (stop signal, SIGKILL at the
   end of the grace period); `stopped(uid)` says when every container exited.
4. `finish(uid)` (the pod reached Succeeded/Failed) takes its sandbox, volumes and network
   down and keeps its logs; PodWorkers returns its address to the pool.
5. `forget(uid)` (the pod object is gone) takes everything down in the background: probes,
   volumes, containers and sandbox, the pod's network namespace.

What wakes a pod besides the API: a container exit (a pidfd of its monitor, which exits right
after recording the exit, is watched by the event loop; `watch_exits` looks at every started
pod's states each POLL_SECONDS as a safety net), a probe result changing, and the planner's
`recheck` (the end of a back-off). A started pod is also re-synced every RESYNC_SECONDS so its
configMap/secret/downwardAPI volumes follow their sources, as kubelet's periodic sync does.

After an agent restart (`adopt`), a pod that was running is prepared again (idempotently: the
same volumes, the same address, the surviving sandbox) before any container is touched, and
running containers are never started twice.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import os
import logging
import signal
import time
from dataclasses import dataclass, field
from typing import Callable

from k1s.client.events import EventRecorder

from . import containers, envvars, eviction, serviceenv
from .containers import ContainerEvent, ContainersView, KillContainer, Run, StartContainer
from .eviction import StorageUse, Verdict
from .network.bridge import NodeNetwork
from .network.pod import PodNetwork
from .podvolumes.manager import HostVolume, MountFailed, VolumeManager
from .pods import AddressPool
from .probes import ProbeError, ProbeManager, Target, check_exec
from .runtime import linux, process
from .runtime.runtime import ProcessRuntime
from .runtime.sandbox import VolumeMount
from .volumes import dirs

log = logging.getLogger(__name__)

def _sync_frequency(default: float = 60.0) -> float:
    """kubelet's --sync-frequency: $K1S_SYNC_FREQUENCY seconds (at least 1; tests shorten
    it), else a minute."""
    try:
        value = float(os.environ.get("K1S_SYNC_FREQUENCY") or default)
    except ValueError:
        return default
    return value if value >= 1.0 else default


POLL_SECONDS = 5.0           # a safety net: exits normally wake the pod through a pidfd
STORAGE_SECONDS = 10.0       # kubelet's eviction manager looks at local storage this often
RESYNC_SECONDS = _sync_frequency()   # periodic pod sync: volumes follow their sources
MOUNT_RETRY_FIRST = 1.0      # seconds before a failed setup is tried again, doubling ...
MOUNT_RETRY_MAX = 32.0       # ... up to this
CONFIG_RETRY_SECONDS = 10.0   # a CreateContainerConfigError is tried again after this
START_EVENTS = ("Pulled", "Created", "Started")
NODE_THREADS = 16             # concurrent blocking pod operations (mostly waiting on children)
CLEANUP_THREADS = 4           # concurrent blocking teardowns (unmounts, netns removal)
NO_ADDRESS = ("Failed to create pod sandbox: failed to allocate for range 0: no IP addresses "
              "available in range set")


@dataclass
class PodState:
    """What this runtime holds for one pod."""
    key: tuple[str, str]                       # (namespace, name), to wake the pod's sync
    uid: str = ""
    started_at: float | None = None            # prepared (network, sandbox): containers may run
    prepared: bool = False                     # False after adopt(): prepare again first
    volumes: dict[str, HostVolume] | None = None
    volumes_at: float = 0.0                    # last volume sync (a failed resync too)
    env: dict[str, dict[str, str]] = field(default_factory=dict)      # container -> env
    config_errors: dict[str, tuple[str, str]] = field(default_factory=dict)
    config_error_at: dict[str, float] = field(default_factory=dict)
    image_reported: dict[str, tuple[str, str]] = field(default_factory=dict)
    last: dict[str, Run] = field(default_factory=dict)               # previous runs
    seen: dict[str, Run] = field(default_factory=dict)               # runs at the last sync
    killing: dict[str, asyncio.TimerHandle | None] = field(default_factory=dict)
    problem: tuple[str, float] | None = None   # (message, retry at) of a failed setup
    failures: int = 0
    stopping: asyncio.Task | None = None
    signature: tuple = ()                      # container states at the last exit poll
    netns: str | None = None
    pod: dict | None = None                    # the pod as last synced (for storage checks)
    verdict: Verdict | None = None             # the node evicts it (local storage)
    verdict_reported: str = ""                 # its event was recorded
    exec_ctx: dict = field(default_factory=dict)   # (container, run) -> (env, identity)
    dns_reported: bool = False                 # resolv.conf warnings recorded
    resync_reported: str = ""                  # the failed volume resync last reported
    hooks: dict[str, asyncio.Task] = field(default_factory=dict)   # container -> postStart


def run_of(st: process.ContainerState) -> Run:
    return Run(restart=st.restart, started_at=st.started_at, exit_code=st.exit_code,
               reason=st.reason, message=st.message, finished_at=st.finished_at)


def _uid(pod: dict) -> str:
    return (pod.get("metadata") or {}).get("uid", "")


def _all_containers(pod: dict) -> list[dict]:
    spec = pod.get("spec") or {}
    return list(spec.get("initContainers") or ()) + list(spec.get("containers") or ())


def _container(pod: dict, name: str) -> dict | None:
    for c in _all_containers(pod):
        if c.get("name") == name:
            return c
    return None


class PodRuntime:
    def __init__(self, *, data_dir: str, network: NodeNetwork, pool: AddressPool,
                 dns_server: str | None, fetch, claim_users=None,
                 services: Callable[[str], list[dict]] = lambda ns: [],
                 recorder: EventRecorder | None = None, allocatable: dict[str, str] | None = None,
                 pids_limit: int | None = None, clock: Callable[[], float] = time.time):
        self.data_dir = data_dir
        self.network = network
        self.pool = pool
        self.fetch = fetch                       # async (kind, namespace, name) -> obj | None
        self.claim_users = claim_users
        self.services = services                 # namespace -> Services for env variables
        self.recorder = recorder
        self.clock = clock
        # blocking node work (forks that wait for a container to exec, netlink, mounts) runs
        # here, not in the loop's small default pool shared with everything else; taking pods
        # down has its own smaller pool, so starts never wait behind a wave of teardowns
        self.executor = concurrent.futures.ThreadPoolExecutor(NODE_THREADS, "k1s-node")
        self.cleanup_executor = concurrent.futures.ThreadPoolExecutor(CLEANUP_THREADS,
                                                                      "k1s-node-cleanup")
        self.volumes = VolumeManager(data_dir, allocatable=allocatable, executor=self.executor,
                                     teardown_executor=self.cleanup_executor)
        self.runtime = ProcessRuntime(data_dir, dns_server=dns_server,
                                      netns_for=self._netns_for, pod_ip_for=self._pod_ip_for,
                                      volumes_for=self._volumes_for, env_for=self._env_for,
                                      pids_limit=pids_limit)
        self.probes = ProbeManager(on_change=self._probe_changed, on_event=self._event)
        self.pods: dict[str, PodState] = {}
        self.wake: Callable[[tuple[str, str]], None] = lambda key: None
        self._cleanups: set[asyncio.Task] = set()
        self._pidfds: dict[tuple[str, str], int] = {}    # (uid, container) -> monitor's pidfd

    async def _blocking(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(
            self.executor, functools.partial(fn, *args))

    async def _cleanup_blocking(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(
            self.cleanup_executor, functools.partial(fn, *args))

    # -- exits -----------------------------------------------------------------------------------------
    def _watch_monitor(self, uid: str, name: str) -> None:
        """Wake the pod when this container's monitor exits (it records the exit first)."""
        key = (uid, name)
        if key in self._pidfds:
            return
        m = process.monitor_of(self.data_dir, uid, name)
        if m is None:
            return
        try:
            fd = os.pidfd_open(m[0])
        except OSError:
            return                          # already gone: the exit is on disk
        if not linux.alive(m[0], m[1]):     # the pid was reused: not our monitor
            os.close(fd)
            return
        self._pidfds[key] = fd
        asyncio.get_running_loop().add_reader(fd, self._monitor_exited, key)

    def _monitor_exited(self, key: tuple[str, str]) -> None:
        self._unwatch(key)
        ps = self.pods.get(key[0])
        if ps is not None:
            self.wake(ps.key)

    def _unwatch(self, key: tuple[str, str]) -> None:
        fd = self._pidfds.pop(key, None)
        if fd is not None:
            asyncio.get_running_loop().remove_reader(fd)
            os.close(fd)

    def _unwatch_pod(self, uid: str) -> None:
        for key in [k for k in self._pidfds if k[0] == uid]:
            self._unwatch(key)

    # -- hooks the process runtime calls -----------------------------------------------------------
    def _netns_for(self, pod: dict) -> str | None:
        if (pod.get("spec") or {}).get("hostNetwork"):
            return None
        ps = self.pods.get(_uid(pod))
        return ps.netns if ps else None

    def _pod_ip_for(self, pod: dict) -> str | None:
        return self.pool.get(_uid(pod))

    def _volumes_for(self, pod: dict, c: dict) -> list[VolumeMount]:
        ps = self.pods.get(_uid(pod))
        vols = (ps.volumes if ps else None) or {}
        env = ps.env.get(c.get("name", "")) if ps else None
        return [VolumeMount(m.host_path, m.container_path, m.read_only, m.sub_path)
                for m in VolumeManager.container_mounts(c, vols, env)]

    def _env_for(self, pod: dict, c: dict) -> dict[str, str]:
        ps = self.pods.get(_uid(pod))
        return dict(ps.env.get(c.get("name", ""), {})) if ps else {}

    # -- the PodWorkers protocol -------------------------------------------------------------------
    def state(self, uid: str) -> tuple[float, float] | None:
        ps = self.pods.get(uid)
        if ps is None or ps.started_at is None:
            return None
        return ps.started_at, ps.started_at

    def problem(self, uid: str) -> tuple[str, float] | None:
        ps = self.pods.get(uid)
        if ps is None or ps.problem is None:
            return None
        if ps.problem[1] <= self.clock():
            return None                     # time to try again: the planner asks for a Start
        return ps.problem

    async def start(self, pod: dict) -> None:
        ps = self._state_for(pod)
        if await self._prepare(pod, ps):
            ps.started_at = ps.started_at or self.clock()

    def adopt(self, uid: str) -> None:
        # The pod ran before this process: its containers may still run. It is prepared again
        # (same address, volumes, sandbox) on its first sync; nothing is started twice.
        self.runtime.adopt(uid)
        rec = self.runtime.pods.get(uid)
        if rec is None:
            return
        ps = self.pods.setdefault(uid, PodState(key=("", ""), uid=uid))
        ps.started_at = rec.started_at
        ps.prepared = False

    async def stop(self, pod: dict, grace: int) -> None:
        uid = _uid(pod)
        ps = self.pods.get(uid)
        if ps is None or ps.stopping is not None:
            return
        self.probes.forget(uid)
        self._cancel_hooks(ps)
        ps.stopping = asyncio.create_task(self._stop(pod, grace), name=f"stop:{uid}")

    def stopped(self, uid: str) -> bool:
        ps = self.pods.get(uid)
        if ps is None or ps.started_at is None:
            return True
        return self.runtime.stopped(uid)

    def forget(self, uid: str) -> None:
        self._unwatch_pod(uid)
        ps = self.pods.pop(uid, None)
        if ps is not None:
            for h in ps.killing.values():
                if h is not None:
                    h.cancel()
            self._cancel_hooks(ps)
            if ps.stopping is not None:
                ps.stopping.cancel()
        self.probes.forget(uid)
        t = asyncio.create_task(self.cleanup(uid), name=f"cleanup:{uid}")
        self._cleanups.add(t)
        t.add_done_callback(self._cleanups.discard)

    # -- preparing a pod ---------------------------------------------------------------------------
    def _state_for(self, pod: dict) -> PodState:
        m = pod.get("metadata") or {}
        ps = self.pods.setdefault(_uid(pod), PodState(key=("", ""), uid=_uid(pod)))
        ps.key = (m.get("namespace", ""), m.get("name", ""))
        return ps

    async def _prepare(self, pod: dict, ps: PodState) -> bool:
        """Volumes, address, network namespace, sandbox. False (with `problem` set) when some
        step failed; every step is idempotent, so preparing again converges."""
        uid = _uid(pod)
        if not await self._setup_volumes(pod, ps):
            return False
        host_network = bool((pod.get("spec") or {}).get("hostNetwork"))
        if not host_network:
            ip = self.pool.allocate(uid)
            if ip is None:
                self._fail(ps, NO_ADDRESS, "FailedCreatePodSandBox")
                return False
            net = PodNetwork(self.network, uid)
            try:
                await self._blocking(net.setup, ip)
            except (OSError, ValueError) as e:
                self._fail(ps, f"Failed to create pod sandbox: network: {e}",
                           "FailedCreatePodSandBox")
                return False
            ps.netns = net.path
        try:
            # forks the holder and waits for it: off the event loop, so other pods go on
            await self._blocking(self.runtime.ensure_sandbox, pod)
        except (OSError, ValueError) as e:
            self._fail(ps, f"Failed to create pod sandbox: {e}", "FailedCreatePodSandBox")
            return False
        ps.problem, ps.failures, ps.prepared = None, 0, True
        rec = self.runtime.pods.get(_uid(pod))
        if not ps.dns_reported and rec is not None:
            # what kubelet warns about while forming the pod's resolv.conf (trimmed limits)
            ps.dns_reported = True
            for reason, message in rec.dns_warnings:
                self._event(pod, "Warning", reason, message)
        return True

    async def _setup_volumes(self, pod: dict, ps: PodState) -> bool:
        try:
            ps.volumes = await self.volumes.setup(pod, self.fetch, self.claim_users)
        except MountFailed as e:
            ps.volumes = e.volumes
            self._fail(ps, e.messages[0] if e.messages else str(e), None)
            return False
        except Exception as e:       # the API or the disk: tried again like a mount failure
            log.warning("volume setup of pod %s/%s failed: %s", *ps.key, e)
            self._fail(ps, f"Unable to attach or mount volumes: {e}", None)
            return False
        ps.volumes_at = self.clock()
        return True

    async def _resync_volumes(self, pod: dict, ps: PodState) -> None:
        """The periodic volume sync of a running pod (configMap/secret/downwardAPI contents
        follow their sources). If it fails — a ConfigMap deleted, say — the pod keeps
        running with what it has: kubelet reports FailedMount and leaves the pod's status
        alone; the next sync tries again."""
        try:
            volumes = await self.volumes.setup(pod, self.fetch, self.claim_users)
        except MountFailed as e:
            message = e.messages[0] if e.messages else str(e)
            ps.volumes = {**(ps.volumes or {}), **(e.volumes or {})}
        except Exception as e:
            message = f"Unable to attach or mount volumes: {e}"
        else:
            ps.volumes, ps.volumes_at, ps.resync_reported = volumes, self.clock(), ""
            return
        ps.volumes_at = self.clock()
        if message != ps.resync_reported:
            ps.resync_reported = message
            self._event(pod, "Warning", "FailedMount", message)

    def _fail(self, ps: PodState, message: str, reason: str | None) -> None:
        """Keep the failure as the pod's problem (reported by the pod planner as FailedMount)
        until a back-off passes; sandbox failures are reported here as their own event."""
        delay = min(MOUNT_RETRY_MAX, MOUNT_RETRY_FIRST * 2 ** ps.failures)
        ps.failures += 1
        if reason is not None and (ps.problem is None or ps.problem[0] != message) and \
                self.recorder is not None:
            self.recorder.event(self._pod_ref(ps), "Warning", reason, message)
        ps.problem = (message, self.clock() + delay)

    def _pod_ref(self, ps: PodState) -> dict:
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"namespace": ps.key[0], "name": ps.key[1], "uid": ps.uid}}

    # -- containers ----------------------------------------------------------------------------------
    async def sync_containers(self, pod: dict, pod_ip: str | None,
                              host_ip: str) -> tuple[dict | None, float | None]:
        ps = self._state_for(pod)
        ps.pod = pod
        now = self.clock()
        if not ps.prepared or now - ps.volumes_at >= RESYNC_SECONDS:
            if not ps.prepared:
                if not await self._prepare(pod, ps):
                    return None, ps.problem[1] if ps.problem else None
            else:
                await self._resync_volumes(pod, ps)
        if (pod.get("spec") or {}).get("hostNetwork"):
            pod_ip = host_ip
        plan = None
        for _ in range(3):                 # act, then plan again with what was started
            # probes first: a container's new run must not be judged by its last run's results
            self._sync_probes(pod, ps, pod_ip or "")
            view = self._containers_view(pod, ps, pod_ip or "", host_ip)
            plan = containers.plan(pod, view)
            started = refused = False
            skip_start_events = False
            for act in plan.actions:
                if isinstance(act, StartContainer):
                    ok = await self._start_container(pod, ps, act.name, pod_ip or "", host_ip)
                    started |= ok
                    refused |= not ok
                    skip_start_events = not ok
                elif isinstance(act, KillContainer):
                    self._kill_container(pod, ps, act)
                elif isinstance(act, ContainerEvent):
                    if skip_start_events and act.reason in START_EVENTS:
                        continue        # the container did not start: no Created/Started
                    skip_start_events = False
                    if act.reason in eviction.NODE_REASONS:
                        if ps.verdict_reported == act.reason:
                            continue    # once, though the status saying so may lag
                        ps.verdict_reported = act.reason
                    self._event(pod, act.type, act.reason, act.message)
            if not (started or refused):
                break                   # (refused: plan again so the status says why)
        self._sync_probes(pod, ps, pod_ip or "")
        recheck = now + RESYNC_SECONDS
        if plan.recheck is not None:
            recheck = min(recheck, plan.recheck)
        for at in ps.config_error_at.values():      # a config error is tried again
            recheck = min(recheck, at + CONFIG_RETRY_SECONDS)
        return plan.status, recheck

    def _containers_view(self, pod: dict, ps: PodState, pod_ip: str,
                         host_ip: str) -> ContainersView:
        uid = _uid(pod)
        states = self.runtime.container_states(uid)
        runs = {n: run_of(st) for n, st in states.items()}
        for n, st in states.items():
            if st.exit_code is None:
                self._watch_monitor(uid, n)
        for name, run in runs.items():
            seen = ps.seen.get(name)
            if seen is not None and run.restart > seen.restart and seen.exit_code is not None:
                ps.last[name] = seen          # the run before this one, for lastState
        for name in list(ps.killing):          # a killed container exited: its kill is done
            run = runs.get(name)
            if run is None or run.exit_code is not None:
                timer = ps.killing.pop(name)
                if timer is not None:
                    timer.cancel()
        ps.seen = runs
        for name, run in runs.items():
            if name not in ps.last and run.restart > 0:
                prev = _last_state_from_status(pod, name)
                if prev is not None:
                    ps.last[name] = prev
        waiting = dict(self.runtime.waiting(uid))
        now = self.clock()
        # a config error (a missing ConfigMap, say) holds the container only for a while:
        # then it is tried again, as kubelet's sync retries it
        waiting.update({n: e for n, e in ps.config_errors.items()
                        if now - ps.config_error_at.get(n, 0.0) < CONFIG_RETRY_SECONDS})
        return ContainersView(now=self.clock(), host_ip=host_ip, pod_ip=pod_ip, runs=runs,
                              last=dict(ps.last), waiting=waiting,
                              probes=self.probes.results(uid),
                              killing=frozenset(ps.killing), verdict=ps.verdict,
                              starting=frozenset(n for n, t in ps.hooks.items()
                                                 if not t.done()))

    async def _start_container(self, pod: dict, ps: PodState, name: str, pod_ip: str,
                         host_ip: str) -> bool:
        c = _container(pod, name)
        if c is None:
            return False
        uid = _uid(pod)
        lookup = self._lookup
        try:
            ns = (pod.get("metadata") or {}).get("namespace") or "default"
            env = envvars.container_env(pod, c, lookup, pod_ip=pod_ip, host_ip=host_ip,
                                        allocatable=self.volumes.allocatable,
                                        service_env=serviceenv.for_pod(pod, self.services(ns)))
            bad = self.volumes.check_sub_paths(pod, ps.volumes or {}, {name: env})
            if name in bad:
                raise envvars.ConfigError(bad[name])
            missing = [m.get("name") for m in c.get("volumeMounts") or ()
                       if m.get("name") not in (ps.volumes or {})]
            if missing:
                raise envvars.ConfigError(f"volume {missing[0]!r} is not set up")
        except envvars.ConfigError as e:
            if ps.config_errors.get(name, ("", ""))[1] != str(e):
                self._event(pod, "Warning", "Failed", f"Error: {e}")
            ps.config_errors[name] = (envvars.ConfigError.reason, str(e))
            ps.config_error_at[name] = self.clock()
            return False
        ps.config_errors.pop(name, None)
        ps.config_error_at.pop(name, None)
        ps.env[name] = env
        command, args = envvars.expand_command(c, env)
        c = dict(c)
        if command is not None:
            c["command"] = command
        if args is not None:
            c["args"] = args
        try:
            # the start forks a monitor and waits until the container exec'd (its mounts made):
            # tens of milliseconds that must not stall every other pod's sync
            st = await self._blocking(self.runtime.start_container, pod, c)
        except (OSError, ValueError) as e:
            ps.config_errors[name] = ("RunContainerError", str(e))
            ps.config_error_at[name] = self.clock()
            self._event(pod, "Warning", "Failed", f"Error: {e}")
            return False
        if st is None:                       # the image cannot run: see runtime.waiting
            why = self.runtime.waiting(uid).get(name)
            if why is not None and ps.image_reported.get(name) != why:
                ps.image_reported[name] = why
                # kubelet's words: a config error is "Error: <why>"; an image we cannot run
                # names its reason too (upstream's pull errors do: ErrImagePull ...)
                text = why[1] if why[0] == envvars.ConfigError.reason else f"{why[0]}: {why[1]}"
                self._event(pod, "Warning", "Failed", f"Error: {text}")
            return False
        log.debug("started container %s of pod %s/%s (pid %s)", name, *ps.key, st.pid)
        self._unwatch((uid, name))              # the previous run's monitor, if any
        self._watch_monitor(uid, name)
        hook = (c.get("lifecycle") or {}).get("postStart")
        if hook and st.exit_code is None:
            # the hook runs beside the pod's sync, not in it: a hook that takes long (or
            # forever) holds this container in ContainerCreating, never the node's workers
            self._cancel_hooks(ps, name)
            t = asyncio.create_task(self._post_start(pod, ps, c, st, hook),
                                    name=f"postStart:{uid}/{name}")
            ps.hooks[name] = t
        return True

    def _kill_container(self, pod: dict, ps: PodState, act: KillContainer) -> None:
        if act.name in ps.killing:
            return
        if ps.hooks.get(act.name) is not asyncio.current_task():
            self._cancel_hooks(ps, act.name)
        st = self.runtime.container_states(_uid(pod)).get(act.name)
        if st is None or st.exit_code is not None:
            return
        rec = self.runtime.pods.get(_uid(pod))
        sig = rec.stop_signals.get(act.name, signal.SIGTERM) if rec else signal.SIGTERM
        process.signal_container(st, sig)
        loop = asyncio.get_running_loop()
        ps.killing[act.name] = loop.call_later(max(0, act.grace), process.signal_container,
                                               st, signal.SIGKILL)

    def _sync_probes(self, pod: dict, ps: PodState, pod_ip: str) -> None:
        targets = {}
        for name, st in self.runtime.container_states(_uid(pod)).items():
            if st.exit_code is None and name not in ps.killing:
                env, user = self._exec_context(ps, name, st.restart)
                targets[name] = Target(pid=st.pid, netns=ps.netns, pod_ip=pod_ip, run=st.restart,
                                       env=env, user=user)
        self.probes.sync(pod, targets)

    def _exec_context(self, ps: PodState, name: str, run: int):
        """(environment, identity) a command run in this container gets (exec probes, hooks),
        as recorded at its start; read once per run."""
        key = (name, run)
        ctx = ps.exec_ctx.get(key)
        if ctx is None:
            ps.exec_ctx = {k: v for k, v in ps.exec_ctx.items() if k[0] != name}
            ctx = ps.exec_ctx[key] = (process.read_env(self.data_dir, ps.uid, name),
                                      process.read_identity(self.data_dir, ps.uid, name))
        return ctx

    def _probe_changed(self, uid: str) -> None:
        ps = self.pods.get(uid)
        if ps is not None:
            self.wake(ps.key)

    def _event(self, pod: dict, type_: str, reason: str, message: str) -> None:
        if self.recorder is not None:
            self.recorder.event(pod, type_, reason, message)

    def _lookup(self, kind: str, ns: str, name: str):
        # envvars is pure and synchronous: the agent's fetch is backed by informers, whose
        # caches answer without waiting (fetch_cached)
        getter = getattr(self.fetch, "cached", None)
        return getter(kind, ns, name) if getter is not None else None

    # -- exits ---------------------------------------------------------------------------------------
    def poll_exits(self) -> None:
        """Wake every started pod whose containers' states changed since the last look."""
        for uid, ps in list(self.pods.items()):
            if ps.started_at is None or not ps.prepared or ps.key == ("", ""):
                continue
            rec = self.runtime.pods.get(uid)
            sig = tuple((n, s.restart, s.exit_code)
                        for n, s in sorted(self.runtime.container_states(uid).items())) \
                if rec else ()
            if sig != ps.signature:
                ps.signature = sig
                self.wake(ps.key)

    async def watch_exits(self) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            try:
                self.poll_exits()
            except Exception:                # one unreadable pod must not stop the others
                log.exception("looking at container states failed")

    # -- local storage ---------------------------------------------------------------------------------
    async def watch_storage(self) -> None:
        """Kubelet's eviction manager for local storage: every STORAGE_SECONDS, the pods with
        a limit to check are measured (off the loop: it walks their files)."""
        while True:
            await asyncio.sleep(STORAGE_SECONDS)
            try:
                await self.check_storage()
            except Exception:
                log.exception("checking local storage failed")

    async def check_storage(self) -> None:
        for ps in list(self.pods.values()):
            pod = ps.pod
            if pod is None or ps.verdict is not None or not ps.prepared or \
                    ps.stopping is not None or \
                    (pod.get("metadata") or {}).get("deletionTimestamp") or \
                    not eviction.measures_storage(pod) or \
                    not any(st.exit_code is None
                            for st in self.runtime.container_states(ps.uid).values()):
                continue            # nothing runs there (finished, stopping): nothing grows
            try:
                use = await self._cleanup_blocking(self.storage_use, pod)
            except Exception:   # one unreadable pod must not spare the others their check
                log.exception("measuring the storage of pod %s/%s failed", *ps.key)
                continue
            verdict = eviction.storage_verdict(pod, use)
            if verdict is not None and ps.verdict is None:
                log.info("evicting pod %s/%s: %s", *ps.key, verdict.message)
                ps.verdict = verdict
                self.wake(ps.key)

    def storage_use(self, pod: dict) -> StorageUse:
        """What the pod uses on the node's disk: disk emptyDirs, and per container its
        writable layers (root and /dev), its termination-message file and its logs."""
        uid = _uid(pod)
        empty = {n: used for n, (used, _limit) in self.volumes.empty_dir_usage(pod).items()}
        per_container = {}
        for c in _all_containers(pod):
            name = c.get("name", "")
            try:
                cdir = process.container_dir(self.data_dir, uid, name)
                paths = (os.path.join(cdir, "upper"), os.path.join(cdir, "dev-upper"),
                         os.path.dirname(process.log_path(self.data_dir, uid, name, 0)))
            except ValueError:
                continue
            used = sum(dirs.usage(p, 0).used_bytes for p in paths if os.path.isdir(p))
            try:
                used += os.lstat(os.path.join(cdir, "termination-log")).st_blocks * 512
            except OSError:
                pass
            per_container[name] = used
        return StorageUse(empty_dirs=empty, containers=per_container)

    # -- stopping ------------------------------------------------------------------------------------
    async def _stop(self, pod: dict, grace: int) -> None:
        uid = _uid(pod)
        begun = time.monotonic()
        hooks = [c for c in (pod.get("spec") or {}).get("containers") or ()
                 if ((c.get("lifecycle") or {}).get("preStop"))]
        if hooks:
            try:
                await asyncio.wait_for(asyncio.gather(
                    *(self._pre_stop(pod, c) for c in hooks), return_exceptions=True),
                    timeout=max(0, grace))
            except asyncio.TimeoutError:
                pass
        left = max(0.0, grace - (time.monotonic() - begun))     # not rounded down to 0
        await self.runtime.stop(pod, left)
        ps = self.pods.get(uid)
        if ps is not None:
            self.wake(ps.key)

    async def _pre_stop(self, pod: dict, c: dict) -> None:
        st = self.runtime.container_states(_uid(pod)).get(c.get("name", ""))
        if st is None or st.exit_code is not None:
            return
        err = await self._run_hook(pod, c, (c.get("lifecycle") or {}).get("preStop") or {}, st)
        if err:
            self._event(pod, "Warning", "FailedPreStopHook", f"PreStopHook failed: {err}")

    async def _post_start(self, pod: dict, ps: PodState, c: dict,
                          st: process.ContainerState, hook: dict) -> None:
        """The container's postStart hook, run right after its start as kubelet does; if it
        fails the container is killed (and restarted by its policy). Either way the pod is
        woken: the container now shows as running, or as killed."""
        name = c.get("name", "")
        try:
            err = await self._run_hook(pod, c, hook, st)
        finally:
            if ps.hooks.get(name) is asyncio.current_task():
                ps.hooks.pop(name, None)
        if err:
            log.info("postStart hook of %s in pod %s/%s failed: %s", name, *ps.key, err)
            # upstream keeps the hook's output out of the event: it may hold secrets
            self._event(pod, "Warning", "FailedPostStartHook", "PostStartHook failed")
            grace = containers.grace_period(pod, None)
            self._kill_container(pod, ps, KillContainer(name, grace, "FailedPostStartHook"))
            self._event(pod, "Normal", "Killing", "FailedPostStartHook")
        self.wake(ps.key)

    @staticmethod
    def _cancel_hooks(ps: PodState, name: str | None = None) -> None:
        """Stop running postStart hooks (of one container, or all): the command is killed."""
        for n in [n for n in ps.hooks if name is None or n == name]:
            ps.hooks.pop(n).cancel()

    async def _run_hook(self, pod: dict, c: dict, hook: dict,
                        st: process.ContainerState) -> str:
        """A lifecycle handler (exec in the container, httpGet in the pod's network, sleep):
        '' when it succeeded, else what failed."""
        if hook.get("exec"):
            # the probes' exec runner: bounded output, the command killed and reaped if we
            # give up on it (a stop, a deletion)
            argv = [str(a) for a in hook["exec"].get("command") or []]
            ps = self._state_for(pod)
            env, user = self._exec_context(ps, c.get("name", ""), st.restart)
            target = Target(pid=st.pid, netns=ps.netns, pod_ip=self.pool.get(_uid(pod)) or "",
                            run=st.restart, env=env, user=user)
            try:
                out = await check_exec(target, {"command": argv}, None)
            except ProbeError as e:
                return str(e)
            if not out.ok:
                return f"command {' '.join(argv)!r} failed: {out.detail}"
            return ""
        if hook.get("sleep"):
            await asyncio.sleep(int((hook["sleep"] or {}).get("seconds") or 0))
            return ""
        if hook.get("httpGet"):
            ps = self.pods.get(_uid(pod))
            return await _http_hook(hook["httpGet"], c, ps.netns if ps else None,
                                    self.pool.get(_uid(pod)) or "")
        return "the handler has no exec, httpGet or sleep action"

    async def cleanup(self, uid: str) -> None:
        """Take down what a pod that is gone left: volumes, containers and files, network."""
        await self._take_down(uid, lambda: self.runtime.forget(uid))

    async def _take_down(self, uid: str, stop_processes: Callable[[], None]) -> None:
        """Volumes, then the processes (`stop_processes`, blocking), then the network; each
        step is tried even when an earlier one failed."""
        steps = (("volumes", lambda: self.volumes.teardown(uid)),
                 ("processes", lambda: self._cleanup_blocking(stop_processes)),
                 ("network", lambda: self._cleanup_blocking(
                     PodNetwork(self.network, uid).teardown)))
        for what, step in steps:
            try:
                await step()
            except Exception as e:
                log.warning("taking down the %s of pod %s: %s", what, uid, e)

    async def finish(self, uid: str) -> None:
        """The pod ended (Succeeded/Failed): whatever still runs is killed, its sandbox,
        volumes and network go; its files (logs, exit states) stay for kubectl logs."""
        self.probes.forget(uid)
        if uid in self.pods:
            self._cancel_hooks(self.pods[uid])
        self.runtime.kill(uid)
        await self._take_down(uid, lambda: self._halt(uid))

    def _halt(self, uid: str) -> None:
        """Wait until the (killed) containers exited, then end the sandbox; files stay."""
        for name in self.runtime.container_states(uid):
            _wait_exit(self.data_dir, uid, name)
        self.runtime.stopped(uid)
        rec = self.runtime.pods.get(uid)
        if rec is not None and rec.holder is not None:
            from .runtime import sandbox
            sandbox.stop_holder(rec.holder)
            rec.holder = None

    async def shutdown(self, grace: float = 2.0) -> None:
        """The node goes down: every container stopped (stop signal, SIGKILL after `grace`),
        volumes unmounted, network namespaces removed. Pod directories (logs, exit states)
        stay: the next start finds the pods exited and restarts them by their policy."""
        await self.probes.close()
        for ps in self.pods.values():
            self._cancel_hooks(ps)
        await asyncio.gather(*self._cleanups, return_exceptions=True)
        for key in list(self._pidfds):
            self._unwatch(key)
        uids = list(self.pods)
        for uid in uids:
            self.runtime.signal(uid, None)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(
                not self.runtime.stopped(u) for u in uids if u in self.runtime.pods):
            await asyncio.sleep(0.05)
        for uid in uids:
            self.runtime.kill(uid)
        for uid in uids:
            await self._take_down(uid, lambda u=uid: self._halt(u))
        self.executor.shutdown(wait=False)
        self.cleanup_executor.shutdown(wait=False)


async def _http_hook(get: dict, c: dict, netns: str | None, pod_ip: str) -> str:
    """An httpGet lifecycle hook: GET the path inside the pod's network; '' or what failed."""
    from .network import forward
    port = get.get("port")
    if isinstance(port, str) and not port.isdigit():
        port = next((p.get("containerPort") for p in c.get("ports") or ()
                     if p.get("name") == port), None)
    host = get.get("host") or pod_ip
    if not port or not host:
        return f"invalid port {get.get('port')!r}"
    writer = None
    try:
        reader, writer = await forward.open_connection(netns, host, int(port), timeout=10)
        writer.write(f"GET {get.get('path') or '/'} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                     f"User-Agent: kube-lifecycle/1.32\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        await asyncio.wait_for(reader.read(), 10)
    except (OSError, asyncio.TimeoutError) as e:
        return f"Get \"http://{host}:{port}{get.get('path') or '/'}\": {e}"
    finally:
        if writer is not None:
            writer.close()
    return ""


def _wait_exit(data_dir: str, uid: str, name: str) -> None:
    from .runtime.runtime import _wait_exit as wait
    wait(data_dir, uid, name)


def _last_state_from_status(pod: dict, name: str) -> Run | None:
    """The previous run as the pod's status last reported it (an agent restart lost it)."""
    from k1s.node.podplan import parse_time
    st = pod.get("status") or {}
    for cs in list(st.get("initContainerStatuses") or ()) + list(st.get("containerStatuses") or ()):
        if cs.get("name") != name:
            continue
        t = (cs.get("lastState") or {}).get("terminated")
        if not t:
            return None
        try:
            return Run(restart=max(0, int(cs.get("restartCount") or 0) - 1),
                       started_at=parse_time(t["startedAt"]) if t.get("startedAt") else None,
                       exit_code=int(t.get("exitCode") or 0), reason=t.get("reason", ""),
                       message=t.get("message", ""),
                       finished_at=parse_time(t["finishedAt"]) if t.get("finishedAt") else None)
        except (KeyError, ValueError):
            return None
    return None
