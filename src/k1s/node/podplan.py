"""What a node does next for one of its pods: a pure function from the pod and what the node
knows (`PodView`) to a list of actions, shared by simulated nodes and the real node agent.

The rules, in order (kubelet's pod worker, reduced to what a node decides):
1. **Being deleted** (deletionTimestamp set): stop the containers, and once they exited or
   min(deletionGracePeriodSeconds, the node's delete cap) has passed since the delete began
   (deletionTimestamp - grace), write the terminal status (containers terminated, not Ready,
   phase Succeeded/Failed) and finish the deletion (a delete with grace 0 and the pod's uid
   as precondition, as kubelet's status manager does). Until then: look again at the deadline.
2. **Finished** (Succeeded/Failed): nothing.
3. **Volumes not mountable** (a claim missing, not Bound, or being deleted; or the runtime's
   last mount attempt failed): stay ContainerCreating and report FailedMount once per
   distinct problem (the event recorder counts repeats; claims changing wake the pod; a failed
   mount is tried again at `retry_at`) — unless its activeDeadlineSeconds passed meanwhile:
   then it is Failed with reason DeadlineExceeded, as kubelet does.
4. **Not started**: ask the runtime to start it.
5. **Starting** (containers ready at `ready_at` in the future): ContainerCreating (unless
   that is less than COALESCE_SECONDS away), look again at `ready_at`.
6. **Started**: Running and Ready, with the pod's address — or, when the runtime runs real
   containers, the status it computed from them (`status`, see node/containers.py), looked at
   again at `recheck`.

Every status is written only when it differs from the pod's (see podstatus.same), so syncing a
settled pod costs nothing. Pods with restartPolicy Never/OnFailure stay Running on a simulated
node: nothing runs, so nothing ever exits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from k1s.client.events import rfc3339

from . import eviction, podstatus

TERMINAL = ("Succeeded", "Failed")
# A status that would be current for less than this is not written: the next one replaces
# it at once (kubelet's status manager likewise writes only a pod's latest status, so a fast
# start often goes straight from Pending to Running in the API). Saves a write per pod.
COALESCE_SECONDS = 0.25
STOP_SLACK_SECONDS = 10.0   # a real runtime's containers get this long past their grace


@dataclass(frozen=True)
class PodView:
    """What the node knows about one pod at one moment, besides the pod object."""
    now: float                           # epoch seconds
    host_ip: str
    pod_ip: str | None = None            # the address the node gave the pod
    volume_problem: str | None = None    # why its volumes cannot be mounted (None: they can)
    reported_problem: str | None = None  # the volume problem already reported as an event
    started_at: float | None = None      # when the runtime started it (None: not started)
    ready_at: float | None = None        # when its containers are running and ready
    stopped: bool = False                # the runtime says every container has exited
    delete_cap: float = float("inf")     # longest wait before finishing a deletion
    retry_at: float | None = None        # when a failed mount (volume_problem) is tried again
    status: dict | None = None           # a real runtime's status for the started pod
    recheck: float | None = None         # when that status should be computed again
    waits_for_stop: bool = False         # real containers: finish a deletion once they exited


# -- actions -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Start:
    """Start the pod's containers in the runtime."""


@dataclass(frozen=True)
class Stop:
    grace: int


@dataclass(frozen=True)
class WriteStatus:
    status: dict


@dataclass(frozen=True)
class Event:
    type: str
    reason: str
    message: str


@dataclass(frozen=True)
class FinishDelete:
    uid: str


@dataclass(frozen=True)
class Requeue:
    after: float


Action = Start | Stop | WriteStatus | Event | FinishDelete | Requeue


def parse_time(ts: str) -> float:
    return datetime.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S").replace(
        tzinfo=timezone.utc).timestamp()


def claim_names(pod: dict) -> list[tuple[str, str]]:
    """(volume name, claim name) of each claim-backed volume; a generic ephemeral volume's
    claim is `<pod>-<volume>` (upstream ephemeral.VolumeClaimName)."""
    out = []
    pod_name = (pod.get("metadata") or {}).get("name", "")
    for v in (pod.get("spec") or {}).get("volumes") or ():
        pvc = v.get("persistentVolumeClaim")
        if pvc and pvc.get("claimName"):
            out.append((v.get("name", ""), pvc["claimName"]))
        elif v.get("ephemeral") is not None:
            out.append((v.get("name", ""), f"{pod_name}-{v.get('name', '')}"))
    return out


def volume_problem(pod: dict, claims: dict[str, dict | None]) -> str | None:
    """Why the pod's claim-backed volumes cannot be mounted (kubelet's FailedMount message),
    or None. `claims` maps each claim name to the claim, or None when it does not exist."""
    ns = (pod.get("metadata") or {}).get("namespace", "")
    bad: list[str] = []
    first = ""
    for vol, claim_name in claim_names(pod):
        claim = claims.get(claim_name)
        if claim is None:
            why = (f"error processing PVC {ns}/{claim_name}: failed to fetch PVC from API "
                   f'server: persistentvolumeclaims "{claim_name}" not found')
        elif (claim.get("metadata") or {}).get("deletionTimestamp"):
            why = f"error processing PVC {ns}/{claim_name}: PVC is being deleted"
        elif (claim.get("status") or {}).get("phase") != "Bound" or \
                not (claim.get("spec") or {}).get("volumeName"):
            why = f"error processing PVC {ns}/{claim_name}: PVC is not bound"
        else:
            continue
        bad.append(vol)
        first = first or why
    if not bad:
        return None
    names = " ".join(sorted(bad))
    return (f"Unable to attach or mount volumes: unmounted volumes=[{names}], unattached "
            f"volumes=[{names}], failed to process volumes=[{names}]: {first}")


def plan_pod(pod: dict, view: PodView) -> list[Action]:
    """The node's next actions for this pod (see the module docstring for the rules)."""
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    now = rfc3339(view.now)
    if meta.get("deletionTimestamp"):
        out: list[Action] = []
        grace = int(meta.get("deletionGracePeriodSeconds") or 0)
        if view.started_at is not None and not view.stopped:
            out.append(Stop(grace))
        begun = parse_time(meta["deletionTimestamp"]) - grace
        deadline = begun + min(grace, view.delete_cap)
        if view.waits_for_stop:
            # the runtime kills what is left at the end of the grace period: wait for the exits
            # (their real codes go in the final status), unless something is stuck
            deadline += STOP_SLACK_SECONDS
        if view.stopped or view.started_at is None and view.delete_cap <= 0 or \
                view.now >= deadline or status.get("phase") in TERMINAL:
            if view.started_at is not None and status.get("phase") not in TERMINAL:
                # its containers have stopped: say so before the final delete, so a pod a
                # finalizer holds shows terminated, not Running and Ready (with the exit codes
                # a real runtime saw)
                out.append(WriteStatus(
                    podstatus.stopped_from(pod, view.host_ip, now, view.status)
                    if view.status is not None else podstatus.stopped(pod, view.host_ip, now)))
            out.append(FinishDelete(meta.get("uid", "")))
        else:
            out.append(Requeue(deadline - view.now))
        return out
    if status.get("phase") in TERMINAL:
        return []
    if view.volume_problem:
        creating = podstatus.creating(pod, view.host_ip, now)
        start = parse_time(creating["startTime"])
        if view.started_at is None:
            # kubelet's active deadline counts while the pod waits for its volumes too
            verdict = eviction.deadline_verdict(pod, start, view.now)
            if verdict is not None:
                return [WriteStatus(dict(creating, phase="Failed", reason=verdict.reason,
                                         message=verdict.message)),
                        Event(verdict.event_type, verdict.reason, verdict.message)]
        out = _write_if_changed(pod, creating)
        if view.volume_problem != view.reported_problem:
            out.append(Event("Warning", "FailedMount", view.volume_problem))
        retry = [t for t in (view.retry_at, eviction.deadline_at(pod, start)) if t is not None]
        if retry:
            out.append(Requeue(max(0.0, min(retry) - view.now)))
        return out
    if view.started_at is None:
        return [Start()]
    if view.ready_at is not None and view.ready_at > view.now:
        out = []
        if view.ready_at - view.now >= COALESCE_SECONDS:
            out = _write_if_changed(pod, podstatus.creating(pod, view.host_ip, now))
        out.append(Requeue(view.ready_at - view.now))
        return out
    if not view.pod_ip and not (pod.get("spec") or {}).get("hostNetwork"):
        # no address left in the node's pod CIDR: stay ContainerCreating (kubelet reports a
        # FailedCreatePodSandBox from the network plugin)
        out = _write_if_changed(pod, podstatus.creating(pod, view.host_ip, now))
        if view.reported_problem != "no address":
            out.append(Event("Warning", "FailedCreatePodSandBox",
                             "Failed to create pod sandbox: failed to allocate for range 0: "
                             "no IP addresses available in range set"))
        return out
    if view.status is not None:
        out = _write_if_changed(pod, view.status)
        if view.recheck is not None:
            out.append(Requeue(max(0.0, view.recheck - view.now)))
        return out
    if view.waits_for_stop:
        # a real runtime that gave no status could not look at the containers (preparing the
        # pod failed): never assume they run; look again
        return [Requeue(max(0.0, (view.recheck or view.now + 1.0) - view.now))]
    return _write_if_changed(pod, podstatus.running(pod, view.host_ip, view.pod_ip or "", now))


def _write_if_changed(pod: dict, desired: dict) -> list[Action]:
    return [] if podstatus.same(pod.get("status"), desired) else [WriteStatus(desired)]
