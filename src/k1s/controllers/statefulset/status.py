"""StatefulSet status as upstream computes and writes it (pure).

Counts run over the set's pods with a parsable ordinal, in range and condemned alike:
replicas = pods that exist (terminating included); readyReplicas = running and ready;
availableReplicas = ready for minReadySeconds; currentReplicas / updatedReplicas = existing,
not terminating, labelled with the current / update revision. A RollingUpdate whose every
pod is updated and ready (`updated == ready == replicas == spec.replicas`) completes: the
current revision becomes the update revision.

A status is written only when a tracked field differs from the stored one; the JSON shape
follows the Go type's omitempty tags (replicas and availableReplicas always present,
collisionCount a pointer, so 0 is written).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from . import podstate as S
from .identity import replicas_of, revision_of, spec

TRACKED = ("replicas", "readyReplicas", "currentReplicas", "updatedReplicas",
           "availableReplicas", "currentRevision", "updateRevision")


@dataclass
class Status:
    observedGeneration: int = 0
    replicas: int = 0
    readyReplicas: int = 0
    currentReplicas: int = 0
    updatedReplicas: int = 0
    availableReplicas: int = 0
    currentRevision: str = ""
    updateRevision: str = ""
    collisionCount: int = 0

    def to_json(self) -> dict:
        d = asdict(self)
        out = {"replicas": d["replicas"], "availableReplicas": d["availableReplicas"],
               "collisionCount": d["collisionCount"]}
        for k in ("observedGeneration", "readyReplicas", "currentReplicas", "updatedReplicas",
                  "currentRevision", "updateRevision"):
            if d[k]:
                out[k] = d[k]
        return out


def count(pods: list[dict | None], min_ready_seconds: int, now: float, current: str,
          update: str, base: Status) -> Status:
    """`base` with the pod counters filled from `pods` (None entries are missing slots)."""
    st = Status(observedGeneration=base.observedGeneration, currentRevision=current,
                updateRevision=update, collisionCount=base.collisionCount)
    for p in pods:
        if p is None:
            continue
        st.replicas += 1
        if S.is_running_and_ready(p):
            st.readyReplicas += 1
            if S.is_available(p, min_ready_seconds, now):
                st.availableReplicas += 1
        if not S.is_terminating(p):
            rev = revision_of(p)
            if rev == current:
                st.currentReplicas += 1
            if rev == update:
                st.updatedReplicas += 1
    return st


def complete_rolling_update(sts: dict, st: Status) -> Status:
    want = replicas_of(sts)
    if ((spec(sts).get("updateStrategy") or {}).get("type") == "RollingUpdate"
            and st.updatedReplicas == want and st.readyReplicas == want
            and st.replicas == want):
        st.currentReplicas = st.updatedReplicas
        st.currentRevision = st.updateRevision
    return st


def _value(d: dict, key: str):
    v = d.get(key)
    return (v or "") if key.endswith("Revision") else int(v or 0)


def needs_write(stored: dict | None, st: Status) -> bool:
    """Upstream inconsistentStatus: a newer generation, or any tracked field differs."""
    stored = stored or {}
    if st.observedGeneration > int(stored.get("observedGeneration") or 0):
        return True
    cur = st.to_json()
    return any(_value(stored, k) != _value(cur, k) for k in TRACKED)
