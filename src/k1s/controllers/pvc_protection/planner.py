"""The pvc-protection decisions, as pure functions over plain API objects.

Rules (upstream pkg/controller/volume/pvcprotection and protectionutil):

  P0  a claim not being deleted that lacks the finalizer gets it (claims made before the
      admission plugin existed); one that has it needs nothing.
  P1  a claim being deleted without the finalizer is not ours: nothing to do.
  P2  a claim being deleted with the finalizer is kept while some pod uses it; the informer's
      pods are asked first (a hit there is final), and only a live list of the namespace's
      pods can prove it unused (an informer running behind may miss a new pod).
  P3  a deleted claim that no pod of the live list uses loses the finalizer.

"A pod uses a claim" (upstream podUsesPVC): the pod is in the claim's namespace and scheduled
(spec.nodeName set -- the kubelet refuses to start a pod whose claim is being deleted, so an
unscheduled pod can never come to use it), and either
  - a spec.volumes[].persistentVolumeClaim.claimName names the claim, whatever the pod's phase
    (upstream keeps claims of Succeeded/Failed pods; kubernetes#123320 to change that was not
    merged), or
  - a generic ephemeral volume's claim `<pod>-<volume>` is the claim, the claim is controlled by
    this pod (ownerReference controller=true with its UID), and the pod is not shut down
    (deleted with grace period 0: the kubelet is done with it, or it was force-deleted).
"""

from __future__ import annotations

import enum
from typing import Iterable

FINALIZER = "kubernetes.io/pvc-protection"
TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})


class Decision(enum.Enum):
    NOTHING = "nothing"                    # P0 (finalizer present) / P1
    ADD_FINALIZER = "add-finalizer"        # P0
    KEEP = "keep"                          # P2: some pod uses it
    CONFIRM_LIVE = "confirm-live"          # P2: the cache says unused; a live list must decide
    REMOVE_FINALIZER = "remove-finalizer"  # P3


def _meta(obj: dict | None) -> dict:
    return (obj or {}).get("metadata") or {}


def is_deletion_candidate(obj: dict, finalizer: str = FINALIZER) -> bool:
    """Being deleted and still held by `finalizer` (upstream IsDeletionCandidate)."""
    md = _meta(obj)
    return bool(md.get("deletionTimestamp")) and finalizer in (md.get("finalizers") or ())


def needs_finalizer(obj: dict, finalizer: str = FINALIZER) -> bool:
    """Not being deleted and missing `finalizer` (upstream NeedToAddFinalizer)."""
    md = _meta(obj)
    return not md.get("deletionTimestamp") and finalizer not in (md.get("finalizers") or ())


def _volumes(pod: dict) -> list[dict]:
    return [v for v in ((pod.get("spec") or {}).get("volumes") or ()) if isinstance(v, dict)]


def ephemeral_claim_name(pod: dict, volume: dict) -> str:
    """The claim a generic ephemeral volume gets: `<pod name>-<volume name>`."""
    return f"{_meta(pod).get('name', '')}-{volume.get('name', '')}"


def claims_of_pod(pod: dict) -> list[str]:
    """Every claim name the pod's volumes refer to, persistentVolumeClaim and ephemeral."""
    out: list[str] = []
    for v in _volumes(pod):
        pvc = v.get("persistentVolumeClaim")
        if isinstance(pvc, dict) and pvc.get("claimName"):
            out.append(pvc["claimName"])
        elif isinstance(v.get("ephemeral"), dict):
            out.append(ephemeral_claim_name(pod, v))
    return out


def pod_claim_index(pod: dict) -> list[str]:
    """Index values `namespace/claim` for the pod informer (upstream PodPVCIndexFunc)."""
    ns = _meta(pod).get("namespace") or ""
    return sorted({f"{ns}/{c}" for c in claims_of_pod(pod)})


def is_controlled_by(obj: dict, owner: dict) -> bool:
    uid = _meta(owner).get("uid")
    return bool(uid) and any(isinstance(r, dict) and r.get("controller") and r.get("uid") == uid
                             for r in (_meta(obj).get("ownerReferences") or ()))


def pod_is_shut_down(pod: dict) -> bool:
    """Deleted with grace period 0: the kubelet has finished with it, or it was force-deleted."""
    md = _meta(pod)
    return bool(md.get("deletionTimestamp")) and md.get("deletionGracePeriodSeconds") == 0


def pod_is_terminated(pod: dict) -> bool:
    """Upstream volumeutil.IsPodTerminated: a terminal phase, or deleted with no container
    still running."""
    status = pod.get("status") or {}
    if status.get("phase") in TERMINAL_PHASES:
        return True
    if not _meta(pod).get("deletionTimestamp"):
        return False
    return all("running" not in (cs.get("state") or {})
               for cs in (status.get("containerStatuses") or ()) if isinstance(cs, dict))


def pod_uses_claim(pod: dict, claim: dict) -> bool:
    cmd = _meta(claim)
    if _meta(pod).get("namespace") != cmd.get("namespace"):
        return False
    if not (pod.get("spec") or {}).get("nodeName"):
        return False
    name = cmd.get("name")
    for v in _volumes(pod):
        pvc = v.get("persistentVolumeClaim")
        if isinstance(pvc, dict) and pvc.get("claimName") == name:
            return True
        if (isinstance(v.get("ephemeral"), dict) and not pod_is_shut_down(pod)
                and ephemeral_claim_name(pod, v) == name and is_controlled_by(claim, pod)):
            return True
    return False


def pod_may_release_claims(pod: dict, deleted: bool) -> bool:
    """Whether a pod event can let a claim go, so its claims are worth re-checking (upstream's
    enqueuePVCs filter: deleted, terminated or unscheduled pods; shut-down pods too, as they
    release their ephemeral claims)."""
    return (deleted or pod_is_terminated(pod) or pod_is_shut_down(pod)
            or not (pod.get("spec") or {}).get("nodeName"))


def plan(claim: dict, cached_pods: Iterable[dict],
         live_pods: Iterable[dict] | None = None) -> Decision:
    """What to do with `claim`. `cached_pods` are the informer's candidates; `live_pods` is the
    live list of the claim's namespace, or None when it has not been fetched yet."""
    if is_deletion_candidate(claim):
        if any(pod_uses_claim(p, claim) for p in cached_pods):
            return Decision.KEEP
        if live_pods is None:
            return Decision.CONFIRM_LIVE
        if any(pod_uses_claim(p, claim) for p in live_pods):
            return Decision.KEEP
        return Decision.REMOVE_FINALIZER
    if needs_finalizer(claim):
        return Decision.ADD_FINALIZER
    return Decision.NOTHING


def with_finalizer(finalizers: Iterable[str] | None, add: bool,
                   finalizer: str = FINALIZER) -> list[str]:
    """The finalizer list with `finalizer` appended once (others' order kept) or every copy of
    it removed; other writers' finalizers are never touched."""
    existing = list(finalizers or ())
    if not add:
        return [f for f in existing if f != finalizer]
    return existing if finalizer in existing else existing + [finalizer]
