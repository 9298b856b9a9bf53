"""What the controller reads from a pod's status: created, failed, ready, available, healthy.

Upstream's vocabulary (stateful_set_utils.go), over plain dicts:
- created: the object exists (missing ordinals are `None` in the planner's slots);
- terminating: `metadata.deletionTimestamp` is set;
- running and ready: phase Running and condition Ready True;
- available(minReadySeconds): ready, and Ready's lastTransitionTime is at least
  minReadySeconds before `now` (minReadySeconds 0: available == ready);
- healthy: running, ready and not terminating; unavailable: not available or terminating.
"""

from __future__ import annotations

from datetime import datetime, timezone


def phase(pod: dict | None) -> str:
    return ((pod or {}).get("status") or {}).get("phase") or ""


def is_terminating(pod: dict | None) -> bool:
    return bool(((pod or {}).get("metadata") or {}).get("deletionTimestamp"))


def is_failed(pod: dict | None) -> bool:
    return phase(pod) == "Failed"


def is_succeeded(pod: dict | None) -> bool:
    return phase(pod) == "Succeeded"


def is_pending(pod: dict | None) -> bool:
    return phase(pod) == "Pending"


def ready_condition(pod: dict | None) -> dict | None:
    for c in ((pod or {}).get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c
    return None


def is_ready(pod: dict | None) -> bool:
    c = ready_condition(pod)
    return c is not None and c.get("status") == "True"


def is_running_and_ready(pod: dict | None) -> bool:
    return phase(pod) == "Running" and is_ready(pod)


def parse_time(value: str | None) -> float | None:
    if not value:
        return None
    try:
        v = value.replace("Z", "+00:00")
        return datetime.fromisoformat(v).astimezone(timezone.utc).timestamp()
    except ValueError:
        return None


def is_available(pod: dict | None, min_ready_seconds: int, now: float) -> bool:
    """Upstream podutil.IsPodAvailable: ready for at least minReadySeconds."""
    if not is_ready(pod):
        return False
    if not min_ready_seconds:
        return True
    since = parse_time((ready_condition(pod) or {}).get("lastTransitionTime"))
    return since is not None and since + min_ready_seconds < now


def is_running_and_available(pod: dict | None, min_ready_seconds: int, now: float) -> bool:
    return is_running_and_ready(pod) and is_available(pod, min_ready_seconds, now)


def is_healthy(pod: dict | None) -> bool:
    return pod is not None and is_running_and_ready(pod) and not is_terminating(pod)


def is_unavailable(pod: dict | None, min_ready_seconds: int, now: float) -> bool:
    return (pod is None or not is_running_and_available(pod, min_ready_seconds, now)
            or is_terminating(pod))


def ready_in(pod: dict | None, min_ready_seconds: int, now: float) -> float | None:
    """Seconds until a ready pod becomes available (None if not ready or already available)."""
    if not is_running_and_ready(pod) or not min_ready_seconds:
        return None
    since = parse_time((ready_condition(pod) or {}).get("lastTransitionTime"))
    if since is None:
        return None
    left = since + min_ready_seconds - now
    return left if left >= 0 else None
