"""The `endpoints.kubernetes.io/last-change-trigger-time` value (pure state machine).

As upstream's TriggerTimeTracker: per Service, remember the trigger times seen at the last sync
(each pod's Ready lastTransitionTime, the Service's creationTimestamp). A sync's trigger time is
the earliest of those that moved forward since; none moved means no trigger time, and the
annotation is removed. RFC 3339 UTC timestamps compare correctly as strings.
"""

from __future__ import annotations

from .pods import meta, ready_transition_time


class TriggerTimeTracker:
    def __init__(self):
        # service key -> (service trigger time, {pod name: pod trigger time})
        self._state: dict[str, tuple[str, dict[str, str]]] = {}

    def compute(self, key: str, svc: dict, pods: list[dict]) -> str:
        """The trigger time for this sync ('' for none); remembers this sync's times."""
        last_svc, last_pods = self._state.get(key, ("", {}))
        earliest = ""
        now_pods: dict[str, str] = {}
        for pod in pods:
            t = ready_transition_time(pod)
            if not t:
                continue
            name = meta(pod).get("name", "")
            now_pods[name] = t
            if t > last_pods.get(name, "") and (not earliest or t < earliest):
                earliest = t
        svc_t = meta(svc).get("creationTimestamp") or ""
        if svc_t > last_svc and (not earliest or svc_t < earliest):
            earliest = svc_t
        self._state[key] = (svc_t, now_pods)
        return earliest

    def forget(self, key: str) -> None:
        self._state.pop(key, None)
