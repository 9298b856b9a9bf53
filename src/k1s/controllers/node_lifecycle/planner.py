"""The node-lifecycle controller's decisions (upstream pkg/controller/nodelifecycle and the
taint-eviction controller), pure: no clock, no I/O; times are epoch seconds passed in.

Health. The controller remembers, per node, the local time it last saw a heartbeat change (the
Lease's renewTime, or the Ready condition's lastHeartbeatTime): the probe time. A node whose
probe time is older than the grace period (upstream --node-monitor-grace-period, 50 s in v1.32;
--node-startup-grace-period, 60 s, while the node never posted a Ready condition) gets Ready,
MemoryPressure, DiskPressure and PIDPressure set to Unknown: reason NodeStatusUnknown,
"Kubelet stopped posting node status." (NodeStatusNeverUpdated, "Kubelet never posted node
status." for a condition never posted); lastHeartbeatTime is kept, lastTransitionTime is now.

Taints (upstream doNoScheduleTaintingPass / doNoExecuteTaintingPass):
- NoSchedule from conditions: Ready False -> node.kubernetes.io/not-ready, Ready Unknown ->
  node.kubernetes.io/unreachable, MemoryPressure/DiskPressure/PIDPressure/NetworkUnavailable
  True -> memory-pressure/disk-pressure/pid-pressure/network-unavailable, and
  spec.unschedulable -> node.kubernetes.io/unschedulable;
- NoExecute from Ready: False -> not-ready, Unknown -> unreachable (with timeAdded), True ->
  neither. Taints with other keys are never touched.

Pods on a node whose Ready is not True get their Ready condition False (MarkPodsNotReady).

Eviction (taint-eviction controller): a pod on a node with NoExecute taints must tolerate every
one; it is evicted at once if it does not, or at timeAdded + the smallest tolerationSeconds of
the tolerations it uses (never, if none of them has tolerationSeconds). k1s has no
DefaultTolerationSeconds admission yet, which gives upstream pods a 300 s toleration of
not-ready and unreachable; the planner applies that default itself to pods without their own
toleration of those two keys, so a pod is not evicted sooner than upstream would.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

GRACE_PERIOD = 50.0             # --node-monitor-grace-period (v1.32 default)
STARTUP_GRACE_PERIOD = 60.0     # --node-startup-grace-period
MONITOR_PERIOD = 5.0            # --node-monitor-period
DEFAULT_TOLERATION_SECONDS = 300  # DefaultTolerationSeconds admission

TAINT_NOT_READY = "node.kubernetes.io/not-ready"
TAINT_UNREACHABLE = "node.kubernetes.io/unreachable"
TAINT_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
NO_SCHEDULE, NO_EXECUTE = "NoSchedule", "NoExecute"

# condition type -> {status: NoSchedule taint key}
NO_SCHEDULE_BY_CONDITION = {
    "Ready": {"False": TAINT_NOT_READY, "Unknown": TAINT_UNREACHABLE},
    "MemoryPressure": {"True": "node.kubernetes.io/memory-pressure"},
    "DiskPressure": {"True": "node.kubernetes.io/disk-pressure"},
    "NetworkUnavailable": {"True": "node.kubernetes.io/network-unavailable"},
    "PIDPressure": {"True": "node.kubernetes.io/pid-pressure"},
}
MANAGED_NO_SCHEDULE = {k for m in NO_SCHEDULE_BY_CONDITION.values() for k in m.values()} | \
    {TAINT_UNSCHEDULABLE}
MANAGED_NO_EXECUTE = {TAINT_NOT_READY, TAINT_UNREACHABLE}

UNKNOWN_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
REASON_UNKNOWN, MESSAGE_UNKNOWN = "NodeStatusUnknown", "Kubelet stopped posting node status."
REASON_NEVER, MESSAGE_NEVER = "NodeStatusNeverUpdated", "Kubelet never posted node status."


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(ts: str | None) -> float | None:
    if not ts:
        return None
    try:
        return datetime.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S").replace(
            tzinfo=timezone.utc).timestamp()
    except ValueError:
        return None


def condition(node: dict, type_: str) -> dict | None:
    for c in (node.get("status") or {}).get("conditions") or ():
        if c.get("type") == type_:
            return c
    return None


def ready_status(node: dict) -> str:
    """"True", "False" or "Unknown" (a node without a Ready condition is Unknown)."""
    c = condition(node, "Ready")
    return (c or {}).get("status") or "Unknown"


def heartbeat_marker(node: dict | None, lease: dict | None) -> tuple:
    """What changes when the node's agent is alive: the Ready condition's lastHeartbeatTime
    and the Lease's renewTime (not what this controller writes itself)."""
    ready = condition(node or {}, "Ready") or {}
    return (ready.get("lastHeartbeatTime"), ((lease or {}).get("spec") or {}).get("renewTime"))


# -- health ---------------------------------------------------------------------------------------
def unknown_conditions(node: dict, now: float, probe_time: float, grace: float,
                       startup_grace: float) -> list[dict] | None:
    """The node's conditions with the health ones set Unknown when its heartbeat is older than
    the grace period; None when nothing changes."""
    never = condition(node, "Ready") is None
    if probe_time + (startup_grace if never else grace) > now:
        return None
    stamp = rfc3339(now)
    created = (node.get("metadata") or {}).get("creationTimestamp") or stamp
    conds = [dict(c) for c in (node.get("status") or {}).get("conditions") or ()]
    by_type = {c.get("type"): c for c in conds}
    changed = False
    for type_ in UNKNOWN_CONDITIONS:
        c = by_type.get(type_)
        if c is None:
            conds.append({"type": type_, "status": "Unknown", "reason": REASON_NEVER,
                          "message": MESSAGE_NEVER, "lastHeartbeatTime": created,
                          "lastTransitionTime": stamp})
            changed = True
        elif c.get("status") != "Unknown":
            c.update(status="Unknown", reason=REASON_UNKNOWN, message=MESSAGE_UNKNOWN,
                     lastTransitionTime=stamp)
            changed = True
    return conds if changed else None


# -- taints ----------------------------------------------------------------------------------------
def wanted_taints(node: dict, now: float) -> list[dict] | None:
    """The node's taints after both tainting passes; None when they stay as they are."""
    spec = node.get("spec") or {}
    taints = [dict(t) for t in spec.get("taints") or ()]
    want_ns = set()
    for c in (node.get("status") or {}).get("conditions") or ():
        key = NO_SCHEDULE_BY_CONDITION.get(c.get("type"), {}).get(c.get("status"))
        if key:
            want_ns.add(key)
    if spec.get("unschedulable"):
        want_ns.add(TAINT_UNSCHEDULABLE)
    ready = ready_status(node) if condition(node, "Ready") else None
    want_ne = {"False": {TAINT_NOT_READY}, "Unknown": {TAINT_UNREACHABLE}}.get(ready, set())

    def managed(t: dict) -> bool:
        return (t.get("effect") == NO_SCHEDULE and t.get("key") in MANAGED_NO_SCHEDULE) or \
            (t.get("effect") == NO_EXECUTE and t.get("key") in MANAGED_NO_EXECUTE)

    def wanted(t: dict) -> bool:
        return t.get("key") in (want_ns if t.get("effect") == NO_SCHEDULE else want_ne)

    out = [t for t in taints if not managed(t) or wanted(t)]
    have = {(t.get("key"), t.get("effect")) for t in out}
    for key in sorted(want_ns):
        if (key, NO_SCHEDULE) not in have:
            out.append({"key": key, "effect": NO_SCHEDULE})
    for key in sorted(want_ne):
        if (key, NO_EXECUTE) not in have:
            out.append({"key": key, "effect": NO_EXECUTE, "timeAdded": rfc3339(now)})
    return None if out == taints else out


# -- one node ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NodePlan:
    conditions: list[dict] | None      # write these conditions (status), or None
    taints: list[dict] | None          # write these taints (spec), or None
    became_not_ready: bool             # Ready just left True: record NodeNotReady


def plan_node(node: dict, now: float, probe_time: float, grace: float = GRACE_PERIOD,
              startup_grace: float = STARTUP_GRACE_PERIOD) -> NodePlan:
    was_ready = ready_status(node) == "True"
    conds = unknown_conditions(node, now, probe_time, grace, startup_grace)
    after = node if conds is None else dict(node, status=dict(node.get("status") or {},
                                                              conditions=conds))
    return NodePlan(conds, wanted_taints(after, now),
                    was_ready and ready_status(after) != "True")


# -- pods --------------------------------------------------------------------------------------------
def needs_not_ready(pod: dict, node: dict | None) -> bool:
    """Whether the pod's Ready condition must be set False: its node's Ready is not True
    (a node that never posted Ready is left to its startup grace)."""
    if node is None or condition(node, "Ready") is None or ready_status(node) == "True":
        return False
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return False
    for c in (pod.get("status") or {}).get("conditions") or ():
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def _tolerates(tol: dict, taint: dict) -> bool:
    """Upstream Toleration.ToleratesTaint."""
    if tol.get("effect") and tol.get("effect") != taint.get("effect"):
        return False
    if tol.get("key") and tol.get("key") != taint.get("key"):
        return False
    op = tol.get("operator") or "Equal"
    if op == "Exists":
        return True
    return op == "Equal" and (tol.get("value") or "") == (taint.get("value") or "")


def eviction_time(pod: dict, node: dict | None, now: float) -> float | None:
    """When the pod must be evicted from its node (<= now: at once), or None (never)."""
    if node is None or (pod.get("metadata") or {}).get("deletionTimestamp"):
        return None
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return None
    taints = [t for t in (node.get("spec") or {}).get("taints") or ()
              if t.get("effect") == NO_EXECUTE]
    if not taints:
        return None
    tolerations = list((pod.get("spec") or {}).get("tolerations") or ())
    when: float | None = None
    for taint in taints:
        used = [t for t in tolerations if _tolerates(t, taint)]
        if not used and taint.get("key") in MANAGED_NO_EXECUTE:
            used = [{"tolerationSeconds": DEFAULT_TOLERATION_SECONDS}]
        if not used:
            return now
        secs = [t["tolerationSeconds"] for t in used if t.get("tolerationSeconds") is not None]
        if not secs:
            continue                         # tolerated forever
        added = parse_time(taint.get("timeAdded")) or now
        at = added + max(0, min(int(s) for s in secs))
        when = at if when is None else min(when, at)
    return when
