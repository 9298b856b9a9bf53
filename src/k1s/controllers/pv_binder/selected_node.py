"""The interim stand-in for the scheduler's volume binding (until issue 4's scheduler exists):
which node a WaitForFirstConsumer claim is for.

A claim used by a non-terminal pod (spec.volumes[].persistentVolumeClaim.claimName) gets:
- the pod's spec.nodeName, when a using pod already has one;
- otherwise the cluster's only node, when exactly one node is Ready and schedulable and a using
  pod is for the default scheduler (a pod naming another scheduler waits for that one);
- otherwise nothing (the claim keeps waiting, as upstream's does for its scheduler).
Pure functions of the pods and nodes observed.
"""

from __future__ import annotations

TERMINAL = ("Succeeded", "Failed")
DEFAULT_SCHEDULER = "default-scheduler"


def claims_of_pod(pod: dict) -> list[str]:
    """The claim names a pod uses."""
    out = []
    for v in (pod.get("spec") or {}).get("volumes") or ():
        pvc = v.get("persistentVolumeClaim") or {}
        if pvc.get("claimName"):
            out.append(pvc["claimName"])
    return out


def pod_uses_claim(pod: dict, claim_name: str) -> bool:
    return claim_name in claims_of_pod(pod)


def is_active(pod: dict) -> bool:
    return ((pod.get("status") or {}).get("phase") not in TERMINAL
            and not (pod.get("metadata") or {}).get("deletionTimestamp"))


def for_default_scheduler(pod: dict) -> bool:
    return (pod.get("spec") or {}).get("schedulerName") in (None, "", DEFAULT_SCHEDULER)


def node_ready_schedulable(node: dict) -> bool:
    if (node.get("spec") or {}).get("unschedulable"):
        return False
    for c in (node.get("status") or {}).get("conditions") or ():
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def choose_node(claim_name: str, pods, nodes) -> str | None:
    """`pods`: the pods of the claim's namespace (or any superset there); `nodes`: all nodes."""
    users = [p for p in pods if is_active(p) and pod_uses_claim(p, claim_name)]
    if not users:
        return None
    for p in sorted(users, key=lambda p: (p.get("metadata") or {}).get("name") or ""):
        node = (p.get("spec") or {}).get("nodeName")
        if node:
            return node
    if not any(for_default_scheduler(p) for p in users):
        return None
    ready = [n for n in nodes if node_ready_schedulable(n)]
    if len(ready) == 1:
        return (ready[0].get("metadata") or {}).get("name")
    return None


def unscheduled_users(claim_name: str, pods) -> list[str]:
    """Names of active pods using the claim that have no node yet (WaitForPodScheduled)."""
    return sorted((p.get("metadata") or {}).get("name") for p in pods
                  if is_active(p) and pod_uses_claim(p, claim_name)
                  and not (p.get("spec") or {}).get("nodeName"))
