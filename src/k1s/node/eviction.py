"""Which pods the node fails on its own, and the words it uses: kubelet's pod sync handlers
(activeDeadlineSeconds) and its eviction manager's local-storage checks. Pure: the caller
measures (`StorageUse`) and supplies the clock; the container planner (`containers.plan`)
turns a `Verdict` into kills, the Failed phase, the status reason/message and the event.

Upstream rules kept here:
- activeDeadlineSeconds counts from status.startTime; once `now - startTime >= deadline` the
  pod fails with reason DeadlineExceeded, its containers stopped with the pod's own grace
  period (kubelet's activeDeadlineHandler; the event is Normal).
- Local ephemeral storage (kubelet's localStorageEviction, checked in this order): a disk
  emptyDir past its sizeLimit; then the pod's usage (disk emptyDirs plus every container's
  writable layers, /dev layers, termination-message files and logs) past the sum of its
  containers' ephemeral-storage limits; then one app container's own usage past its limit.
  Limits print in their canonical form, as Quantity.String(); a sizeLimit of 0 is no limit.
  The pod is evicted (reason Evicted, a Warning event; no DisruptionTarget condition: upstream
  adds one only for node-pressure evictions) and killed with kubelet's minimum grace period.
- Memory-backed emptyDirs are tmpfs mounts capped at their sizeLimit already (the write fails
  with ENOSPC), so they are not measured.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from k1s.api.quantity import (BINARY_SI, DECIMAL_SI, canonical, format_quantity,
                              parse_quantity)

DEADLINE_REASON = "DeadlineExceeded"
DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"
EVICTED_REASON = "Evicted"
EVICTION_GRACE = 2          # kubelet's minimumGracePeriodInSeconds for an eviction's kill
NODE_REASONS = (DEADLINE_REASON, EVICTED_REASON)


@dataclass(frozen=True)
class Verdict:
    """The node fails the pod: why, in the status and an event, and how hard it stops it."""
    reason: str
    message: str
    grace: int | None = None        # None: the pod's terminationGracePeriodSeconds
    event_type: str = "Warning"
    disruption: bool = False        # add the DisruptionTarget condition (node pressure)


@dataclass(frozen=True)
class StorageUse:
    """Bytes a pod uses on the node's disk, as measured."""
    empty_dirs: dict[str, int] = field(default_factory=dict)     # disk emptyDirs by volume
    containers: dict[str, int] = field(default_factory=dict)     # writable layer + logs


# -- activeDeadlineSeconds ---------------------------------------------------------------------
def deadline_at(pod: dict, start_time: float | None) -> float | None:
    """When the pod's active deadline passes (None: it has none, or has not started)."""
    deadline = (pod.get("spec") or {}).get("activeDeadlineSeconds")
    if deadline is None or start_time is None:
        return None
    return start_time + int(deadline)


def deadline_verdict(pod: dict, start_time: float | None, now: float) -> Verdict | None:
    at = deadline_at(pod, start_time)
    if at is None or now < at:
        return None
    return Verdict(DEADLINE_REASON, DEADLINE_MESSAGE, event_type="Normal")


def standing_verdict(pod: dict) -> Verdict | None:
    """A verdict already written in the pod's status (the agent restarted meanwhile)."""
    st = pod.get("status") or {}
    if st.get("reason") == DEADLINE_REASON:
        return Verdict(DEADLINE_REASON, st.get("message") or DEADLINE_MESSAGE, event_type="Normal")
    if st.get("reason") == EVICTED_REASON:
        return Verdict(EVICTED_REASON, st.get("message") or "", grace=EVICTION_GRACE,
                       disruption=any(c.get("type") == "DisruptionTarget"
                                      for c in st.get("conditions") or ()))
    return None


# -- local ephemeral storage -------------------------------------------------------------------
def _limit(c: dict) -> str | None:
    return (((c.get("resources") or {}).get("limits")) or {}).get("ephemeral-storage")


def _format_of(text: str) -> str:
    return BINARY_SI if str(text).rstrip().endswith("i") else DECIMAL_SI


def disk_empty_dirs(pod: dict) -> dict[str, str]:
    """Disk-backed emptyDirs with a positive sizeLimit: {volume: sizeLimit, canonical}."""
    out = {}
    for v in (pod.get("spec") or {}).get("volumes") or ():
        ed = v.get("emptyDir")
        if isinstance(ed, dict) and ed.get("medium", "") != "Memory" and \
                ed.get("sizeLimit") is not None and parse_quantity(ed["sizeLimit"]) > 0:
            out[v.get("name", "")] = canonical(ed["sizeLimit"])
    return out


def pod_storage_limit(pod: dict) -> tuple[Decimal, str] | None:
    """The pod's ephemeral-storage limit as kubelet sums it (app containers added up, an
    init container's own limit when larger), with the format its message prints in."""
    spec = pod.get("spec") or {}
    total, fmt, found = Decimal(0), "", False
    for c in spec.get("containers") or ():
        lim = _limit(c)
        if lim is not None:
            total += parse_quantity(lim)
            fmt, found = fmt or _format_of(lim), True
    for c in spec.get("initContainers") or ():
        lim = _limit(c)
        if lim is not None:
            found = True
            if parse_quantity(lim) > total:
                total, fmt = parse_quantity(lim), _format_of(lim)
    return (total, fmt or DECIMAL_SI) if found else None


def measures_storage(pod: dict) -> bool:
    """Whether the pod has any limit local-storage eviction checks (else nothing to measure)."""
    return bool(disk_empty_dirs(pod)) or pod_storage_limit(pod) is not None


def storage_verdict(pod: dict, use: StorageUse) -> Verdict | None:
    """The first local-storage limit the pod is over, in kubelet's order."""
    for name, size in disk_empty_dirs(pod).items():
        used = use.empty_dirs.get(name)
        if used is not None and used > parse_quantity(size):
            return _evicted(f'Usage of EmptyDir volume "{name}" exceeds the limit "{size}". ')
    limit = pod_storage_limit(pod)
    if limit is not None:
        total = sum(use.empty_dirs.values()) + sum(use.containers.values())
        if total > limit[0]:
            return _evicted("Pod ephemeral local storage usage exceeds the total limit of "
                            f"containers {format_quantity(limit[0], limit[1])}. ")
    for c in (pod.get("spec") or {}).get("containers") or ():     # app containers, as upstream
        lim = _limit(c)
        used = use.containers.get(c.get("name", ""))
        if lim is not None and used is not None and used > parse_quantity(lim):
            return _evicted(f"Container {c.get('name', '')} exceeded its local ephemeral "
                            f"storage limit \"{canonical(lim)}\". ")
    return None


def _evicted(message: str) -> Verdict:
    return Verdict(EVICTED_REASON, message, grace=EVICTION_GRACE)
