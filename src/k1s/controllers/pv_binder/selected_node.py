"""Which pods wait on a WaitForFirstConsumer claim (for the binder's WaitForPodScheduled
explanation). The node itself is chosen by the scheduler (k1s.scheduler), which writes the
claim's `volume.kubernetes.io/selected-node` in its PreBind step, as upstream's does; the binder
then provisions or binds for that node. Pure functions of the pods observed.
"""

from __future__ import annotations

TERMINAL = ("Succeeded", "Failed")


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


def unscheduled_users(claim_name: str, pods) -> list[str]:
    """Names of active pods using the claim that have no node yet (WaitForPodScheduled)."""
    return sorted((p.get("metadata") or {}).get("name") for p in pods
                  if is_active(p) and pod_uses_claim(p, claim_name)
                  and not (p.get("spec") or {}).get("nodeName"))
