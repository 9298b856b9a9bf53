"""A pod's QoS class (Guaranteed, Burstable, BestEffort), as upstream's qos.GetPodQOS computes
it: the API server writes it into status.qosClass at create; the node derives its OOM score
adjustment from it."""

from __future__ import annotations

from typing import Any


def pod_qos_class(pod: dict) -> str:
    """Guaranteed, Burstable or BestEffort, as upstream's qos.GetPodQOS computes it."""
    spec = pod.get("spec") or {}
    containers = list(spec.get("containers") or []) + list(spec.get("initContainers") or [])
    requests: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    any_set = False
    guaranteed = True
    for c in containers:
        res = c.get("resources") or {}
        req = {k: v for k, v in (res.get("requests") or {}).items() if k in ("cpu", "memory")}
        lim = {k: v for k, v in (res.get("limits") or {}).items() if k in ("cpu", "memory")}
        if req or lim:
            any_set = True
        # requests default to limits when only limits are given
        eff_req = dict(lim)
        eff_req.update(req)
        if set(lim) != {"cpu", "memory"}:
            guaranteed = False
        else:
            for k in ("cpu", "memory"):
                if str(eff_req.get(k)) != str(lim.get(k)):
                    guaranteed = False
        requests.update(eff_req)
        limits.update(lim)
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"
