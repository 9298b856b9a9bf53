"""Pod status objects a node writes, one builder per stage, in upstream's (kubelet 1.32) shapes.

Pure: every function takes the pod, what the node knows, and `now` (RFC 3339), and returns a
new PodStatus dict; nothing here reads a clock or does I/O. Each condition keeps its
lastTransitionTime from the pod's current status while its status does not change, and
`startTime` / a running container's `startedAt` are kept once set, so building the same stage
twice gives an equal status (the writer compares, and skips equal writes).

Stages (what `kubectl get pod` shows):
- `creating`: Pending, containers waiting with reason ContainerCreating (PodInitializing
  behind init containers), PodReadyToStartContainers False, Ready/ContainersReady False with
  reason ContainersNotReady "containers with unready status: [a b]";
- `running`: Running, sandbox ready, init containers terminated (Completed, exit 0), every
  container running, ready and started, podIP/podIPs, all five conditions True;
- `not_ready`: what upstream's node-lifecycle controller (MarkPodsNotReady) writes for pods on
  an unreachable node: the Ready condition False, nothing else changed.

Condition order is kubelet's: PodReadyToStartContainers, Initialized, Ready, ContainersReady,
PodScheduled. Container and image IDs are deterministic (a hash of pod uid and container name,
of the image reference) so the same pod always gets the same plausible values.
"""

from __future__ import annotations

import hashlib

CONDITION_ORDER = ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady",
                   "PodScheduled")
RUNTIME = "containerd"


# -- names the runtime would report -------------------------------------------------------------
def normalize_image(image: str) -> str:
    """The fully qualified reference containerd reports: `nginx` -> docker.io/library/nginx:latest."""
    name, digest = (image.split("@", 1) + [""])[:2]
    first = name.split("/", 1)[0]
    has_domain = "/" in name and ("." in first or ":" in first or first == "localhost")
    if not has_domain:
        name = ("docker.io/library/" if "/" not in name else "docker.io/") + name
    if digest:
        return f"{name}@{digest}"
    last = name.rsplit("/", 1)[-1]
    return name if ":" in last else name + ":latest"


def image_id(image: str) -> str:
    """repo@sha256:<digest>, the digest a hash of the reference (no registry to ask)."""
    ref = normalize_image(image)
    if "@" in ref:
        return ref
    repo = ref.rsplit(":", 1)[0] if ":" in ref.rsplit("/", 1)[-1] else ref
    return f"{repo}@sha256:{hashlib.sha256(ref.encode()).hexdigest()}"


def container_id(pod: dict, name: str) -> str:
    uid = (pod.get("metadata") or {}).get("uid", "")
    return f"{RUNTIME}://{hashlib.sha256(f'{uid}/{name}'.encode()).hexdigest()}"


# -- conditions --------------------------------------------------------------------------------
def _conditions(pod: dict, wanted: dict[str, tuple[str, str | None, str | None]],
                now: str) -> list[dict]:
    """Conditions in kubelet's order from {type: (status, reason, message)}, keeping
    lastTransitionTime of unchanged ones; PodScheduled is kept as the scheduler wrote it
    (True since now when it is missing: the pod was bound by spec.nodeName)."""
    old = {c.get("type"): c for c in (pod.get("status") or {}).get("conditions") or ()}
    out = []
    for type_ in CONDITION_ORDER:
        if type_ == "PodScheduled" and type_ in old and old[type_].get("status") == "True":
            out.append(old[type_])
            continue
        status, reason, message = wanted.get(type_, ("True", None, None))
        prev = old.get(type_) or {}
        since = prev.get("lastTransitionTime") if prev.get("status") == status else None
        c = {"type": type_, "status": status, "lastTransitionTime": since or now}
        if reason:
            c["reason"] = reason
        if message:
            c["message"] = message
        out.append(c)
    # conditions someone else owns (readiness gates, DisruptionTarget, ...) stay as they are
    out.extend(c for t, c in old.items() if t not in CONDITION_ORDER)
    return out


def _containers(pod: dict, key: str) -> list[dict]:
    return list((pod.get("spec") or {}).get(key) or ())


def _is_sidecar(c: dict) -> bool:
    return c.get("restartPolicy") == "Always"


def _names(cs: list[dict]) -> str:
    return "[" + " ".join(c.get("name", "") for c in cs) + "]"


def _start_time(pod: dict, now: str) -> str:
    return (pod.get("status") or {}).get("startTime") or now


def _base(pod: dict, host_ip: str, now: str) -> dict:
    st = pod.get("status") or {}
    out = {"hostIP": host_ip, "hostIPs": [{"ip": host_ip}], "startTime": _start_time(pod, now)}
    if st.get("qosClass"):
        out["qosClass"] = st["qosClass"]
    return out


def _waiting(pod: dict, c: dict, reason: str) -> dict:
    return {"name": c.get("name", ""), "image": normalize_image(c.get("image") or ""),
            "imageID": "", "lastState": {}, "ready": False, "restartCount": 0,
            "started": False, "state": {"waiting": {"reason": reason}}}


def _previous_started_at(pod: dict, key: str, name: str) -> str | None:
    for cs in (pod.get("status") or {}).get(key) or ():
        if cs.get("name") == name:
            return ((cs.get("state") or {}).get("running") or {}).get("startedAt") or \
                ((cs.get("state") or {}).get("terminated") or {}).get("startedAt")
    return None


def _running(pod: dict, c: dict, key: str, now: str) -> dict:
    started = _previous_started_at(pod, key, c.get("name", "")) or now
    return {"name": c.get("name", ""), "image": normalize_image(c.get("image") or ""),
            "imageID": image_id(c.get("image") or ""),
            "containerID": container_id(pod, c.get("name", "")), "lastState": {},
            "ready": True, "restartCount": 0, "started": True,
            "state": {"running": {"startedAt": started}}}


def _completed(pod: dict, c: dict, now: str) -> dict:
    started = _previous_started_at(pod, "initContainerStatuses", c.get("name", "")) or now
    return {"name": c.get("name", ""), "image": normalize_image(c.get("image") or ""),
            "imageID": image_id(c.get("image") or ""),
            "containerID": container_id(pod, c.get("name", "")), "lastState": {},
            "ready": True, "restartCount": 0, "started": False,
            "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                                     "startedAt": started, "finishedAt": started,
                                     "containerID": container_id(pod, c.get("name", ""))}}}


# -- stages --------------------------------------------------------------------------------------
def creating(pod: dict, host_ip: str, now: str) -> dict:
    """Pending: the sandbox and containers are being created (or volumes are not mounted)."""
    inits = _containers(pod, "initContainers")
    apps = _containers(pod, "containers")
    not_ready = _names(apps)
    wanted = {"PodReadyToStartContainers": ("False", None, None),
              "Ready": ("False", "ContainersNotReady", f"containers with unready status: {not_ready}"),
              "ContainersReady": ("False", "ContainersNotReady",
                                  f"containers with unready status: {not_ready}")}
    if inits:
        wanted["Initialized"] = ("False", "ContainersNotInitialized",
                                 f"containers with incomplete status: {_names(inits)}")
    status = dict(_base(pod, host_ip, now), phase="Pending",
                  conditions=_conditions(pod, wanted, now))
    app_reason = "PodInitializing" if inits else "ContainerCreating"
    if inits:
        status["initContainerStatuses"] = [_waiting(pod, c, "PodInitializing") for c in inits]
    status["containerStatuses"] = [_waiting(pod, c, app_reason) for c in apps]
    return status


def running(pod: dict, host_ip: str, pod_ip: str, now: str) -> dict:
    """Running and Ready: every init container completed, every container running."""
    if (pod.get("spec") or {}).get("hostNetwork"):
        pod_ip = host_ip
    status = dict(_base(pod, host_ip, now), phase="Running",
                  conditions=_conditions(pod, {}, now),
                  podIP=pod_ip, podIPs=[{"ip": pod_ip}])
    inits = _containers(pod, "initContainers")
    if inits:
        status["initContainerStatuses"] = [
            _running(pod, c, "initContainerStatuses", now) if _is_sidecar(c)
            else _completed(pod, c, now) for c in inits]
    status["containerStatuses"] = [_running(pod, c, "containerStatuses", now)
                                   for c in _containers(pod, "containers")]
    return status


def _exited(pod: dict, c: dict, key: str, now: str) -> dict:
    """A container that stopped when asked to (exit 0: a simulated container honours
    SIGTERM at once)."""
    started = _previous_started_at(pod, key, c.get("name", "")) or now
    cid = container_id(pod, c.get("name", ""))
    return {"name": c.get("name", ""), "image": normalize_image(c.get("image") or ""),
            "imageID": image_id(c.get("image") or ""), "containerID": cid, "lastState": {},
            "ready": False, "restartCount": 0, "started": False,
            "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": started,
                                     "finishedAt": now, "containerID": cid}}}


def stopped(pod: dict, host_ip: str, now: str) -> dict:
    """Terminal, after the node stopped a deleted pod's containers (kubelet >= 1.27 writes
    this before the final delete, kubernetes/kubernetes#115331): every container terminated,
    not Ready, phase Succeeded as all exited 0 (Failed otherwise). A finalizer that holds the
    pod then shows it Completed, 0/1, instead of Running."""
    wanted = {"PodReadyToStartContainers": ("False", None, None),
              "Ready": ("False", "PodCompleted", None),
              "ContainersReady": ("False", "PodCompleted", None),
              "Initialized": ("True", "PodCompleted", None)}
    st = pod.get("status") or {}
    status = dict(_base(pod, host_ip, now), phase="Succeeded",
                  conditions=_conditions(pod, wanted, now))
    for k in ("podIP", "podIPs"):
        if st.get(k):
            status[k] = st[k]
    inits = _containers(pod, "initContainers")
    if inits:
        status["initContainerStatuses"] = [
            _exited(pod, c, "initContainerStatuses", now) if _is_sidecar(c)
            else _completed(pod, c, now) for c in inits]
    status["containerStatuses"] = [_exited(pod, c, "containerStatuses", now)
                                   for c in _containers(pod, "containers")]
    return status


def stopped_from(pod: dict, host_ip: str, now: str, observed: dict) -> dict:
    """`stopped`, with the container statuses a real runtime observed (`observed`, a status
    its containers made: real exit codes and reasons) instead of assumed clean exits; the
    phase is Succeeded only if every container exited 0, else Failed (kubelet's getPhase for a
    terminal pod)."""
    status = stopped(pod, host_ip, now)
    codes = []
    for key in ("initContainerStatuses", "containerStatuses"):
        seen = {cs.get("name"): cs for cs in observed.get(key) or ()}
        out = []
        for cs in status.get(key) or ():
            real = seen.get(cs.get("name"))
            if real is not None and (real.get("state") or {}).get("terminated"):
                cs = dict(real, ready=False, started=False)
            out.append(cs)
            if key == "containerStatuses":
                codes.append(((cs.get("state") or {}).get("terminated") or {}).get("exitCode", 0))
        if out:
            status[key] = out
    if any(codes):
        status["phase"] = "Failed"
        for c in status["conditions"]:
            if c.get("type") in ("Ready", "ContainersReady") and c.get("reason") == "PodCompleted":
                c["reason"] = "PodFailed"
    return status


def not_ready(pod: dict, now: str) -> dict | None:
    """The pod's status with its Ready condition False (upstream MarkPodsNotReady), or None
    when it is not True now (nothing to write)."""
    st = pod.get("status") or {}
    conds = list(st.get("conditions") or ())
    for i, c in enumerate(conds):
        if c.get("type") == "Ready":
            if c.get("status") == "False":
                return None
            conds[i] = dict(c, status="False", lastTransitionTime=now)
            return dict(st, conditions=conds)
    return None


def same(current: dict | None, desired: dict) -> bool:
    """Whether writing `desired` would change nothing the node owns in `current`."""
    current = current or {}
    return all(current.get(k) == v for k, v in desired.items())


def pod_ready(pod: dict) -> bool:
    for c in (pod.get("status") or {}).get("conditions") or ():
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False
