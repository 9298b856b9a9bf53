"""persistentVolumeClaimRetentionPolicy as ownerReferences on claims (pure).

Wanted refs on each claim of pod ordinal i (upstream stateful_set_utils.go, GA 1.32):

  whenScaled / whenDeleted   in-range ordinal      condemned ordinal
  Retain / Retain            none                  none
  Retain / Delete            -> StatefulSet        -> StatefulSet
  Delete / Retain            none                  -> Pod
  Delete / Delete            -> StatefulSet        -> Pod (set ref removed)

The garbage collector then deletes the claim once its owner is gone: the pod first, the claim
after. Refs we do not own are respected: a ref to this set's or pod's *name* with another UID
(an earlier incarnation) means "managed elsewhere, leave it"; a foreign controller ref makes
us take our own refs off and add none.
"""

from __future__ import annotations

from .identity import SET_API_VERSION, SET_KIND, controller_ref, in_range, meta, ordinal_of

POD_API_VERSION, POD_KIND = "v1", "Pod"


def policy(sts: dict) -> tuple[str, str]:
    """(whenScaled, whenDeleted); unknown values are treated as Retain, as upstream."""
    p = (sts.get("spec") or {}).get("persistentVolumeClaimRetentionPolicy") or {}
    ws = p.get("whenScaled") if p.get("whenScaled") in ("Retain", "Delete") else "Retain"
    wd = p.get("whenDeleted") if p.get("whenDeleted") in ("Retain", "Delete") else "Retain"
    return ws, wd


def _refs(obj: dict) -> list[dict]:
    return list(meta(obj).get("ownerReferences") or [])


def _matches(ref: dict, owner: dict, api_version: str, kind: str) -> bool:
    return (ref.get("apiVersion") == api_version and ref.get("kind") == kind
            and ref.get("name") == meta(owner).get("name"))


def has_stale_ref(claim: dict, owner: dict, api_version: str, kind: str) -> bool:
    """A ref to owner's name and kind but another UID (absent UID on a placeholder counts)."""
    uid = meta(owner).get("uid", "")
    return any(_matches(r, owner, api_version, kind) and r.get("uid") != uid
               for r in _refs(claim))


def has_ref(claim: dict, owner: dict) -> bool:
    uid = meta(owner).get("uid")
    return bool(uid) and any(r.get("uid") == uid for r in _refs(claim))


def has_unexpected_controller(claim: dict, sts: dict, pod: dict) -> bool:
    for r in _refs(claim):
        if _matches(r, sts, SET_API_VERSION, SET_KIND):
            if r.get("uid") != meta(sts).get("uid"):
                return True
        elif _matches(r, pod, POD_API_VERSION, POD_KIND):
            if r.get("uid") != meta(pod).get("uid"):
                return True
        elif r.get("controller"):
            return True
    return False


def has_non_controller_owner(claim: dict, sts: dict, pod: dict) -> bool:
    uids = {meta(sts).get("uid"), meta(pod).get("uid")} - {None, ""}
    return any(r.get("uid") in uids and not r.get("controller") for r in _refs(claim))


def claim_is_stale(sts: dict, pod_placeholder: dict, claim: dict | None) -> bool:
    """Under whenScaled=Delete, an existing claim still owned by an earlier pod of this name
    blocks creating the pod again until the garbage collector has removed the claim."""
    if claim is None or policy(sts)[0] == "Retain":
        return False
    return has_stale_ref(claim, pod_placeholder, POD_API_VERSION, POD_KIND)


def claim_refs_up_to_date(sts: dict, pod: dict, claim: dict) -> bool:
    if not meta(claim).get("ownerReferences"):
        # the common case, checked for every pod on every sync: no refs, none wanted
        if policy(sts) == ("Retain", "Retain"):
            return True
        return wanted_refs(sts, pod) == (False, False)
    if (has_stale_ref(claim, sts, SET_API_VERSION, SET_KIND)
            or has_stale_ref(claim, pod, POD_API_VERSION, POD_KIND)):
        return True
    if has_unexpected_controller(claim, sts, pod):
        return not (has_ref(claim, sts) or has_ref(claim, pod))
    if has_non_controller_owner(claim, sts, pod):
        return False
    want_set, want_pod = wanted_refs(sts, pod)
    return has_ref(claim, sts) == want_set and has_ref(claim, pod) == want_pod


def wanted_refs(sts: dict, pod: dict) -> tuple[bool, bool]:
    """(ref to the set wanted, ref to the pod wanted) for this pod's claims."""
    when_scaled, when_deleted = policy(sts)
    scaled_down = not in_range(sts, ordinal_of(pod))
    if when_scaled == "Delete" and scaled_down:
        return False, True
    return when_deleted == "Delete", False


def updated_refs(sts: dict, pod: dict, claim: dict) -> list[dict] | None:
    """The claim's ownerReferences as the policy wants them, or None if nothing changes."""
    refs = _refs(claim)
    set_uid, pod_uid = meta(sts).get("uid"), meta(pod).get("uid")
    if has_unexpected_controller(claim, sts, pod):
        kept = [r for r in refs if r.get("uid") not in (set_uid, pod_uid)]
        return kept if len(kept) != len(refs) else None
    if (has_stale_ref(claim, sts, SET_API_VERSION, SET_KIND)
            or has_stale_ref(claim, pod, POD_API_VERSION, POD_KIND)):
        return None
    want_set, want_pod = wanted_refs(sts, pod)
    out = list(refs)
    out = _apply(out, sts, set_uid, want_set, SET_API_VERSION, SET_KIND)
    if pod_uid:
        out = _apply(out, pod, pod_uid, want_pod, POD_API_VERSION, POD_KIND)
    return out if out != refs else None


def _apply(refs: list[dict], owner: dict, uid: str | None, want: bool, api_version: str,
           kind: str) -> list[dict]:
    if not want:
        return [r for r in refs if r.get("uid") != uid]
    wanted = controller_ref(owner, api_version, kind)
    out = []
    found = False
    for r in refs:
        if r.get("uid") == uid:
            found = True
            out.append(r if r.get("controller") else {**r, "controller": True,
                                                        "blockOwnerDeletion": True})
        else:
            out.append(r)
    if not found:
        out.append(wanted)
    return out
