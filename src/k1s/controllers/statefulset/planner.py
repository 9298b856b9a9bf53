"""One StatefulSet sync as a pure function: what is observed in, the writes to make out.

Upstream's algorithm (pkg/controller/statefulset/stateful_set_control.go), slot by slot:

1. Pods are split into one **slot** per ordinal in `[start, start+replicas)` (missing slots
   get an in-memory placeholder built from the current or update revision, section 1.5 of the
   spec) and the **condemned** (valid ordinal outside the range), highest ordinal first.
2. A set being deleted only gets its status written.
3. Slots, lowest ordinal first. Each decides one of:
   CREATE (claims first, then the pod), REPLACE (a Failed/Succeeded pod is deleted; its
   replacement comes on a later sync, after the old object is gone), WAIT (blocked: stale
   claim, terminating, not ready, not available), REPAIR (identity labels, storage volumes or
   claim ownerReferences fixed), KEEP.
   OrderedReady (monotonic) stops the whole pass at the first slot that creates, replaces or
   waits. Parallel never stops there; its slots run in slow-start batches (1, 2, 4, ... at most
   MAX_BATCH writes at once), a batch with a failed write ending the sync.
4. Claim ownerReferences of condemned pods are fixed for the retention policy, then the
   condemned are deleted: OrderedReady one per sync, only when every in-range pod is healthy
   and the condemned one is too (or is the first unhealthy pod), waiting for a terminating
   one to be gone; Parallel all at once.
5. OnDelete stops here. RollingUpdate deletes pods not at the update revision from the
   highest ordinal down to the partition, within the maxUnavailable budget (1.37 semantics,
   including the Parallel two-phase pass); their replacements are created by step 3 later.

The plan's `batches` are executed in order, the works of one batch concurrently, the ops of
one work in order; `status` is the status to write (before rollout completion is applied).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import podstate as S
from . import retention as R
from .identity import (claim_name, claim_names, claim_templates, controller_of, end_ordinal,
                       identity_matches, is_member_of, meta, new_claim, new_pod, ordinal_of,
                       replicas_of, revision_of, set_identity, set_storage, spec,
                       start_ordinal, storage_matches)
from .status import Status, count

MAX_BATCH = 500                 # upstream MaxBatchSize: writes in flight for one Parallel batch

CREATE, REPLACE, WAIT, REPAIR, KEEP, DELETE = (
    "create", "replace", "wait", "repair", "keep", "delete")


@dataclass
class Op:
    """One API write. kind: create-claim | claim-terminating | create-pod | update-pod |
    update-claim | delete-pod. `obj` is the object to write (delete: the pod to delete);
    `pod` names the pod the write is for (events name it)."""
    kind: str
    obj: dict
    pod: str


@dataclass
class Work:
    """One slot's writes, done in order; the first failure ends the work."""
    ordinal: int
    ops: list[Op]


@dataclass
class Slot:
    ordinal: int
    pod: dict | None            # the observed pod (None: missing)
    decision: str
    revision: str               # the pod's revision label, or the placeholder's


@dataclass
class Observed:
    sts: dict
    pods: list[dict]            # the pods the set owns (after adoption and release)
    claims: dict[str, dict]     # claim name -> claim, in the set's namespace
    current_revision: str
    update_revision: str
    current_template: dict
    update_template: dict
    collision_count: int
    now: float


@dataclass
class Plan:
    slots: list[Slot] = field(default_factory=list)
    condemned: list[Slot] = field(default_factory=list)
    batches: list[list[Work]] = field(default_factory=list)
    status: Status = field(default_factory=Status)
    requeue_after: float | None = None

    def ops(self) -> list[Op]:
        return [op for batch in self.batches for w in batch for op in w.ops]


# -- pod ownership (upstream ControllerRefManager.ClaimPods) ---------------------------------------

@dataclass
class Claimed:
    owned: list[dict]
    adopt: list[dict]
    release: list[dict]


def claim_pods(sts: dict, candidates: list[dict], selector) -> Claimed:
    """Split candidate pods: ours to keep, orphans to adopt, ours to release.

    A pod matches when the selector matches its labels and its name is `<set>-<n>`. Owned
    pods that stopped matching are released (not while the set is being deleted); matching
    orphans that are not being deleted are adopted (not while the set is being deleted);
    pods another controller owns are left alone."""
    uid = meta(sts).get("uid")
    deleting = bool(meta(sts).get("deletionTimestamp"))
    out = Claimed([], [], [])
    for p in candidates:
        m = meta(p)
        if m.get("namespace") != meta(sts).get("namespace"):
            continue
        matches = selector.matches(m.get("labels") or {}) and is_member_of(sts, p)
        ref = controller_of(p)
        if ref is not None:
            if ref.get("uid") != uid:
                continue
            if matches:
                out.owned.append(p)
            elif not deleting:
                out.release.append(p)
            continue
        if deleting or not matches or m.get("deletionTimestamp"):
            continue
        out.adopt.append(p)
    return out


# -- helpers ---------------------------------------------------------------------------------------

def _strategy(sts: dict) -> dict:
    return spec(sts).get("updateStrategy") or {}


def _min_ready(sts: dict) -> int:
    return int(spec(sts).get("minReadySeconds") or 0)


def placeholder(obs: Observed, ordinal: int) -> tuple[dict, str]:
    """The pod a missing ordinal gets, and its revision (upstream newVersionedStatefulSetPod):
    below `start + partition` the current revision, else the update revision; OnDelete always
    the update revision; a RollingUpdate without rollingUpdate uses status.currentReplicas."""
    sts = obs.sts
    st = _strategy(sts)
    use_current = False
    if st.get("type") == "RollingUpdate":
        ru = st.get("rollingUpdate")
        start = start_ordinal(sts)
        if ru is None:
            cur = int((sts.get("status") or {}).get("currentReplicas") or 0)
            use_current = ordinal < start + cur
        else:
            use_current = ordinal < start + int(ru.get("partition") or 0)
    if use_current:
        return new_pod(sts, obs.current_template, ordinal, obs.current_revision), \
            obs.current_revision
    return new_pod(sts, obs.update_template, ordinal, obs.update_revision), obs.update_revision


def max_unavailable(sts: dict) -> int:
    """rollingUpdate.maxUnavailable scaled against spec.replicas, rounded down, at least 1."""
    ru = _strategy(sts).get("rollingUpdate") or {}
    v = ru.get("maxUnavailable")
    if v is None:
        return 1
    if isinstance(v, str) and v.endswith("%"):
        try:
            n = int(v[:-1]) * replicas_of(sts) // 100
        except ValueError:
            n = 1
    else:
        try:
            n = int(v)
        except (TypeError, ValueError):
            n = 1
    return max(n, 1)


def _claim_ops(obs: Observed, pod: dict, pod_is_new: bool,
               fix_refs: bool = True) -> tuple[list[Op], list[Op]]:
    """(ops before the pod write: create missing claims / refuse on a terminating claim,
    ops after it: fix ownerReferences of existing claims for the retention policy).
    Claim objects are only built for claims that are missing (this runs for every Pending
    pod on every sync)."""
    sts = obs.sts
    name = meta(pod).get("name", "")
    ordinal = ordinal_of(pod)
    before: list[Op] = []
    after: list[Op] = []
    want_set = None
    for t in claim_templates(sts):
        existing = obs.claims.get(claim_name(sts, t, ordinal))
        if existing is None:
            claim = new_claim(sts, t, ordinal)
            if want_set is None:
                want_set = R.wanted_refs(sts, pod)[0]
            if want_set:
                claim["metadata"]["ownerReferences"] = [R.controller_ref(
                    sts, R.SET_API_VERSION, R.SET_KIND)]
            before.append(Op("create-claim", claim, name))
        elif meta(existing).get("deletionTimestamp"):
            before.append(Op("claim-terminating", existing, name))
        elif fix_refs:
            refs = R.updated_refs(sts, pod, existing)
            if refs is not None:
                after.append(Op("update-claim", _with_refs(existing, refs), name))
    return before, after


def _with_refs(claim: dict, refs: list[dict]) -> dict:
    out = dict(claim)
    out["metadata"] = {**meta(claim), "ownerReferences": refs}
    return out


def _claims_need_refs(obs: Observed, pod: dict) -> list[Op]:
    ops = []
    for cname in claim_names(obs.sts, ordinal_of(pod)):
        existing = obs.claims.get(cname)
        if existing is None:
            continue
        if not R.claim_refs_up_to_date(obs.sts, pod, existing):
            refs = R.updated_refs(obs.sts, pod, existing)
            if refs is not None:
                ops.append(Op("update-claim", _with_refs(existing, refs),
                              meta(pod).get("name", "")))
    return ops


def _slow_start(works: list[Work | None]) -> list[list[Work]]:
    """Group per-slot works (None: nothing to do) into batches of 1, 2, 4, ... slots."""
    batches: list[list[Work]] = []
    i, size = 0, 1
    while i < len(works):
        batch = [w for w in works[i:i + size] if w is not None and w.ops]
        if batch:
            batches.append(batch)
        i += size
        size = min(size * 2, MAX_BATCH)
    return batches


# -- the sync --------------------------------------------------------------------------------------

def _process_slot(obs: Observed, ordinal: int, pod: dict | None, monotonic: bool
                  ) -> tuple[Slot, Work | None, bool]:
    """Upstream processReplica: (slot, its writes, whether a monotonic pass stops here)."""
    sts = obs.sts
    mrs = _min_ready(sts)
    if pod is None:
        ph, rev = placeholder(obs, ordinal)
        if any(R.claim_is_stale(sts, ph, obs.claims.get(c))
               for c in claim_names(sts, ordinal)):
            return Slot(ordinal, None, WAIT, rev), None, True
        before, after = _claim_ops(obs, ph, True)
        ops = before + [Op("create-pod", ph, meta(ph)["name"])] + after
        return Slot(ordinal, None, CREATE, rev), Work(ordinal, ops), monotonic
    rev = revision_of(pod)
    if S.is_failed(pod) or S.is_succeeded(pod):
        ops = [] if S.is_terminating(pod) else [Op("delete-pod", pod, meta(pod)["name"])]
        return Slot(ordinal, pod, REPLACE, rev), Work(ordinal, ops), True
    ops: list[Op] = []
    if S.is_pending(pod):
        ops += _claim_ops(obs, pod, False, fix_refs=False)[0]
    if monotonic and (S.is_terminating(pod) or not S.is_running_and_ready(pod)
                      or not S.is_available(pod, mrs, obs.now)):
        return Slot(ordinal, pod, WAIT, rev), Work(ordinal, ops) if ops else None, True
    ref_ops = _claims_need_refs(obs, pod)
    if identity_matches(sts, pod) and storage_matches(sts, pod) and not ref_ops:
        return Slot(ordinal, pod, KEEP, rev), Work(ordinal, ops) if ops else None, False
    if not storage_matches(sts, pod):
        ops += [op for op in _claim_ops(obs, pod, False, fix_refs=False)[0]
                if op.kind == "create-claim" and not any(
                    o.kind == "create-claim" and meta(o.obj)["name"] == meta(op.obj)["name"]
                    for o in ops)]
    ops += ref_ops
    if not (identity_matches(sts, pod) and storage_matches(sts, pod)):
        fixed = {**pod, "metadata": {**meta(pod), "labels": dict(meta(pod).get("labels") or {})},
                 "spec": dict(spec(pod))}
        set_identity(sts, fixed)
        set_storage(sts, fixed)
        ops.append(Op("update-pod", fixed, meta(pod)["name"]))
    return Slot(ordinal, pod, REPAIR, rev), Work(ordinal, ops), False


def plan(obs: Observed) -> Plan:
    sts = obs.sts
    start, end = start_ordinal(sts), end_ordinal(sts)
    n = max(end - start, 0)
    mrs = _min_ready(sts)
    slots_pods: list[dict | None] = [None] * n
    condemned: list[dict] = []
    for p in obs.pods:
        o = ordinal_of(p)
        if o < 0:
            continue
        if start <= o < end:
            slots_pods[o - start] = p
        else:
            condemned.append(p)
    condemned.sort(key=ordinal_of, reverse=True)

    base = Status(observedGeneration=int(meta(sts).get("generation") or 0),
                  collisionCount=obs.collision_count)
    status = count(slots_pods + condemned, mrs, obs.now, obs.current_revision,
                   obs.update_revision, base)
    out = Plan(status=status)
    if mrs > 0 and status.availableReplicas != replicas_of(sts):
        out.requeue_after = float(mrs)

    # the view of each slot: the pod, or the placeholder it would be created as
    view: list[dict] = []
    for i, p in enumerate(slots_pods):
        view.append(p if p is not None else placeholder(obs, start + i)[0])

    if meta(sts).get("deletionTimestamp"):
        out.slots = [Slot(start + i, p, WAIT, revision_of(view[i]))
                     for i, p in enumerate(slots_pods)]
        out.condemned = [Slot(ordinal_of(p), p, WAIT, revision_of(p)) for p in condemned]
        return out

    monotonic = spec(sts).get("podManagementPolicy") != "Parallel"

    # 1. in-range slots
    stopped = False
    works: list[Work | None] = []
    for i, p in enumerate(slots_pods):
        slot, work, stop = _process_slot(obs, start + i, p, monotonic)
        out.slots.append(slot)
        works.append(work)
        if monotonic and stop:
            stopped = True
            break
    if monotonic:
        out.batches += [[w] for w in works if w is not None and w.ops]
    else:
        out.batches += _slow_start(works)
    if stopped:
        out.slots += [Slot(start + j, slots_pods[j], WAIT, revision_of(view[j]))
                      for j in range(len(out.slots), n)]
        out.condemned = [Slot(ordinal_of(p), p, WAIT, revision_of(p)) for p in condemned]
        return out

    # 2. claim refs of condemned pods, before any of them is deleted
    fix_works = [Work(ordinal_of(p), _claims_need_refs(obs, p)) for p in condemned]
    out.batches += ([[w] for w in fix_works if w.ops] if monotonic
                    else _slow_start(fix_works))

    # 3. condemned pods
    # upstream's firstUnhealthyPod: the lowest in-range slot that is not healthy (a missing
    # one included), else the first unhealthy condemned pod
    first_unhealthy = None
    if all(S.is_healthy(p) for p in slots_pods):
        first_unhealthy = next((p for p in condemned if not S.is_healthy(p)), None)
    del_works: list[Work | None] = []
    for p in condemned:
        o = ordinal_of(p)
        if S.is_terminating(p):
            out.condemned.append(Slot(o, p, WAIT, revision_of(p)))
            if monotonic:
                stopped = True
                break
            continue
        if monotonic and p is not first_unhealthy and (
                not S.is_running_and_ready(p) or not S.is_available(p, mrs, obs.now)):
            out.condemned.append(Slot(o, p, WAIT, revision_of(p)))
            stopped = True
            break
        out.condemned.append(Slot(o, p, DELETE, revision_of(p)))
        del_works.append(Work(o, [Op("delete-pod", p, meta(p)["name"])]))
        if monotonic:
            stopped = True
            break
    out.batches += ([[w] for w in del_works if w] if monotonic else _slow_start(del_works))
    if stopped:
        return out
    if _strategy(sts).get("type") != "RollingUpdate":
        return out

    # 4. rolling update
    deletes = rolling_update_targets(obs, view)
    if deletes:
        out.batches.append([Work(ordinal_of(p), [Op("delete-pod", p, meta(p)["name"])])
                            for p in deletes])
        out.status.currentReplicas -= len(deletes)
        for s in out.slots:
            if s.pod is not None and any(s.pod is d for d in deletes):
                s.decision = DELETE
    return out


def rolling_update_targets(obs: Observed, view: list[dict]) -> list[dict]:
    """Pods the rolling update deletes this sync (upstream
    updateStatefulSetAfterInvariantEstablished, MaxUnavailableStatefulSet on)."""
    sts = obs.sts
    mrs = _min_ready(sts)
    ru = _strategy(sts).get("rollingUpdate")
    update_min = int((ru or {}).get("partition") or 0)
    budget = max_unavailable(sts)
    parallel = spec(sts).get("podManagementPolicy") == "Parallel"
    upd = obs.update_revision
    created = {id(p) for p in obs.pods}

    def old(p: dict) -> bool:
        return id(p) in created and revision_of(p) != upd and not S.is_terminating(p)

    unavailable = 0
    needing_update = 0
    for p in view:
        if S.is_unavailable(p, mrs, obs.now):
            unavailable += 1
            if parallel and revision_of(p) != upd and not S.is_terminating(p):
                needing_update += 1
    if unavailable >= budget and needing_update == 0:
        return []
    targets: list[dict] = []
    top = len(view) - 1
    if parallel:
        for i in range(top, update_min - 1, -1):
            p = view[i]
            if old(p) and not S.is_running_and_available(p, mrs, obs.now):
                targets.append(p)
        left = budget - unavailable
        for i in range(top, update_min - 1, -1):
            if left <= 0:
                break
            p = view[i]
            if old(p) and S.is_running_and_available(p, mrs, obs.now):
                targets.append(p)
                left -= 1
        return targets
    left = budget - unavailable
    for i in range(top, update_min - 1, -1):
        if left <= 0:
            break
        p = view[i]
        if old(p):
            targets.append(p)
            left -= 1
    return targets
